// One fuzz case: build input number `index` of a run from its own generator, feed it to the
// target, and classify the outcome. Shared by the worker of `pnpm fuzz` and the CI slice.
import { isMinigptError } from '@minigpt/errors';
import { Random } from '@minigpt/random';

/** The generator of case `index` of run `seed`: any case can be replayed alone. */
export function caseRandom(seed, index) {
  return new Random(seed * 2 ** 32 + index);
}

/** The input of case `index` of run `seed` (not timed: making it is the fuzzer's work). */
export function makeInput(target, context, seed, index) {
  return target.make(context, caseRandom(seed, index));
}

/** Makes and runs case `index` (see runInput). */
export async function runCase(target, context, seed, index) {
  return runInput(target, context, makeInput(target, context, seed, index));
}

/**
 * Feeds `input` to the target; resolves to { outcome: 'accepted' | 'typed' | 'other', ms,
 * error? }. 'typed' is a MinigptError (the reader refused the input as it should); 'other'
 * is any other exception: a finding. `ms` times the reader alone.
 */
export async function runInput(target, context, input) {
  const started = performance.now();
  try {
    await target.run(context, input);
    return { outcome: 'accepted', ms: performance.now() - started };
  } catch (error) {
    const ms = performance.now() - started;
    if (isMinigptError(error)) return { outcome: 'typed', ms };
    return { outcome: 'other', ms, error };
  }
}
