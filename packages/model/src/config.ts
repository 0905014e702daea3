// GPT hyperparameters: one config object, named presets, overrides checked by key and type.
// It knows nothing of tensors.
import { MinigptError, preview } from '@minigpt/errors';

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
  /**
   * The MLP's GELU. Absent means 'gelu', the exact 0.5·x·(1 + erf(x/√2)) minigpt trains with;
   * 'gelu_tanh' is 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), GPT-2's own ("gelu_new" in a
   * Hugging Face config.json), so GPT-2 weights run with the function they were trained with.
   * Optional so that configs written before it existed (checkpoints, exports) read unchanged.
   */
  readonly activation?: GPTActivation;
}

/** The GELU variants a GPTConfig may name; see `GPTConfig.activation`. */
export const GPT_ACTIVATIONS = ['gelu', 'gelu_tanh'] as const;

export type GPTActivation = (typeof GPT_ACTIVATIONS)[number];

/** The GELU a config runs: its `activation`, or 'gelu' (exact) when absent. */
export function activationOf(config: Pick<GPTConfig, 'activation'>): GPTActivation {
  return config.activation ?? 'gelu';
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

/** The keys every config has, by type; `activation` is the one optional key. */
const FIELD_TYPES: Record<
  Exclude<keyof GPTConfig, 'activation'>,
  'integer' | 'number' | 'boolean'
> = {
  blockSize: 'integer',
  vocabSize: 'integer',
  nLayer: 'integer',
  nHead: 'integer',
  nEmbd: 'integer',
  dropout: 'number',
  bias: 'boolean',
};

/**
 * Upper bounds on a config, so a damaged or hostile config.json cannot ask for absurd
 * allocations (`nLayer: 1e9` once ran for a minute and died out of memory). Each is far above
 * GPT-2 XL (48 layers, 25 heads, 1600 wide, 1024 positions, vocab 50257) to leave room for
 * larger models; the parameter bound (2^33 ≈ 8.6 G, 32 GiB of float32) is what really binds.
 */
export const GPT_CONFIG_BOUNDS = {
  nLayer: 1024,
  nHead: 1024,
  nEmbd: 65_536,
  blockSize: 1_048_576,
  vocabSize: 4_194_304,
  /** countParameters(config, true): every weight, position embeddings included. */
  parameters: 2 ** 33,
} as const;

/** Builds a full config from a preset and overrides; unknown keys and wrong types throw. */
export function resolveGPTConfig(
  overrides: Record<string, unknown> & { vocabSize?: unknown },
  preset: GPTPresetName = 'baby',
): GPTConfig {
  const base = GPT_PRESETS[preset];
  if (!base) {
    throw new ConfigError(
      `unknown model preset "${String(preset)}"; presets: ${Object.keys(GPT_PRESETS).join(', ')}`,
      { rule: 'preset' },
    );
  }
  return validateGPTConfig({ ...base, ...overrides });
}

/**
 * Checks a config from anywhere (a config.json is untrusted): an object with exactly the
 * GPTConfig keys (`activation` optional), each of its type and within `GPT_CONFIG_BOUNDS`.
 * `source`, when given, names the file in errors. Returns a fresh object holding only those
 * keys; `activation` only when the input has it, so a config written before the key existed
 * comes back, and serializes, exactly as it was.
 */
export function validateGPTConfig(config: unknown, source?: string): GPTConfig {
  const fail = (rule: string, problem: string): never => {
    throw new ConfigError(source === undefined ? problem : `${source}: ${problem}`, {
      rule,
      ...(source === undefined ? {} : { file: source }),
    });
  };
  const requiredKeys = Object.keys(FIELD_TYPES);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    const found = config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config;
    return fail(
      'config-type',
      `the model config must be an object with keys ${requiredKeys.join(', ')} (optional: activation); got ${found}`,
    );
  }
  const record = config as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    // hasOwn, not `in`: "constructor" or "toString" are not config keys.
    if (!Object.hasOwn(FIELD_TYPES, key) && key !== 'activation') {
      fail(
        'unknown-key',
        `unknown model config key "${key}"; valid keys: ${[...requiredKeys, 'activation'].join(', ')}`,
      );
    }
  }
  // Own keys only, as above. `activation: undefined` (a spread of an optional field; JSON
  // has no undefined) counts as absent.
  const activation = Object.hasOwn(record, 'activation') ? record['activation'] : undefined;
  const hasActivation = activation !== undefined;
  if (hasActivation && !(GPT_ACTIVATIONS as readonly unknown[]).includes(activation)) {
    fail(
      'value-type',
      `model config "activation" must be one of ${GPT_ACTIVATIONS.map((name) => `"${name}"`).join(', ')}, got ${preview(activation)}`,
    );
  }
  for (const [key, type] of Object.entries(FIELD_TYPES)) {
    const value = record[key];
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
      fail('value-type', `model config "${key}" must be ${wanted}, got ${preview(value)}`);
    }
  }
  const result: GPTConfig = {
    blockSize: record['blockSize'] as number,
    vocabSize: record['vocabSize'] as number,
    nLayer: record['nLayer'] as number,
    nHead: record['nHead'] as number,
    nEmbd: record['nEmbd'] as number,
    dropout: record['dropout'] as number,
    bias: record['bias'] as boolean,
    ...(hasActivation ? { activation: activation as GPTActivation } : {}),
  };
  for (const key of ['nLayer', 'nHead', 'nEmbd', 'blockSize', 'vocabSize'] as const) {
    const bound = GPT_CONFIG_BOUNDS[key];
    if (result[key] > bound) {
      fail(
        'bound',
        `model config "${key}" must be ≤ ${bound}, got ${result[key]} — far larger than any model this package builds; check the config`,
      );
    }
  }
  if (result.nEmbd % result.nHead !== 0) {
    fail('divisible', `nEmbd (${result.nEmbd}) must be divisible by nHead (${result.nHead})`);
  }
  if (result.dropout < 0 || result.dropout >= 1) {
    fail('dropout', `dropout must be in [0, 1), got ${result.dropout}`);
  }
  // Each field is bounded, so this count is exact (well under 2^53).
  const parameters = countParameters(result, true);
  if (parameters > GPT_CONFIG_BOUNDS.parameters) {
    fail(
      'bound',
      `model config "parameters" (weights with position embeddings) must be ≤ ${GPT_CONFIG_BOUNDS.parameters} (2^33), got ${parameters} — lower nLayer, nEmbd, vocabSize or blockSize`,
    );
  }
  return result;
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
