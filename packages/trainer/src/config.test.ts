import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TRAIN_CONFIG,
  learningRateAt,
  modelConfigOf,
  resolveTrainConfig,
  rowsThatFit,
} from './index.js';

describe('train config', () => {
  it('layers defaults, preset and overrides', () => {
    const seed = resolveTrainConfig({ preset: 'seed', maxIters: 10 });
    expect(seed).toMatchObject({
      nLayer: 6,
      nHead: 8,
      nEmbd: 256,
      blockSize: 128,
      dropout: 0.1,
      batchSize: 64,
      learningRate: 3e-4,
      maxIters: 10,
      checkpointInterval: 1000,
      logInterval: 500,
    });
    expect(resolveTrainConfig()).toEqual(DEFAULT_TRAIN_CONFIG);
    expect(modelConfigOf(resolveTrainConfig({ nLayer: 2 }), 65)).toMatchObject({
      nLayer: 2,
      nEmbd: 128,
      vocabSize: 65,
    });
  });

  it('rejects unknown keys (listing the valid ones) and wrong types', () => {
    expect(() => resolveTrainConfig({ max_iters: 5 })).toThrow(
      /unknown config key "max_iters"; valid keys: preset, nLayer, .*maxIters/,
    );
    expect(() => resolveTrainConfig({ maxIters: '5' })).toThrow(
      /"maxIters" must be a number, got "5"/,
    );
    expect(() => resolveTrainConfig({ bias: 1 })).toThrow(/"bias" must be a boolean/);
    expect(() => resolveTrainConfig({ batchSize: 0 })).toThrow(/positive integer/);
    expect(() => resolveTrainConfig({ preset: 'large' })).toThrow(
      /unknown preset "large"; presets: baby, seed, nano/,
    );
  });
});

describe('learning rate schedule', () => {
  const config = resolveTrainConfig({
    learningRate: 1e-3,
    minLr: 1e-4,
    warmupIters: 10,
    maxIters: 110,
  });
  it('warms up linearly, decays by cosine to minLr, then stays there', () => {
    expect(learningRateAt(0, config)).toBeCloseTo(1e-3 / 11);
    expect(learningRateAt(9, config)).toBeCloseTo(1e-3 * (10 / 11));
    expect(learningRateAt(10, config)).toBeCloseTo(1e-3);
    expect(learningRateAt(60, config)).toBeCloseTo((1e-3 + 1e-4) / 2);
    expect(learningRateAt(110, config)).toBeCloseTo(1e-4);
    expect(learningRateAt(500, config)).toBe(1e-4);
    expect(learningRateAt(60, { ...config, decayLr: false })).toBe(1e-3);
  });
});

describe('micro-batches on wasm', () => {
  it('splits the seed batch of 64 in two to fit 2 GB, and leaves baby whole', () => {
    expect(rowsThatFit(resolveTrainConfig({ preset: 'seed' }), 2 * 1024 ** 3)).toBe(32);
    expect(rowsThatFit(resolveTrainConfig({ preset: 'baby' }), 2 * 1024 ** 3)).toBe(12);
    expect(rowsThatFit(resolveTrainConfig({ preset: 'seed', batchSize: 60 }), 1e9)).toBe(15); // 19 rows fit; 15 divides 60
    expect(rowsThatFit(resolveTrainConfig({ preset: 'seed' }), 1)).toBe(1);
  });
});
