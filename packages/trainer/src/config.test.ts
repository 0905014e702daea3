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
  it('warms up linearly, decays by cosine to minLr, then stays there (to 1e-9)', () => {
    // Known answers from nanoGPT's get_lr, worked by hand: warmup lr·(it+1)/(warmup+1), then
    // minLr + ½(1 + cos(π·(it − warmup)/(decay − warmup)))·(lr − minLr), minLr after decay.
    const cases: Array<[number, number]> = [
      [0, 1e-3 / 11],
      [4, 5e-3 / 11],
      [9, 1e-3 * (10 / 11)],
      [10, 1e-3],
      [35, 1e-4 + 0.5 * (1 + Math.SQRT1_2) * 9e-4], // a quarter of the way: cos(π/4)
      [60, 5.5e-4], // halfway: cos(π/2) = 0
      [85, 1e-4 + 0.5 * (1 - Math.SQRT1_2) * 9e-4], // three quarters: cos(3π/4)
      [110, 1e-4],
      [111, 1e-4],
      [500, 1e-4],
    ];
    for (const [iteration, expected] of cases) {
      expect(learningRateAt(iteration, config), `iteration ${iteration}`).toBeCloseTo(expected, 9);
    }
    expect(learningRateAt(35, config)).toBeCloseTo(8.681980515339464e-4, 9);
    expect(learningRateAt(60, { ...config, decayLr: false })).toBe(1e-3);
    // lrDecayIters ends the decay early: minLr from there on.
    expect(learningRateAt(50, { ...config, lrDecayIters: 50 })).toBeCloseTo(1e-4, 9);
    expect(learningRateAt(30, { ...config, lrDecayIters: 50 })).toBeCloseTo(5.5e-4, 9);
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
