// How long a run will take, from a couple of measured steps and evaluation batches, and how
// many evaluation batches a short run can afford. Pure functions: the trainer measures, these
// do the arithmetic, and the CLI decides what is worth a warning.

/** The measurements and the plan an estimate is made from. */
export interface RunTimingInput {
  /** The iteration the run starts at (0 fresh, the checkpoint's on resume). */
  readonly startIteration: number;
  readonly maxIters: number;
  readonly evalInterval: number;
  /** Batches per split per evaluation. */
  readonly evalIters: number;
  /** Whether the run evaluates the starting weights (a fresh run does, at iteration 0). */
  readonly evaluatesAtStart: boolean;
  /** One optimizer step (all its micro-batches and accumulation), measured. */
  readonly msPerStep: number;
  /** One evaluation batch (a forward pass of batchSize rows), measured. */
  readonly msPerEvalBatch: number;
}

export interface RunTimeEstimate {
  /** Optimizer steps from startIteration to maxIters. */
  readonly steps: number;
  /** Evaluations: at the start (fresh runs), every evalInterval, and after the last step. */
  readonly evaluations: number;
  /** Forward passes all evaluations take together: evaluations × 2 splits × evalIters. */
  readonly evalBatches: number;
  readonly stepSeconds: number;
  readonly evalSeconds: number;
  readonly totalSeconds: number;
}

/** Evaluations a run does between `startIteration` and `maxIters` (see RunTimeEstimate). */
export function countEvaluations(
  run: Pick<RunTimingInput, 'startIteration' | 'maxIters' | 'evalInterval' | 'evaluatesAtStart'>,
): number {
  const { startIteration, maxIters, evalInterval } = run;
  if (maxIters <= startIteration) return run.evaluatesAtStart ? 1 : 0;
  const periodic = Math.floor(maxIters / evalInterval) - Math.floor(startIteration / evalInterval);
  const final = maxIters % evalInterval === 0 ? 0 : 1;
  return (run.evaluatesAtStart ? 1 : 0) + periodic + final;
}

/** steps × time per step + evaluations × 2 splits × evalIters × time per evaluation batch. */
export function estimateRunTime(input: RunTimingInput): RunTimeEstimate {
  const steps = Math.max(0, input.maxIters - input.startIteration);
  const evaluations = countEvaluations(input);
  const evalBatches = evaluations * 2 * input.evalIters;
  const stepSeconds = (steps * input.msPerStep) / 1000;
  const evalSeconds = (evalBatches * input.msPerEvalBatch) / 1000;
  return {
    steps,
    evaluations,
    evalBatches,
    stepSeconds,
    evalSeconds,
    totalSeconds: stepSeconds + evalSeconds,
  };
}

/**
 * Fewest batches per split a capped evaluation keeps: below this the loss estimate is too
 * noisy to compare evaluations (10 batches of the `baby` preset are 7,680 tokens a split).
 */
export const MIN_CAPPED_EVAL_ITERS = 10;

/**
 * Evaluations that take no longer than this in all are never lowered: there is nothing
 * worth saving (a 30-step run with evalIters 200 of a small model, say).
 */
export const ALWAYS_AFFORDED_EVAL_SECONDS = 10;

/**
 * The evalIters a run can afford: its evaluations may take as long as its training steps
 * (or ALWAYS_AFFORDED_EVAL_SECONDS, whichever is longer), but not longer. A run whose
 * evaluations fit keeps its evalIters; one whose evaluations would cost more (a tiny
 * maxIters with a config's evalIters 200, say) gets the most batches that fit, but never
 * fewer than MIN_CAPPED_EVAL_ITERS, and never more than it asked for.
 */
export function affordableEvalIters(
  input: RunTimingInput,
  alwaysAffordedSeconds: number = ALWAYS_AFFORDED_EVAL_SECONDS,
): number {
  const estimate = estimateRunTime(input);
  const budget = Math.max(estimate.stepSeconds, alwaysAffordedSeconds);
  if (estimate.evalSeconds <= budget || estimate.evaluations === 0) return input.evalIters;
  const perBatchOfEverySplit = (estimate.evaluations * 2 * input.msPerEvalBatch) / 1000;
  const fits = Math.floor(budget / perBatchOfEverySplit);
  return Math.min(input.evalIters, Math.max(MIN_CAPPED_EVAL_ITERS, fits));
}
