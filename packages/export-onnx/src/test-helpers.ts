// Shared by this package's tests: tiny tfjs GPTs, the feeds of the exported graph, and the
// comparisons the parity tests make. Not part of the published package (files excludes it).
import { execFileSync } from 'node:child_process';
import { GPT, resolveGPTConfig, type GPTConfig } from '@minigpt/model';
import { Random } from '@minigpt/random';
import { readFields } from '@minigpt/runtime';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';

/** A fresh tfjs GPT on the cpu backend, with nanoGPT's initialisation from `seed`. */
export async function tinyModel(
  overrides: Record<string, unknown> & { vocabSize: number },
  preset: 'nano' | 'baby' = 'nano',
  seed = 1,
): Promise<{ config: GPTConfig; model: GPT }> {
  if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
  const config = resolveGPTConfig(overrides, preset);
  return { config, model: GPT.create(config, { log: null, random: new Random(seed) }) };
}

/**
 * A nano GPT (biases on) with the tanh GELU, and the same weights' exact-GELU config. Its MLP
 * is made loud — c_fc bias −3, c_fc × 10, c_proj × 50 — so the MLP's inputs sit around −3,
 * where the tanh GELU is 10 % off the exact one relative to its value: the two GELUs' logits
 * then differ by ~1e-3 (at init, by ~1e-7, which no parity check at 1e-4 could see).
 */
export async function tanhGeluModel(
  vocabSize: number,
  seed: number,
): Promise<{ config: GPTConfig; exactConfig: GPTConfig; model: GPT }> {
  const { config: exactConfig, model: source } = await tinyModel({ vocabSize }, 'nano', seed);
  const weights = await source.weightData();
  source.dispose();
  for (const [name, weight] of weights) {
    const scale = (factor: number) => weight.data.forEach((v, i, data) => (data[i] = v * factor));
    if (name.endsWith('mlp.c_fc.weight')) scale(10);
    if (name.endsWith('mlp.c_fc.bias')) weight.data.fill(-3);
    if (name.endsWith('mlp.c_proj.weight')) scale(50);
  }
  const config = resolveGPTConfig({ vocabSize, activation: 'gelu_tanh' }, 'nano');
  return { config, exactConfig, model: GPT.fromWeights(config, weights) };
}

/** tfjs logits (B, T, V) of `ids` (B rows of T ids), flattened. */
export function tfjsLogits(model: GPT, ids: readonly (readonly number[])[]): Float32Array {
  return tf
    .tidy(() =>
      model.forward(tf.tensor2d(ids as number[][], [ids.length, ids[0]!.length], 'int32')),
    )
    .dataSync() as Float32Array;
}

export function int64(values: readonly number[], dims: readonly number[]): ort.Tensor {
  return new ort.Tensor(
    'int64',
    BigInt64Array.from(values, (v) => BigInt(v)),
    dims as number[],
  );
}

export interface StepFeeds {
  /** (B, T) ids. */
  readonly ids: readonly (readonly number[])[];
  /** (B, P+T), 1 = a real token; all ones when absent. */
  readonly mask?: readonly (readonly number[])[];
  /** (B, T); 0…T−1 after the cache's P positions when absent (every row unpadded). */
  readonly positions?: readonly (readonly number[])[];
  /** num_logits_to_keep, for a graph built with that input: 0 = logits for all T positions. */
  readonly keep?: number;
  /** The previous run's results: their present.* become this step's past_key_values.*. */
  readonly past?: ort.InferenceSession.OnnxValueMapType;
}

/** The graph's inputs for one run (prefill when `past` is absent, a decode step otherwise). */
export function feeds(
  config: GPTConfig,
  step: StepFeeds,
  withKeep = step.keep !== undefined,
): Record<string, ort.Tensor> {
  const batch = step.ids.length;
  const length = step.ids[0]!.length;
  const headSize = config.nEmbd / config.nHead;
  const pastLength = step.past ? step.past['present.0.key']!.dims[2]! : 0;
  const mask = step.mask ?? step.ids.map(() => new Array<number>(pastLength + length).fill(1));
  const positions =
    step.positions ?? step.ids.map(() => Array.from({ length }, (_, t) => pastLength + t));
  const result: Record<string, ort.Tensor> = {
    input_ids: int64(step.ids.flat(), [batch, length]),
    attention_mask: int64(mask.flat(), [batch, mask[0]!.length]),
    position_ids: int64(positions.flat(), [batch, length]),
    ...(withKeep ? { num_logits_to_keep: int64([step.keep ?? 0], []) } : {}),
  };
  for (let layer = 0; layer < config.nLayer; layer++) {
    for (const kind of ['key', 'value']) {
      result[`past_key_values.${layer}.${kind}`] =
        (step.past?.[`present.${layer}.${kind}`] as ort.Tensor | undefined) ??
        new ort.Tensor('float32', new Float32Array(0), [batch, config.nHead, 0, headSize]);
    }
  }
  return result;
}

