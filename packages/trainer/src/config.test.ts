import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TRAIN_CONFIG,
  RESUME_OVERRIDABLE_KEYS,
  ResumeConfigError,
  TrainConfigError,
  learningRateAt,
  modelConfigOf,
  resolveTrainConfig,
  resumeTrainConfig,
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

describe('the config of a resumed run', () => {
  // What a checkpoint's config.json holds under "train": the full config of its run.
  const saved = { ...resolveTrainConfig({ preset: 'nano', nLayer: 1, learningRate: 2e-3 }) };
  const source = 'out/checkpoints/ckpt-000000050/config.json';

  it("is the checkpoint's, with only the keys that may change changed", () => {
    expect(resumeTrainConfig(saved, {}, source)).toEqual(saved);
    const longer = resumeTrainConfig(saved, { maxIters: 500, lrDecayIters: 50 }, source);
    expect(longer).toEqual({ ...saved, maxIters: 500, lrDecayIters: 50 });
    // The original settings given again are no change.
    expect(resumeTrainConfig(saved, { preset: 'nano', nLayer: 1, batchSize: 4 }, source)).toEqual(
      saved,
    );
    expect(RESUME_OVERRIDABLE_KEYS).toEqual([
      'maxIters',
      'lrDecayIters',
      'evalInterval',
      'evalIters',
      'logInterval',
      'checkpointInterval',
      'keepCheckpoints',
    ]);
  });

  it('refuses other changes, listing each with both values', () => {
    const error = (() => {
      try {
        resumeTrainConfig(saved, { preset: 'baby', dropout: 0.2, seed: 7 }, source);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ResumeConfigError);
    expect((error as ResumeConfigError).file).toBe(source);
    expect((error as ResumeConfigError).conflicts).toEqual([
      { key: 'preset', checkpoint: 'nano', given: 'baby' },
      { key: 'dropout', checkpoint: 0, given: 0.2 },
      { key: 'seed', checkpoint: 1337, given: 7 },
    ]);
    expect((error as Error).message).toBe(
      `${source}: cannot resume — the checkpoint's model differs from this run's in preset (checkpoint "nano", now "baby"), dropout (checkpoint 0, now 0.2); ` +
        "its training settings differ in seed (checkpoint 1337, now 7). A resumed run keeps the checkpoint's model and training settings; " +
        'only maxIters, lrDecayIters, evalInterval, evalIters, logInterval, checkpointInterval, keepCheckpoints may change. Start a new run (another outDir) to change the others.',
    );
  });

  it('checks the overrides as a fresh run would, and names the checkpoint when its config is bad', () => {
    expect(() => resumeTrainConfig(saved, { max_iters: 5 }, source)).toThrow(
      /unknown config key "max_iters"/,
    );
    expect(() => resumeTrainConfig(saved, { maxIters: 0 }, source)).toThrow(
      /"maxIters" must be a positive integer/,
    );
    const bad = (() => {
      try {
        resumeTrainConfig({ ...saved, maxIters: 'many' }, {}, source);
      } catch (caught) {
        return caught;
      }
    })();
    expect(bad).toBeInstanceOf(TrainConfigError);
    expect(bad).toMatchObject({
      file: source,
      message: `${source}: "train": config key "maxIters" must be a number, got "many"`,
    });
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

  it('with the fused attention kernels (no (T, T) tensors kept), the seed batch of 64 runs whole', () => {
    const seed = resolveTrainConfig({ preset: 'seed' });
    // 6 · 128 · 32 · 256 floats = 25.2 MB a row: 85 rows fit 2 GiB.
    expect(rowsThatFit(seed, 2 * 1024 ** 3, 65, true)).toBe(64);
    expect(rowsThatFit(seed, 1.2e9, 65, true)).toBe(32); // 47 rows fit; 32 divides 64
    expect(rowsThatFit(seed, 1.2e9, 65, false)).toBe(16); // 23 rows fit with tfjs's attention
  });

  it("counts GPT-2's (T, V) logits: batch 4 at block 256 runs a row at a time in what 124 M parameters leave", () => {
    const gpt2 = resolveTrainConfig({
      nLayer: 12,
      nHead: 12,
      nEmbd: 768,
      blockSize: 256,
      batchSize: 4,
    });
    // 4 GiB − 20 bytes × 124.4 M parameters − 256 MiB of margin ≈ 1.54 GB for activations:
    // 604 MB a row without the logits (2 rows fit), 810 MB with them at vocab 50,257 (1 row).
    expect(rowsThatFit(gpt2, 1.54e9)).toBe(2);
    expect(rowsThatFit(gpt2, 1.54e9, 50257)).toBe(1);
    expect(rowsThatFit(gpt2, 1.54e9, 65)).toBe(2);
    // With the fused attention kernels: 302 MB a row, 508 MB with the logits (2 rows of 4).
    expect(rowsThatFit(gpt2, 1.54e9, 50257, true)).toBe(2);
    expect(rowsThatFit(gpt2, 1.54e9, 65, true)).toBe(4);
  });
});
