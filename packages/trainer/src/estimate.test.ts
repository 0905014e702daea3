import { describe, expect, it } from 'vitest';
import {
  ALWAYS_AFFORDED_EVAL_SECONDS,
  MIN_CAPPED_EVAL_ITERS,
  affordableEvalIters,
  countEvaluations,
  estimateRunTime,
  type RunTimingInput,
} from './index.js';

/** The run: the seed config (5000 iterations, eval every 500 over 200 batches). */
const seedRun: RunTimingInput = {
  startIteration: 0,
  maxIters: 5000,
  evalInterval: 500,
  evalIters: 200,
  evaluatesAtStart: true,
  msPerStep: 16_000,
  msPerEvalBatch: 5_000,
};

describe('countEvaluations', () => {
  it('counts the start, every evalInterval and the last step once each', () => {
    // 0, 500, …, 5000.
    expect(countEvaluations(seedRun)).toBe(11);
    // 0 and 3: the last step is evaluated although 3 is no multiple of 500.
    expect(countEvaluations({ ...seedRun, maxIters: 3 })).toBe(2);
    // Resumed at 6 to 9, every 3: only 9 (6 was evaluated by the run that saved it).
    expect(
      countEvaluations({
        startIteration: 6,
        maxIters: 9,
        evalInterval: 3,
        evaluatesAtStart: false,
      }),
    ).toBe(1);
    // Resumed at 500 to 1234, every 500: 1000 and the last step.
    expect(
      countEvaluations({
        startIteration: 500,
        maxIters: 1234,
        evalInterval: 500,
        evaluatesAtStart: false,
      }),
    ).toBe(2);
    // Resumed at maxIters: nothing left to do.
    expect(
      countEvaluations({
        startIteration: 9,
        maxIters: 9,
        evalInterval: 3,
        evaluatesAtStart: false,
      }),
    ).toBe(0);
  });
});

describe('estimateRunTime', () => {
  it('is steps × time per step plus evaluations × 2 splits × evalIters × time per batch', () => {
    const estimate = estimateRunTime(seedRun);
    expect(estimate).toEqual({
      steps: 5000,
      evaluations: 11,
      evalBatches: 11 * 2 * 200,
      stepSeconds: 5000 * 16,
      evalSeconds: 4400 * 5,
      totalSeconds: 80_000 + 22_000,
    });
    // The bar said "ETA 22h40m" (about 16 s a step); evaluation adds 6.1 h to that.
    expect(estimate.totalSeconds / 3600).toBeCloseTo(28.33, 2);
  });

  it('counts only the steps left on a resume', () => {
    const estimate = estimateRunTime({
      ...seedRun,
      startIteration: 4000,
      evaluatesAtStart: false,
    });
    expect(estimate.steps).toBe(1000);
    expect(estimate.evaluations).toBe(2); // 4500 and 5000
    expect(estimate.totalSeconds).toBe(1000 * 16 + 2 * 2 * 200 * 5);
  });
});

describe('affordableEvalIters', () => {
  it('keeps evalIters when the evaluations take no longer than the steps', () => {
    expect(affordableEvalIters(seedRun)).toBe(200); // 22,000 s of evaluation < 80,000 s of steps
    const nano = { ...seedRun, maxIters: 50, evalInterval: 25, evalIters: 2 };
    expect(affordableEvalIters({ ...nano, msPerStep: 1, msPerEvalBatch: 50 })).toBe(2);
  });

  it('keeps evaluations that take only seconds in all, however short the training', () => {
    const small = { ...seedRun, maxIters: 3, msPerStep: 50, msPerEvalBatch: 10 };
    // 2 evaluations × 2 × 200 × 10 ms = 8 s, against 0.15 s of steps.
    expect(ALWAYS_AFFORDED_EVAL_SECONDS).toBeGreaterThanOrEqual(8);
    expect(affordableEvalIters(small)).toBe(200);
    // Without that allowance it would be lowered.
    expect(affordableEvalIters(small, 0)).toBe(MIN_CAPPED_EVAL_ITERS);
  });

  it('caps a tiny run to what its steps afford, never below the minimum', () => {
    // The issue's --maxIters=3 with evalIters 200: 2 evaluations × 2 × 200 batches × 5 s
    // = 4000 s against 48 s of steps. 48 s affords 2 batches a split: the minimum applies.
    const tiny = { ...seedRun, maxIters: 3 };
    expect(affordableEvalIters(tiny)).toBe(MIN_CAPPED_EVAL_ITERS);
    // 300 steps of 16 s over 2 evaluations (0 and 300) at 5 s a batch: 4800 s affords
    // floor(4800 / (2 × 2 × 5)) = 240 batches a split, more than the 200 asked for.
    expect(affordableEvalIters({ ...seedRun, maxIters: 300 })).toBe(200);
    // 100 steps: 1600 s affords floor(1600 / 20) = 80.
    expect(affordableEvalIters({ ...seedRun, maxIters: 100 })).toBe(80);
  });

  it('never raises evalIters', () => {
    expect(
      affordableEvalIters({ ...seedRun, maxIters: 1, evalIters: 4, msPerEvalBatch: 1e6 }),
    ).toBe(4);
  });
});
