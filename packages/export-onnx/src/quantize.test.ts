// The int8 graph (onnx/model_quantized.onnx) against the float32 one: both are standard ONNX
// (ONNX's own checker passes, default-domain ops only), the int8 file is far smaller when
// the weights dominate it (4 layers, 128 wide), and its logits stay close to float32's.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GPTConfig } from '@minigpt/model';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGptGraph, exportModel, type ExportedModel, type Weight } from './index.js';
import {
  argmax,
  checkWithOnnx,
  int8WeightRange,
  logitsRow,
  maxAbsDiff,
  meanAbsDiff,
  randomIds,
  runLogits,
  tfjsLogits,
  tinyModel,
} from './test-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-quantize-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The float32 graph's ops: all in opset 17's default domain. */
const FLOAT_OPS = [
  'Add',
  'And',
  'Cast',
  'Concat',
  'Div',
  'Erf',
  'Gather',
  'Greater',
  'Identity',
  'If',
  'LayerNormalization',
  'LessOrEqual',
  'MatMul',
  'Mul',
  'Range',
  'Reshape',
  'Shape',
  'Softmax',
  'Split',
  'Squeeze',
  'Transpose',
  'Unsqueeze',
  'Where',
];
/** Every weight MatMul becomes DynamicQuantizeLinear → MatMulInteger → Cast → Mul; the
 * attention's MatMuls of activations stay float. */
const INT8_OPS = [...FLOAT_OPS, 'DynamicQuantizeLinear', 'MatMulInteger'].sort();

/** Logits of both graphs for the same ids, and how far apart they are. */
async function compare(config: GPTConfig, exported: ExportedModel, ids: number[][]) {
  const vocab = config.vocabSize;
  const length = ids[0]!.length;
  const float = await ort.InferenceSession.create(exported.onnx);
  const int8 = await ort.InferenceSession.create(exported.onnxQuantized!);
  const floatLogits = (await runLogits(float, config, { ids }, length)).logits; // (B, T, V)
  const int8Logits = (await runLogits(int8, config, { ids }, length)).logits;
  const positions = ids.length * length;
  let agreeing = 0;
  let predictsInput = 0; // positions whose float argmax is the input token itself
  for (let position = 0; position < positions; position++) {
    const best = argmax(logitsRow(floatLogits, position, vocab));
    if (best === argmax(logitsRow(int8Logits, position, vocab))) agreeing++;
    if (best === ids[Math.floor(position / length)]![position % length]) predictsInput++;
  }
  let meanMagnitude = 0; // the scale the differences compare to
  for (const value of floatLogits) meanMagnitude += Math.abs(value) / floatLogits.length;
  return {
    float,
    int8,
    floatLogits,
    maxDiff: maxAbsDiff(int8Logits, floatLogits),
    meanDiff: meanAbsDiff(int8Logits, floatLogits),
    meanMagnitude,
    agreement: agreeing / positions,
    predictsInput: predictsInput / positions,
  };
}

function report(what: string, result: Awaited<ReturnType<typeof compare>>) {
  console.log(
    `${what}: int8 vs float32 logits max |Δ| ${result.maxDiff.toExponential(2)}, ` +
      `mean |Δ| ${result.meanDiff.toExponential(2)} (mean |logit| ${result.meanMagnitude.toFixed(3)}); ` +
      `argmax agrees at ${(100 * result.agreement).toFixed(1)} % of positions ` +
      `(float argmax = input token at ${(100 * result.predictsInput).toFixed(1)} %)`,
  );
}

describe('int8 graph of a 4-layer, 128-wide model', () => {
  const VOCAB = 65;
  let config: GPTConfig;
  let weights: Map<string, Weight>;
  let exported: ExportedModel;
  let tfjsReference: (ids: number[][]) => Float32Array;
  let disposeModel: () => void;
  beforeAll(async () => {
    const made = await tinyModel({ vocabSize: VOCAB }, 'baby', 21);
    config = made.config;
    weights = await made.model.weightData();
    exported = exportModel(config, weights, 'char', { quantize: 'int8' });
    tfjsReference = (ids) => tfjsLogits(made.model, ids);
    disposeModel = () => made.model.dispose();
  });
  afterAll(() => disposeModel());

  it("uses default-domain ops only, passes ONNX's checker (full_check), and is < 40 % of float32", () => {
    expect(exported.manifest.files.modelQuantized).toBe('onnx/model_quantized.onnx');
    expect([...buildGptGraph(config, weights).opTypes].sort()).toEqual(FLOAT_OPS);
    expect([...buildGptGraph(config, weights, { quantize: 'int8' }).opTypes].sort()).toEqual(
      INT8_OPS,
    );
    const paths = [join(work, 'model.onnx'), join(work, 'model_quantized.onnx')];
    writeFileSync(paths[0]!, exported.onnx);
    writeFileSync(paths[1]!, exported.onnxQuantized!);
    // Decoded by the onnx package from the files: every node and opset import in domain ''.
    expect(checkWithOnnx(paths)).toEqual([
      { irVersion: 8, opset: 17, opTypes: FLOAT_OPS, domains: [''] },
      { irVersion: 8, opset: 17, opTypes: INT8_OPS, domains: [''] },
    ]);
    const ratio = exported.onnxQuantized!.length / exported.onnx.length;
    console.log(
      `int8 ${exported.onnxQuantized!.length} B, float32 ${exported.onnx.length} B: ${(100 * ratio).toFixed(1)} %`,
    );
    expect(ratio).toBeLessThan(0.4);
  });

  it('stores weights in 7 bits, so no uint8 × int8 pair sum overflows int16 (AVX2 without VNNI)', () => {
    // vpmaddubsw (onnxruntime's uint8 × int8 kernel on x86 CPUs without VNNI) saturates each
    // pair of products at int16: |w| ≤ 63 keeps 255 · |w| · 2 ≤ 32,130 below 32,767. Every
    // column's largest weight maps to ±63, so the range is used whole.
    const range = int8WeightRange(exported.onnxQuantized!);
    // Per block c_attn (q, k and v in one), attention c_proj, c_fc and MLP c_proj; the LM head.
    expect(range.count).toBe(4 * config.nLayer + 1);
    expect(Math.max(-range.min, range.max)).toBe(63);
    expect(range.min).toBeGreaterThanOrEqual(-63);
  });

  it('runs in onnxruntime with logits close to float32, prefill and cached decode', async () => {
    const ids = [0, 1].map((row) => randomIds(config.blockSize, VOCAB, 30 + row));
    const result = await compare(config, exported, ids);
    report('baby, fresh weights', result);
    // The float32 graph matches tfjs at this size too (errors grow with width and depth).
    expect(maxAbsDiff(result.floatLogits, tfjsReference(ids))).toBeLessThanOrEqual(1e-4);
    // Measured: max 3.2e-2, mean 5.4e-3 on logits of mean magnitude 0.2 (7-bit weights).
    expect(result.maxDiff).toBeLessThan(0.05);
    expect(result.meanDiff).toBeLessThan(0.01);

    // The int8 graph decodes through its cache too: T − 1 tokens, then the last one.
    const prefill = await runLogits(
      result.int8,
      config,
      { ids: ids.map((row) => row.slice(0, -1)) },
      config.blockSize - 1,
    );
    const last = await runLogits(
      result.int8,
      config,
      { ids: ids.map((row) => row.slice(-1)), past: prefill.results },
      1,
    );
    const lastFloat = [0, 1].flatMap((row) => [
      ...logitsRow(result.floatLogits, (row + 1) * config.blockSize - 1, VOCAB),
    ]);
    expect(maxAbsDiff(last.logits, lastFloat)).toBeLessThan(0.05);
  });
});

