// A tiny valid checkpoint made in memory, for the tests of readers and writers.
import { weightShapes } from '@minigpt/model/weights';
import type { GPTConfig } from '@minigpt/model/config';
import { encodeCheckpoint, type CheckpointContents } from './codec.js';

export const TINY_MODEL: GPTConfig = {
  vocabSize: 6,
  blockSize: 4,
  nLayer: 1,
  nHead: 2,
  nEmbd: 4,
  dropout: 0,
  bias: true,
};

/** Contents whose values are a fixed function of the index (reproducible, all finite). */
export function tinyContents(iteration = 3): CheckpointContents {
  const weights = new Map(
    [...weightShapes(TINY_MODEL)].map(([name, shape], w) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return [
        name,
        { shape, data: Float32Array.from({ length: size }, (_, i) => ((i + w) % 7) / 10 - 0.3) },
      ];
    }),
  );
  const moments = new Map(
    [...weights].map(([name, { data }]) => [
      name,
      { m: data.map((x) => x / 100), v: data.map((x) => (x * x) / 1000) },
    ]),
  );
  return {
    config: { model: TINY_MODEL, train: { preset: 'nano', batchSize: 2, decayLr: true } },
    state: {
      iteration,
      bestValLoss: 1.25,
      random: [1, 2, 3, 4],
      backend: 'cpu',
      savedAt: '2026-11-29T12:00:00.000Z',
      dataSha256: 'ab'.repeat(32),
    },
    tokenizer: { type: 'char', version: 1, vocab: ['\n', ' ', 'a', 'b', 'c', 'd'] } as never,
    weights,
    optimizer: { step: iteration, moments },
  };
}

/** The five files of `tinyContents()`. */
export function tinyFiles(iteration = 3): Map<string, Uint8Array> {
  return encodeCheckpoint(tinyContents(iteration));
}