/** Runs the graph and returns its logits, checking their dims are (B, K, V). */
export async function runLogits(
  session: ort.InferenceSession,
  config: GPTConfig,
  step: StepFeeds,
  keptPositions: number,
): Promise<{ logits: Float32Array; results: ort.InferenceSession.OnnxValueMapType }> {
  const results = await session.run(
    feeds(config, step, session.inputNames.includes('num_logits_to_keep')),
  );
  expect(results['logits']!.dims).toEqual([step.ids.length, keptPositions, config.vocabSize]);
  return { logits: results['logits']!.data as Float32Array, results };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

export function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

export function randomIds(count: number, vocab: number, seed: number): number[] {
  const random = new Random(seed);
  return Array.from({ length: count }, () => random.nextInt(vocab));
}

/** Row `row` of a (rows, V) block of logits. */
export function logitsRow(logits: Float32Array, row: number, vocab: number): Float32Array {
  return logits.subarray(row * vocab, (row + 1) * vocab);
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/**
 * Runs ONNX's own checker (full_check: shape inference included) on each file and returns,
 * per file, the op types its nodes use and the domains they come from, If branches included. Debian's python3-onnx
 * (installed by .ci/run); MINIGPT_ONNX_PYTHON overrides the interpreter.
 */
export function checkWithOnnx(
  paths: readonly string[],
): Array<{ irVersion: number; opset: number; opTypes: string[]; domains: string[] }> {
  const python = process.env['MINIGPT_ONNX_PYTHON'] ?? '/usr/bin/python3';
  const script = [
    'import json, onnx, sys',
    'def nodes(graph):',
    '    for n in graph.node:',
    '        yield n',
    '        for a in n.attribute:',
    '            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):',
    '                yield from nodes(g)',
    'out = []',
    'for path in sys.argv[1:]:',
    '    onnx.checker.check_model(path, full_check=True)',
    '    m = onnx.load(path)',
    '    every = list(nodes(m.graph))',
    '    out.append({"irVersion": m.ir_version, "opset": m.opset_import[0].version,',
    '        "opTypes": sorted({n.op_type for n in every}),',
    '        "domains": sorted({n.domain for n in every} | {o.domain for o in m.opset_import})})',
    'print(json.dumps(out))',
  ].join('\n');
  return JSON.parse(execFileSync(python, ['-c', script, ...paths], { encoding: 'utf8' })) as never;
}

/** The main graph's fields (ModelProto.graph = 7) of an encoded model. */
function mainGraphFields(model: Uint8Array) {
  return readFields(readFields(model).find((field) => field.field === 7)!.payload!);
}

/** The main graph's nodes (GraphProto.node = 1) of an encoded model, If branches not included. */
function graphNodes(model: Uint8Array) {
  return mainGraphFields(model).filter((field) => field.field === 1);
}

/** Nodes of the main graph of an encoded model (If branches not counted). */
export function nodeCount(model: Uint8Array): number {
  return graphNodes(model).length;
}

/** How many of the main graph's nodes (NodeProto.op_type = 4) are `opType` nodes. */
export function opCount(model: Uint8Array, opType: string): number {
  return graphNodes(model).filter((node) =>
    readFields(node.payload!).some(
      (part) => part.field === 4 && new TextDecoder().decode(part.payload) === opType,
    ),
  ).length;
}

/**
 * The smallest and largest value over a model's int8 weights: the main graph's initializers
 * (GraphProto.initializer = 5) named `*.int8`, read from their raw_data (TensorProto field 9).
 */
export function int8WeightRange(model: Uint8Array): { min: number; max: number; count: number } {
  let min = Infinity;
  let max = -Infinity;
  let count = 0;
  for (const initializer of mainGraphFields(model).filter((field) => field.field === 5)) {
    const parts = readFields(initializer.payload!);
    const name = new TextDecoder().decode(parts.find((part) => part.field === 8)?.payload);
    if (!name.endsWith('.int8')) continue;
    const raw = parts.find((part) => part.field === 9)!.payload!;
    for (const value of new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength)) {
      if (value < min) min = value;
      if (value > max) max = value;
    }
    count++;
  }
  return { min, max, count };
}