describe('graphs of a model with the tanh GELU (activation "gelu_tanh")', () => {
  it("use Tanh for Div → Erf, pass ONNX's checker (full_check), and int8 stays close to float32", async () => {
    const VOCAB = 65;
    const { config, model } = await tinyModel(
      { vocabSize: VOCAB, activation: 'gelu_tanh' },
      'baby',
      22,
    );
    const weights = await model.weightData();
    const exported = exportModel(config, weights, 'char', { quantize: 'int8' });
    const withTanh = (ops: string[]) =>
      [...ops.filter((op) => op !== 'Div' && op !== 'Erf'), 'Tanh'].sort();
    const paths = [join(work, 'tanh.onnx'), join(work, 'tanh_quantized.onnx')];
    writeFileSync(paths[0]!, exported.onnx);
    writeFileSync(paths[1]!, exported.onnxQuantized!);
    expect(checkWithOnnx(paths)).toEqual([
      { irVersion: 8, opset: 17, opTypes: withTanh(FLOAT_OPS), domains: [''] },
      { irVersion: 8, opset: 17, opTypes: withTanh(INT8_OPS), domains: [''] },
    ]);

    const ids = [0, 1].map((row) => randomIds(config.blockSize, VOCAB, 50 + row));
    const result = await compare(config, exported, ids);
    report('baby, tanh GELU, fresh weights', result);
    expect(maxAbsDiff(result.floatLogits, tfjsLogits(model, ids))).toBeLessThanOrEqual(1e-4);
    // The same bounds as the exact GELU's graph above (measured: max 1.7e-2, mean 3.6e-3).
    expect(result.maxDiff).toBeLessThan(0.05);
    expect(result.meanDiff).toBeLessThan(0.01);
    model.dispose();
  });
});

describe('int8 graph of a trained model', () => {
  // A fresh model's argmax is its input token (tied embeddings, small blocks), which any
  // int8 graph keeps; after a little training the predictions depend on the blocks.
  it('picks the same greedy token as float32 at ≥ 95 % of positions on random ids', async () => {
    const { binarize } = await import('@minigpt/data/node');
    const { startTraining } = await import('@minigpt/trainer/node');
    const { readCheckpointDir } = await import('@minigpt/checkpoint/node');
    const text =
      'To be, or not to be: that is the question:\nWhether tis nobler in the mind to suffer\n' +
      'The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n';
    writeFileSync(join(work, 'input.txt'), text.repeat(30));
    await binarize({ input: join(work, 'input.txt'), outDir: join(work, 'data') });
    const trainer = await startTraining({
      dataDir: join(work, 'data'),
      outDir: join(work, 'run'),
      backend: 'cpu',
      config: {
        preset: 'nano',
        maxIters: 40,
        batchSize: 2,
        learningRate: 3e-3,
        warmupIters: 2,
        evalIters: 1,
        evalInterval: 1000,
        checkpointInterval: 1000,
      },
    });
    await trainer.train();
    trainer.dispose();
    const checkpoint = await readCheckpointDir(join(work, 'run'));
    const config = checkpoint.config.model;
    const exported = exportModel(config, checkpoint.weights, 'char', { quantize: 'int8' });
    const ids = Array.from({ length: 8 }, (_, row) =>
      randomIds(config.blockSize, config.vocabSize, 40 + row),
    );
    const result = await compare(config, exported, ids);
    report('nano, 40 training steps', result);
    expect(result.predictsInput).toBeLessThan(0.2);
    expect(result.agreement).toBeGreaterThanOrEqual(0.95);
    // Measured: max 1.2e-2, mean 2.2e-3 on logits of mean magnitude 0.69 (7-bit weights).
    expect(result.maxDiff).toBeLessThan(0.05);
    expect(result.meanDiff).toBeLessThan(0.01);
  }, 60_000);
});
