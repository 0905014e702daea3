// The fused graph (the `fused` option: onnxruntime's com.microsoft operators) beside the
// standard one: which operators it uses, that ONNX's checker accepts it, how many nodes a
// step runs, and that its int8 variant gives the standard int8 graph's logits. Its logits
// against tfjs — prefill, cached decode, padded batches, the cache in place — are checked in
// parity.test.ts, which runs every test on both graphs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { buildGptGraph, exportModel } from './index.js';
import {
  checkWithOnnx,
  maxAbsDiff,
  nodeCount,
  randomIds,
  runLogits,
  tanhGeluModel,
  tinyModel,
} from './test-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-fused-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const VOCAB = 37;

describe('fused graph', () => {
  it("uses SkipLayerNormalization, MultiHeadAttention and BiasGelu from com.microsoft, passes ONNX's checker (full_check)", async () => {
    const { config, model } = await tinyModel({ vocabSize: VOCAB }, 'nano', 31);
    const weights = await model.weightData();
    model.dispose();
    const exported = exportModel(config, weights, 'char', { fused: true, quantize: 'int8' });
    const paths = [join(work, 'fused.onnx'), join(work, 'fused_quantized.onnx')];
    writeFileSync(paths[0]!, exported.onnx);
    writeFileSync(paths[1]!, exported.onnxQuantized!);
    const [float, int8] = checkWithOnnx(paths);
    for (const checked of [float!, int8!]) {
      expect(checked.domains).toEqual(['', 'com.microsoft']);
      expect(checked.opTypes).toEqual(
        expect.arrayContaining([
          'SkipLayerNormalization',
          'MultiHeadAttention',
          'BiasGelu',
          'LayerNormalization',
        ]),
      );
      // No standard attention or GELU is left beside them.
      for (const gone of ['Softmax', 'Erf', 'If', 'Div'])
        expect(checked.opTypes).not.toContain(gone);
    }
    expect(int8!.opTypes).toEqual(
      expect.arrayContaining(['DynamicQuantizeLinear', 'MatMulInteger']),
    );
    expect(buildGptGraph(config, weights).domains.size).toBe(0); // the standard graph: ONNX's own
  });

  it('uses FastGelu for the tanh GELU', async () => {
    const { config, model } = await tanhGeluModel(VOCAB, 32);
    const graph = buildGptGraph(config, await model.weightData(), { fused: true });
    model.dispose();
    expect(graph.opTypes).toContain('FastGelu');
    expect(graph.opTypes).not.toContain('BiasGelu');
    expect(graph.opTypes).not.toContain('Tanh');
  });

  it('runs at most half the nodes of the standard graph in a decode step', async () => {
    const { config, model } = await tinyModel({ vocabSize: VOCAB }, 'baby', 33);
    const weights = await model.weightData();
    model.dispose();
    const standard = nodeCount(exportModel(config, weights, 'char').onnx);
    const fused = nodeCount(exportModel(config, weights, 'char', { fused: true }).onnx);
    console.log(`nodes: standard ${standard}, fused ${fused} (${config.nLayer} layers)`);
    expect(fused).toBeLessThanOrEqual(standard / 2);
  });

  it("int8: gives the standard int8 graph's logits (the same quantized weights), prefill and cached decode", async () => {
    const { config, model } = await tinyModel({ vocabSize: VOCAB }, 'nano', 34);
    const weights = await model.weightData();
    model.dispose();
    const sessions = await Promise.all(
      [false, true].map(async (fused) =>
        ort.InferenceSession.create(
          exportModel(config, weights, 'char', { fused, quantize: 'int8' }).onnxQuantized!,
        ),
      ),
    );
    const ids = [randomIds(9, VOCAB, 35), randomIds(9, VOCAB, 36)];
    const [standard, fused] = await Promise.all(
      sessions.map(async (session) => {
        const prefill = await runLogits(
          session,
          config,
          { ids: ids.map((row) => row.slice(0, 8)) },
          8,
        );
        const step = await runLogits(
          session,
          config,
          { ids: ids.map((row) => row.slice(8)), past: prefill.results },
          1,
        );
        return [prefill.logits, step.logits];
      }),
    );
    // Same int8 weights and activations quantized the same way: only float rounding differs.
    for (const index of [0, 1]) {
      expect(maxAbsDiff(fused![index]!, standard![index]!)).toBeLessThanOrEqual(1e-4);
    }
  });
});
