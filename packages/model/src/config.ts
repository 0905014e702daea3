// GPT hyperparameters: one config object, named presets, overrides checked by key and type.
// It knows nothing of tensors.
import { MinigptError } from '@minigpt/errors';

export interface GPTConfig {
  /** Longest context the model sees (T max); position embeddings have this many rows. */
  readonly blockSize: number;
  /** Token ids are 0 … vocabSize − 1 (V). */
  readonly vocabSize: number;
  readonly nLayer: number;
  readonly nHead: number;
  /** Width of the residual stream (C); must divide by nHead. */
  readonly nEmbd: number;
  /** Dropout probability in training (embeddings, attention weights, residual branches). */
  readonly dropout: number;
  /** Biases in linear layers and LayerNorms (nanoGPT's train.py default: false). */
  readonly bias: boolean;
}

/** Presets by name. Parameter counts exclude position embeddings, as nanoGPT reports them. */
export const GPT_PRESETS = {
  /** The seed's "Mini GPT": 4.77 M params at vocab 65. */
  seed: { blockSize: 128, nLayer: 6, nHead: 8, nEmbd: 256, dropout: 0.1, bias: false },
  /** nanoGPT's CPU config for shakespeare-char: 0.80 M params at vocab 65. */
  baby: { blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, dropout: 0, bias: false },
  /** For tests: ~26 k params. */
  nano: { blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32, dropout: 0, bias: true },
} as const satisfies Record<string, Omit<GPTConfig, 'vocabSize'>>;

export type GPTPresetName = keyof typeof GPT_PRESETS;

/** Thrown for a config that cannot build a model; the message lists what is valid. */
export class ConfigError extends MinigptError {
  override name = 'ConfigError';
}

/** Thrown for weights that do not fit a model, or a damaged safetensors file. */
export class ModelError extends MinigptError {
  override name = 'ModelError';
}

const FIELD_TYPES: Record<keyof GPTConfig, 'integer' | 'number' | 'boolean'> = {
  blockSize: 'integer',
  vocabSize: 'integer',
  nLayer: 'integer',
  nHead: 'integer',
  nEmbd: 'integer',
  dropout: 'number',
  bias: 'boolean',
};

/** Builds a full config from a preset and overrides; unknown keys and wrong types throw. */
export function resolveGPTConfig(
  overrides: Record<string, unknown> & { vocabSize?: unknown },
  preset: GPTPresetName = 'baby',
): GPTConfig {
  const base = GPT_PRESETS[preset];
  if (!base) {
    throw new ConfigError(
      `unknown model preset "${String(preset)}"; presets: ${Object.keys(GPT_PRESETS).join(', ')}`,
    );
  }
  return validateGPTConfig({ ...base, ...overrides });
}

export function validateGPTConfig(config: Record<string, unknown>): GPTConfig {
  const validKeys = Object.keys(FIELD_TYPES);
  for (const key of Object.keys(config)) {
    if (!(key in FIELD_TYPES)) {
      throw new ConfigError(
        `unknown model config key "${key}"; valid keys: ${validKeys.join(', ')}`,
      );
    }
  }
  for (const [key, type] of Object.entries(FIELD_TYPES)) {
    const value = config[key];
    const ok =
      type === 'boolean'
        ? typeof value === 'boolean'
        : type === 'integer'
          ? Number.isInteger(value) && (value as number) > 0
          : typeof value === 'number' && Number.isFinite(value);
    if (!ok) {
      const wanted =
        type === 'integer'
          ? 'a positive integer'
          : type === 'number'
            ? 'a number'
            : 'true or false';
      throw new ConfigError(
        `model config "${key}" must be ${wanted}, got ${JSON.stringify(value)}`,
      );
    }
  }
  const result = config as unknown as GPTConfig;
  if (result.nEmbd % result.nHead !== 0) {
    throw new ConfigError(`nEmbd (${result.nEmbd}) must be divisible by nHead (${result.nHead})`);
  }
  if (result.dropout < 0 || result.dropout >= 1) {
    throw new ConfigError(`dropout must be in [0, 1), got ${result.dropout}`);
  }
  return { ...result };
}

/** Parameter count; `includePositions: false` (default) leaves out wpe, as nanoGPT reports. */
export function countParameters(config: GPTConfig, includePositions = false): number {
  const { nEmbd: c, nLayer, vocabSize, blockSize, bias } = config;
  const layerNorm = bias ? 2 * c : c;
  const linear = (fanIn: number, fanOut: number) => fanIn * fanOut + (bias ? fanOut : 0);
  const block =
    2 * layerNorm + linear(c, 3 * c) + linear(c, c) + linear(c, 4 * c) + linear(4 * c, c);
  const total = vocabSize * c + nLayer * block + layerNorm; // wte (tied with lm_head), blocks, ln_f
  return includePositions ? total + blockSize * c : total;
}
