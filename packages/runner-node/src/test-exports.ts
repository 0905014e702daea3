// Test models for runner-node's tests: GPTs whose greedy text varies, written as exports.
import { writeExport } from '@minigpt/export-onnx/node';
import { resolveGPTConfig, weightShapes, type GPTConfig, type WeightData } from '@minigpt/model';
import { Random } from '@minigpt/random';
import type { Tokenizer } from '@minigpt/tokenizer';

/** A model as config + weights (GPT-2 names): what writeExport and GPT.fromWeights take. */
export interface TestModel {
  readonly config: GPTConfig;
  readonly weights: ReadonlyMap<string, WeightData>;
}

export interface VariedGPTOptions {
  /** Standard deviation of every matrix entry (default 0.4). */
  readonly std?: number;
  /**
   * Token ids whose embedding row is zero: with the LM head tied to the embedding, their
   * logit is always exactly 0, below the argmax of the others, so greedy decoding never
   * picks them (an end-of-text id, which transformers.js stops a row at).
   */
  readonly neverGreedy?: readonly number[];
}

/**
 * A GPT whose weights are drawn from a seeded normal (LayerNorm scales stay 1, biases 0).
 * nanoGPT's initialisation (std 0.02) gives near-uniform logits, so greedy decoding repeats
 * one id and any two implementations agree trivially; at std ~0.4 the logits spread over
 * several units and the argmax changes with the context. Config: `nano` with `overrides`.
 */
export function variedGPT(
  tokenizer: Tokenizer,
  overrides: Partial<Omit<GPTConfig, 'vocabSize'>>,
  seed: number,
  options: VariedGPTOptions = {},
): TestModel {
  const std = options.std ?? 0.4;
  const config = resolveGPTConfig({ vocabSize: tokenizer.vocabSize, ...overrides }, 'nano');
  const random = new Random(seed);
  const weights = new Map<string, WeightData>();
  for (const [name, shape] of weightShapes(config)) {
    const data = new Float32Array(shape.reduce((size, dim) => size * dim, 1));
    const isNorm = /(^|\.)ln_(1|2|f)\.weight$/.test(name);
    const isBias = name.endsWith('.bias');
    for (let i = 0; i < data.length; i++) {
      data[i] = isNorm ? 1 : isBias ? 0 : std * random.nextNormal();
    }
    if (name === 'wte.weight') {
      for (const id of options.neverGreedy ?? []) {
        data.fill(0, id * config.nEmbd, (id + 1) * config.nEmbd); // row `id` of (V, C)
      }
    }
    weights.set(name, { shape, data });
  }
  return { config, weights };
}

/** Writes `model` with `tokenizer` into `outDir` as `minigpt export` does; returns outDir. */
export async function exportGPT(
  model: TestModel,
  tokenizer: Tokenizer,
  outDir: string,
  quantize?: 'int8',
  options: { fused?: boolean } = {},
): Promise<string> {
  await writeExport(
    { config: model.config, weights: model.weights, tokenizer: tokenizer.toJSON() },
    { outDir, ...(quantize ? { quantize } : {}), ...(options.fused ? { fused: true } : {}) },
  );
  return outDir;
}
