// The weights a GPT config needs (GPT-2 names and shapes) and the check that a set of weights
// from elsewhere is exactly that set: every name, float32, the right shape, finite values.
// It imports no tfjs (the exporter uses it too) and knows nothing of files beyond their name.
import { preview } from '@minigpt/errors';
import { ModelError, type GPTConfig } from './config.js';

/** A weight as plain data: row-major float32 values and their shape. */
export interface WeightData {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A weight to check: plain values and a shape; `dtype` when it came from a safetensors file. */
export interface WeightToCheck {
  readonly dtype?: string;
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
}

/** The rules `checkWeights` enforces; `ModelError.rule` is one of these. */
export type WeightRule =
  'unknown-weight' | 'missing-weight' | 'weight-dtype' | 'weight-shape' | 'weight-finite';

/** Every weight's GPT-2 name and shape, in a fixed order (wte, wpe, blocks, ln_f). */
export function weightShapes(config: GPTConfig): Map<string, number[]> {
  const { vocabSize, blockSize, nEmbd: c, nLayer, bias } = config;
  const shapes = new Map<string, number[]>([
    ['wte.weight', [vocabSize, c]],
    ['wpe.weight', [blockSize, c]],
  ]);
  const add = (name: string, fanIn: number, fanOut: number) => {
    shapes.set(`${name}.weight`, [fanIn, fanOut]);
    if (bias) shapes.set(`${name}.bias`, [fanOut]);
  };
  const addNorm = (name: string) => {
    shapes.set(`${name}.weight`, [c]);
    if (bias) shapes.set(`${name}.bias`, [c]);
  };
  for (let layer = 0; layer < nLayer; layer++) {
    addNorm(`h.${layer}.ln_1`);
    add(`h.${layer}.attn.c_attn`, c, 3 * c);
    add(`h.${layer}.attn.c_proj`, c, c);
    addNorm(`h.${layer}.ln_2`);
    add(`h.${layer}.mlp.c_fc`, c, 4 * c);
    add(`h.${layer}.mlp.c_proj`, 4 * c, c);
  }
  addNorm('ln_f');
  return shapes;
}

/**
 * The weights, in `weightShapes` order, once checked to be exactly the set `config` needs: no
 * unknown or missing names, every weight F32 in a Float32Array of the expected shape, every
 * value finite. Otherwise throws a ModelError (`file` = `source`, `rule` a `WeightRule`). Run
 * it before allocating any tensor. `config` must already be valid (`validateGPTConfig`).
 */
export function checkWeights(
  config: GPTConfig,
  weights: ReadonlyMap<string, WeightToCheck>,
  source: string,
): Map<string, WeightData> {
  const fail = (rule: WeightRule, problem: string, fix: string): never => {
    throw new ModelError(`${source}: ${problem} [${rule}] — ${fix}`, { file: source, rule });
  };
  const expected = weightShapes(config);
  const configText = `nLayer ${config.nLayer}, nEmbd ${config.nEmbd}, bias ${config.bias}`;
  const list = (names: string[]) =>
    `${names.slice(0, 5).map(preview).join(', ')}${names.length > 5 ? `, … (${names.length} in all)` : ''}`;
  const unknown = [...weights.keys()].filter((name) => !expected.has(name));
  if (unknown.length > 0) {
    fail(
      'unknown-weight',
      `unknown weights ${list(unknown)}: a GPT with this config (${configText}) has no such weights`,
      'the file was saved for another config (check nLayer and bias) or is not a minigpt model',
    );
  }
  const missing = [...expected.keys()].filter((name) => !weights.has(name));
  if (missing.length > 0) {
    fail(
      'missing-weight',
      `missing weights ${list(missing)}: a GPT with this config (${configText}) needs them`,
      'the file was saved for another config (check nLayer and bias) or is incomplete',
    );
  }
  for (const [name, shape] of expected) {
    const weight = weights.get(name)!;
    if (
      (weight.dtype !== undefined && weight.dtype !== 'F32') ||
      !(weight.data instanceof Float32Array)
    ) {
      fail(
        'weight-dtype',
        `weight ${preview(name)} is ${weight.dtype ?? weight.data?.constructor?.name ?? typeof weight.data}; model weights must be F32 (float32)`,
        'save the weights as float32',
      );
    }
    const given: unknown = weight.shape;
    if (!Array.isArray(given) || given.join(',') !== shape.join(',')) {
      const shown = Array.isArray(given) ? `[${given.join(', ')}]` : preview(given);
      fail(
        'weight-shape',
        `weight ${preview(name)} has shape ${shown}, the config needs [${shape.join(', ')}]`,
        `the file was saved for another config (${configText}, vocabSize ${config.vocabSize}, blockSize ${config.blockSize})`,
      );
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (weight.data.length !== count) {
      fail(
        'weight-shape',
        `weight ${preview(name)} holds ${weight.data.length} values, its shape [${shape.join(', ')}] needs ${count}`,
        'the weights are damaged; get them again',
      );
    }
  }
  // One pass over every value: a NaN or an infinity in a weight poisons every output, and is
  // far easier to find here than later. Measured for the seed model (4.8 M floats, 2-core
  // VM under load): 6–12 ms, less than decoding its safetensors file (13–55 ms).
  for (const name of expected.keys()) {
    const data = weights.get(name)!.data as Float32Array;
    const bad = firstNonFinite(data);
    if (bad !== -1) {
      fail(
        'weight-finite',
        `weight ${preview(name)} holds ${data[bad]} at index ${bad} (of ${data.length}); weights must be finite numbers`,
        'training diverged before this was saved, or the file is damaged; use an earlier checkpoint',
      );
    }
  }
  return new Map(
    [...expected.keys()].map((name) => {
      const { shape, data } = weights.get(name)!;
      return [name, { shape, data: data as Float32Array }];
    }),
  );
}

/** Index of the first NaN or ±Infinity, or −1. */
function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // v − v is 0 for every finite v and NaN for NaN and ±Infinity.
    if (v - v !== 0) return i;
  }
  return -1;
}
