// Parity at the tfjs → ONNX boundary for the float32 graphs: the same weights give the same
// logits in tfjs and onnxruntime, for whole batches, for the last k positions only, token by
// token through the KV cache, and for left-padded batches of different lengths. Running past
// the window or the vocabulary is an onnxruntime error that names the rule.
import {
  CACHE_ROWS_OUTPUT,
  cacheRowsModel,
  editGraphOutputs,
  OnnxDataType,
} from '@minigpt/runtime';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { exportModel } from './index.js';
import {
  feeds,
  logitsRow,
  maxAbsDiff,
  nodeCount,
  opCount,
  randomIds,
  runLogits,
  tanhGeluModel,
  tfjsLogits,
  tinyModel,
} from './test-helpers.js';

const VOCAB = 37;

// Each test runs on both graphs: the standard operators' and the fused one (onnxruntime's
// com.microsoft operators: the `fused` export option).
for (const graph of [{ fused: false }, { fused: true }]) {
  describe(graph.fused ? 'fused graph (com.microsoft operators)' : 'standard graph', () => {
    describe('float32 graph against tfjs', () => {
      for (const bias of [true, false]) {
        it(`gives tfjs's logits (nano, bias ${bias}), batch 2, lengths 1, 7 and blockSize`, async () => {
          const { config, model } = await tinyModel(
            { vocabSize: VOCAB, bias },
            'nano',
            bias ? 1 : 2,
          );
          const weights = await model.weightData();
          const session = await ort.InferenceSession.create(
            exportModel(config, weights, 'char', graph).onnx,
          );
          // The graph variant with num_logits_to_keep (not exported; see GraphOptions).
          const keeping = await ort.InferenceSession.create(
            exportModel(config, weights, 'char', { ...graph, numLogitsToKeep: true }).onnx,
          );
          expect(session.inputNames).not.toContain('num_logits_to_keep');
          for (const length of [1, 7, config.blockSize]) {
            const ids = [randomIds(length, VOCAB, length), randomIds(length, VOCAB, length + 100)];
            const expected = tfjsLogits(model, ids); // (2, T, V)
            const all = await runLogits(session, config, { ids }, length);
            expect(maxAbsDiff(all.logits, expected)).toBeLessThanOrEqual(1e-4);

            // num_logits_to_keep = k: the last k positions of each row, (2, k, V).
            for (const keep of [1, 3].filter((k) => k <= length)) {
              const { logits } = await runLogits(keeping, config, { ids, keep }, keep);
              const lastRows = [0, 1].flatMap((row) => [
                ...expected.subarray(
                  (row * length + length - keep) * VOCAB,
                  (row * length + length) * VOCAB,
                ),
              ]);
              expect(maxAbsDiff(logits, lastRows)).toBeLessThanOrEqual(1e-4);
            }
          }
          model.dispose();
        });
      }

      it("gives tfjs's logits with the tanh GELU (gelu_tanh), not the exact GELU's, prefill and cached decode", async () => {
        const { config, exactConfig, model } = await tanhGeluModel(VOCAB, 7);
        const weights = await model.weightData();
        const session = await ort.InferenceSession.create(
          exportModel(config, weights, 'char', graph).onnx,
        );
        const exact = await ort.InferenceSession.create(
          exportModel(exactConfig, weights, 'char', graph).onnx,
        );
        for (const length of [1, 7, config.blockSize]) {
          const ids = [
            randomIds(length, VOCAB, length + 7),
            randomIds(length, VOCAB, length + 107),
          ];
          const expected = tfjsLogits(model, ids); // (2, T, V)
          const tanh = await runLogits(session, config, { ids }, length);
          // Measured: 8e-7, 2.8e-6 and 2.0e-6 at lengths 1, 7 and 16 (onnxruntime fuses FastGelu).
          expect(maxAbsDiff(tanh.logits, expected)).toBeLessThanOrEqual(1e-4);
          if (length === config.blockSize) {
            // The exact GELU's graph is far off these logits (measured: 8.8e-3).
            const { logits } = await runLogits(exact, config, { ids }, length);
            expect(maxAbsDiff(logits, expected)).toBeGreaterThan(1e-3);
            // The last position again, through the KV cache of the others.
            const prefill = await runLogits(
              session,
              config,
              { ids: ids.map((row) => row.slice(0, -1)) },
              length - 1,
            );
            const last = await runLogits(
              session,
              config,
              { ids: ids.map((row) => row.slice(-1)), past: prefill.results },
              1,
            );
            const lastRows = [0, 1].flatMap((row) => [
              ...logitsRow(expected, (row + 1) * length - 1, VOCAB),
            ]);
            expect(maxAbsDiff(last.logits, lastRows)).toBeLessThanOrEqual(1e-4);
          }
        }
        model.dispose();
      });

      it('decoding token by token with the KV cache gives the full pass logits', async () => {
        const { config, model } = await tinyModel({ vocabSize: VOCAB }, 'nano', 3);
        const { onnx } = exportModel(config, await model.weightData(), 'char', graph);
        const session = await ort.InferenceSession.create(onnx);
        // transformers.js fetches every declared output: only logits and the cache are declared.
        expect(session.outputNames).toEqual([
          'logits',
          ...Array.from({ length: config.nLayer }, (_, layer) => [
            `present.${layer}.key`,
            `present.${layer}.value`,
          ]).flat(),
        ]);
        const ids = randomIds(config.blockSize, VOCAB, 9);
        const full = tfjsLogits(model, [ids]); // (1, T, V)
        model.dispose();

        // Prefill 5 tokens, then one at a time.
        let step = await runLogits(session, config, { ids: [ids.slice(0, 5)] }, 5);
        expect(maxAbsDiff(step.logits, full.subarray(0, 5 * VOCAB))).toBeLessThanOrEqual(1e-4);
        for (let t = 5; t < ids.length; t++) {
          step = await runLogits(session, config, { ids: [[ids[t]!]], past: step.results }, 1);
          expect(step.results['present.0.key']!.dims).toEqual([
            1,
            config.nHead,
            t + 1,
            config.nEmbd / config.nHead,
          ]);
          expect(maxAbsDiff(step.logits, logitsRow(full, t, VOCAB))).toBeLessThanOrEqual(1e-4);
        }
      });

      it('computes new_key_values (the step rows of present) for a runner that declares them', async () => {
        const { config, model } = await tinyModel({ vocabSize: VOCAB }, 'nano', 4);
        const { onnx, manifest } = exportModel(config, await model.weightData(), 'char', graph);
        model.dispose();
        const headSize = config.nEmbd / config.nHead;
        // Declare the rows as outputs beside present.
        const rows = Array.from({ length: config.nLayer }, (_, layer) =>
          [manifest.outputs.newKey!, manifest.outputs.newValue!].map((pattern) => ({
            name: pattern.replace('{i}', String(layer)),
            dataType: OnnxDataType.FLOAT,
            dims: ['batch_size', config.nHead, 'sequence_length', headSize],
          })),
        ).flat();
        const session = await ort.InferenceSession.create(editGraphOutputs(onnx, { add: rows }));
        const ids = randomIds(6, VOCAB, 11);
        const prefill = await runLogits(session, config, { ids: [ids.slice(0, 4)] }, 4);
        const decode = await runLogits(
          session,
          config,
          { ids: [ids.slice(4)], past: prefill.results },
          2,
        );
        // new_key_values (B, nh, T, hs) are exactly the last T slots of present (B, nh, 4+T, hs).
        for (const layer of [0, config.nLayer - 1]) {
          for (const kind of ['key', 'value']) {
            const present = decode.results[`present.${layer}.${kind}`]!;
            const added = decode.results[`new_key_values.${layer}.${kind}`]!;
            expect(added.dims).toEqual([1, config.nHead, 2, headSize]);
            const presentData = present.data as Float32Array;
            for (let head = 0; head < config.nHead; head++) {
              const start = (head * 6 + 4) * headSize;
              expect(
                (added.data as Float32Array).subarray(
                  head * 2 * headSize,
                  (head + 1) * 2 * headSize,
                ),
              ).toEqual(presentData.subarray(start, start + 2 * headSize));
            }
          }
        }
      });
    });

    describe('the cache in place (the runners: cacheRowsModel)', () => {
      it('gives the logits of a contiguous cache from capacity slots with the empty ones masked, without present', async () => {
        const { config, model } = await tinyModel({ vocabSize: VOCAB, blockSize: 64 }, 'nano', 4);
        const { onnx, manifest } = exportModel(config, await model.weightData(), 'char', graph);
        model.dispose();
        const headSize = config.nEmbd / config.nHead;
        const published = await ort.InferenceSession.create(onnx);
        const inPlace = await ort.InferenceSession.create(cacheRowsModel(onnx, manifest));
        const rowNames = Array.from({ length: config.nLayer }, (_, layer) => [
          `new_key_values.${layer}.key`,
          `new_key_values.${layer}.value`,
        ]).flat();
        expect(inPlace.outputNames).toEqual(['logits', ...rowNames, CACHE_ROWS_OUTPUT]);
        // The Concats that build present (two per layer) are gone: nothing else reads present;
        // one Concat packs the rows into CACHE_ROWS_OUTPUT. In the fused graph
        // MultiHeadAttention writes present itself: no node goes. The If around each layer's
        // attention over the past is replaced by its branch (two nodes).
        const edited = cacheRowsModel(onnx, manifest);
        expect(opCount(onnx, 'Concat') - opCount(edited, 'Concat')).toBe(
          graph.fused ? -1 : 2 * config.nLayer - 1,
        );
        expect([opCount(onnx, 'If'), opCount(edited, 'If')]).toEqual([
          graph.fused ? 0 : config.nLayer,
          0,
        ]);
        expect(nodeCount(onnx) - nodeCount(edited)).toBe(graph.fused ? -1 : config.nLayer - 1);

        // Contiguous: prefill 5, then 4 steps of one token, present fed back.
        const ids = randomIds(9, VOCAB, 21);
        let contiguous = await runLogits(published, config, { ids: [ids.slice(0, 5)] }, 5);
        const expected: Float32Array[] = [];
        for (let t = 5; t < 9; t++) {
          contiguous = await runLogits(
            published,
            config,
            { ids: [[ids[t]!]], past: contiguous.results },
            1,
          );
          expected.push(contiguous.logits.slice());
        }
        // In place: 16 slots per head, the first `length` filled from the rows, the rest junk
        // (finite) that the mask must keep out.
        const capacity = 16;
        const caches = rowNames.map(() =>
          new Float32Array(config.nHead * capacity * headSize).fill(3.5),
        ); // (1, nh, 16, hs)
        const write = (results: ort.InferenceSession.OnnxValueMapType, at: number, count: number) =>
          rowNames.forEach((name, index) => {
            const rows = results[name]!.data as Float32Array; // (1, nh, count, hs)
            for (let head = 0; head < config.nHead; head++)
              caches[index]!.set(
                rows.subarray(head * count * headSize, (head + 1) * count * headSize),
                (head * capacity + at) * headSize,
              );
          });
        const prefill = await inPlace.run(feeds(config, { ids: [ids.slice(0, 5)] }));
        write(prefill, 0, 5);
        for (let t = 5; t < 9; t++) {
          const stepFeeds = feeds(config, {
            ids: [[ids[t]!]],
            mask: [[...Array(t).fill(1), ...Array(capacity - t).fill(0), 1]], // (1, 16 + 1)
            positions: [[t]],
          });
          rowNames.forEach((name, index) => {
            stepFeeds[name.replace('new_key_values', 'past_key_values')] = new ort.Tensor(
              'float32',
              caches[index]!,
              [1, config.nHead, capacity, headSize],
            );
          });
          const results = await inPlace.run(stepFeeds);
          expect(
            maxAbsDiff(results['logits']!.data as Float32Array, expected[t - 5]!),
          ).toBeLessThanOrEqual(1e-5);
          // The packed rows are the rows, cache input after cache input, bit for bit.
          const packed = results[CACHE_ROWS_OUTPUT]!;
          expect(packed.dims).toEqual([rowNames.length, config.nHead, 1, headSize]);
          expect(Array.from(packed.data as Float32Array)).toEqual(
            rowNames.flatMap((name) => Array.from(results[name]!.data as Float32Array)),
          );
          write(results, t, 1);
        }
      });
    });

    describe('left-padded batches', () => {
      it('give each row the logits of its sequence alone, in prefill and in cached decode', async () => {
        const { config, model } = await tinyModel({ vocabSize: VOCAB, blockSize: 64 }, 'nano', 5);
        const session = await ort.InferenceSession.create(
          exportModel(config, await model.weightData(), 'char', graph).onnx,
        );
        const lengths = [1, 9, 23, 40];
        const width = Math.max(...lengths);
        const sequences = lengths.map((length, row) => randomIds(length, VOCAB, 200 + row));
        const padding = (row: number) => width - sequences[row]!.length;
        // Pads are id 0 at position 0, masked out: any id inside the vocabulary would do.
        const ids = sequences.map((sequence) => [
          ...new Array<number>(width - sequence.length).fill(0),
          ...sequence,
        ]);
        let mask = sequences.map((sequence) => [
          ...new Array<number>(width - sequence.length).fill(0),
          ...new Array<number>(sequence.length).fill(1),
        ]);
        const positions = sequences.map((sequence) => [
          ...new Array<number>(width - sequence.length).fill(0),
          ...sequence.map((_, t) => t),
        ]);

        const prefill = await runLogits(session, config, { ids, mask, positions }, width); // (4, 40, V)
        for (const [row, sequence] of sequences.entries()) {
          const alone = tfjsLogits(model, [sequence]); // (1, L, V)
          const start = (row * width + padding(row)) * VOCAB;
          const real = prefill.logits.subarray(start, start + sequence.length * VOCAB);
          expect(maxAbsDiff(real, alone), `row ${row}`).toBeLessThanOrEqual(1e-4);
        }

        // Then 4 decode steps through the cache, (4, 1, V) each.
        let step = prefill;
        for (let decoded = 1; decoded <= 4; decoded++) {
          const next = randomIds(sequences.length, VOCAB, 300 + decoded);
          mask = mask.map((rowMask) => [...rowMask, 1]);
          step = await runLogits(
            session,
            config,
            {
              ids: next.map((id) => [id]),
              mask,
              positions: sequences.map((sequence) => [sequence.length]),
              past: step.results,
            },
            1,
          );
          for (const [row, sequence] of sequences.entries()) {
            sequence.push(next[row]!);
            const alone = tfjsLogits(model, [sequence]);
            expect(
              maxAbsDiff(
                logitsRow(step.logits, row, VOCAB),
                logitsRow(alone, sequence.length - 1, VOCAB),
              ),
              `row ${row} after ${decoded} decode steps`,
            ).toBeLessThanOrEqual(1e-4);
          }
        }
        model.dispose();
      });
    });

    describe('past the window or the vocabulary', () => {
      it('onnxruntime throws, naming the rule, instead of returning short logits', async () => {
        const { config, model } = await tinyModel({ vocabSize: VOCAB }, 'nano', 6);
        // The errors below are expected: keep onnxruntime from logging them (4 = fatal only).
        const session = await ort.InferenceSession.create(
          exportModel(config, await model.weightData(), 'char', graph).onnx,
          { logSeverityLevel: 4 },
        );
        model.dispose();
        // A full window (blockSize tokens in the cache), then one more token at position blockSize.
        const full = await runLogits(
          session,
          config,
          { ids: [randomIds(config.blockSize, VOCAB, 7)] },
          config.blockSize,
        );
        await expect(
          session.run(feeds(config, { ids: [[1]], past: full.results })),
        ).rejects.toThrow(`position_ids must be below n_positions ${config.blockSize}`);
        // In a prefill too: one row's positions run to blockSize.
        await expect(
          session.run(
            feeds(config, {
              ids: [
                [1, 2],
                [3, 4],
              ],
              positions: [
                [0, 1],
                [config.blockSize - 1, config.blockSize],
              ],
            }),
          ),
        ).rejects.toThrow(`position_ids must be below n_positions ${config.blockSize}`);
        await expect(session.run(feeds(config, { ids: [[1, VOCAB, 2]] }))).rejects.toThrow(
          `input_ids must be below vocab_size ${VOCAB}`,
        );
      });
    });
  });
}
