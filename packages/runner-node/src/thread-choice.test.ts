// ThreadChoice against modelled step times: which lane it settles on, how fast it follows a
// change of load, what its measurements cost, and that noise does not make it flap.
import { Random } from '@minigpt/random';
import { describe, expect, it } from 'vitest';
import { ThreadChoice, type ThreadLane } from './thread-choice.js';

/** Step time (ms) of a lane at step `step`. */
type Cost = (lane: ThreadLane, step: number) => number;

/** Runs `steps` decode steps of `batch` rows through `choice`; the lane of each. */
function drive(choice: ThreadChoice, steps: number, cost: Cost, batch = 1, from = 0): ThreadLane[] {
  const lanes: ThreadLane[] = [];
  for (let step = from; step < from + steps; step++) {
    const lane = choice.pick(batch, 1);
    choice.record(batch, 1, lane, cost(lane, step));
    lanes.push(lane);
  }
  return lanes;
}

const share = (lanes: readonly ThreadLane[], lane: ThreadLane) =>
  lanes.filter((each) => each === lane).length / lanes.length;
/** How often the lane chosen changed: runs of the length of a measurement (3) left out. */
function choiceChanges(lanes: readonly ThreadLane[]): number {
  const runs: { lane: ThreadLane; length: number }[] = [];
  for (const lane of lanes)
    if (runs.at(-1)?.lane === lane) runs.at(-1)!.length++;
    else runs.push({ lane, length: 1 });
  const chosen = runs.filter((run) => run.length > 3).map((run) => run.lane);
  return chosen.filter((lane, i) => i > 0 && lane !== chosen[i - 1]).length;
}

describe('ThreadChoice', () => {
  it('settles on the faster lane, and its measurements of the other cost under 2 % of the steps', () => {
    const narrowFaster = drive(new ThreadChoice(), 4000, (lane) => (lane === 'narrow' ? 0.8 : 1));
    // Three wide steps, then the first measurement: 3 steps on narrow, 3 back on wide.
    expect(narrowFaster.slice(0, 10)).toEqual([
      ...Array(3).fill('wide'),
      ...Array(3).fill('narrow'),
      ...Array(3).fill('wide'),
      'narrow',
    ]);
    expect(share(narrowFaster.slice(9), 'narrow')).toBeGreaterThan(0.98);

    const wideFaster = drive(new ThreadChoice(), 4000, (lane) => (lane === 'narrow' ? 1.3 : 1));
    expect(share(wideFaster, 'wide')).toBeGreaterThan(0.98);
    // Probes back off while they confirm the choice: 128, 256, 512, then every 1024 steps.
    const probes = wideFaster.filter(
      (lane, i) => lane === 'narrow' && wideFaster[i - 1] === 'wide',
    );
    expect(probes.length).toBeLessThanOrEqual(7);
    expect(probes.length).toBeGreaterThanOrEqual(5);
  });

  it('gives the pool a batch size only where it is over 10 % faster than one thread', () => {
    const asFast = drive(new ThreadChoice(), 4000, (lane) => (lane === 'narrow' ? 1.02 : 1));
    expect(share(asFast.slice(9), 'narrow')).toBeGreaterThan(0.98);
    const slightlyFaster = drive(new ThreadChoice(), 4000, (lane) =>
      lane === 'narrow' ? 1.08 : 1,
    );
    expect(share(slightlyFaster.slice(9), 'narrow')).toBeGreaterThan(0.98);
    const clearlyFaster = drive(new ThreadChoice(), 4000, (lane) => (lane === 'narrow' ? 1.2 : 1));
    expect(share(clearlyFaster, 'wide')).toBeGreaterThan(0.98);
    // Once one thread runs, the pool must be under 0.855× its step time to take over.
    const busyThenQuiet: Cost = (lane, step) => (lane === 'narrow' ? 1.13 : step < 500 ? 3 : 1); // the pool 1.13× faster after step 500
    const held = drive(new ThreadChoice(), 4000, busyThenQuiet);
    expect(share(held.slice(500), 'narrow')).toBeGreaterThan(0.98);
    const taken = drive(new ThreadChoice(), 4000, (lane, step) =>
      lane === 'narrow' ? 1.25 : step < 500 ? 3 : 1,
    );
    expect(share(taken.slice(1600), 'wide')).toBeGreaterThan(0.98);
  });

  it('does not flap at the edge: the lane running must be beaten by a margin', () => {
    // The pool 10 % faster, right at the bar, with ±4 % noise on every step.
    const random = new Random(5);
    const lanes = drive(
      new ThreadChoice(),
      8000,
      (lane) => (lane === 'narrow' ? 1 / 0.9 : 1) * (1 + 0.08 * (random.nextFloat() - 0.5)),
    );
    expect(choiceChanges(lanes)).toBeLessThanOrEqual(4);
  });

  it('moves to one thread within a few steps of a core getting busy, and back after it is free', () => {
    // Quiet: the pool is faster. A busy core slows the pool's every operator (2.2×) and the
    // single thread a little (1.25 → 1.4 ms).
    const busy = (step: number) => step >= 1000 && step < 3000;
    const cost: Cost = (lane, step) =>
      lane === 'wide' ? (busy(step) ? 2.2 : 1) : busy(step) ? 1.4 : 1.25;
    const choice = new ThreadChoice();
    const lanes = drive(choice, 5000, cost);
    expect(share(lanes.slice(20, 1000), 'wide')).toBeGreaterThan(0.97);
    // The slowdown is seen once the median of 3 steps is 1.5× the reference; 3 probe steps.
    const firstNarrow = lanes.indexOf('narrow', 1000);
    expect(firstNarrow - 1000).toBeLessThanOrEqual(3);
    expect(share(lanes.slice(firstNarrow, 3000), 'narrow')).toBeGreaterThan(0.98);
    // Back to the pool within the longest probe interval (1024 steps) of the load leaving.
    const backToWide = lanes.indexOf('wide', 3000);
    expect(backToWide - 3000).toBeLessThanOrEqual(1024 + 3);
    expect(share(lanes.slice(backToWide + 3), 'wide')).toBeGreaterThan(0.97);
  });

  it('chooses per batch size', () => {
    const choice = new ThreadChoice();
    const single: ThreadLane[] = [];
    const sixteen: ThreadLane[] = [];
    for (let round = 0; round < 100; round++) {
      single.push(...drive(choice, 20, (lane) => (lane === 'narrow' ? 0.3 : 0.4), 1));
      sixteen.push(...drive(choice, 20, (lane) => (lane === 'narrow' ? 2.4 : 1.8), 16));
    }
    expect(share(single.slice(10), 'narrow')).toBeGreaterThan(0.98);
    expect(share(sixteen, 'wide')).toBeGreaterThan(0.98);
  });

  it('is not thrown by noisy steps: ±15 % jitter and a 5× step one time in fifty', () => {
    const random = new Random(11);
    const noisy =
      (wide: number, narrow: number): Cost =>
      (lane) =>
        (lane === 'wide' ? wide : narrow) *
        (1 + 0.3 * (random.nextFloat() - 0.5)) *
        (random.nextFloat() < 0.02 ? 5 : 1);
    const narrowFaster = drive(new ThreadChoice(), 4000, noisy(1, 0.75));
    expect(share(narrowFaster, 'narrow')).toBeGreaterThan(0.95);
    const wideFaster = drive(new ThreadChoice(), 4000, noisy(1, 1.35));
    expect(share(wideFaster, 'wide')).toBeGreaterThan(0.95);
    expect(choiceChanges(wideFaster)).toBeLessThanOrEqual(2);
  });

  it('measures seldom under bursty load: 30 % of steps twice as long cost it under 3 %', () => {
    const random = new Random(23);
    // One thread 0.8 ms, the pool 1 ms; each step on either is doubled 30 % of the time.
    const burst: number[] = Array.from({ length: 10_000 }, () =>
      random.nextFloat() < 0.3 ? 2 : 1,
    );
    const choice = new ThreadChoice();
    let total = 0;
    let ideal = 0;
    const lanes: ThreadLane[] = [];
    for (let step = 0; step < burst.length; step++) {
      const lane = choice.pick(1, 1);
      const ms = (lane === 'narrow' ? 0.8 : 1) * burst[step]!;
      choice.record(1, 1, lane, ms);
      lanes.push(lane);
      total += ms;
      ideal += 0.8 * burst[step]!;
    }
    const probes = lanes.filter((lane, i) => lane === 'wide' && lanes[i - 1] === 'narrow').length;
    expect(probes).toBeLessThan(150);
    expect(total / ideal).toBeLessThan(1.03);
  });

  it('runs a prefill on the pool without timing it, and counts every step', () => {
    const choice = new ThreadChoice();
    expect(choice.pick(4, 40)).toBe('wide');
    drive(choice, 50, (lane) => (lane === 'narrow' ? 0.5 : 1), 4);
    // Decode steps of batch 4 run on one thread now; a prefill still runs on the pool.
    expect(choice.pick(4, 40)).toBe('wide');
    // A prefill's time (100 ms) is not a decode step's: it starts no measurement.
    choice.record(4, 40, 'narrow', 100);
    expect(drive(choice, 3, (lane) => (lane === 'narrow' ? 0.5 : 1), 4)).toEqual([
      'narrow',
      'narrow',
      'narrow',
    ]);
    expect(choice.counts()).toEqual({ wide: 8, narrow: 47 });
  });

  it('ignores a step timed on a lane it did not pick (concurrent generations)', () => {
    const choice = new ThreadChoice();
    drive(choice, 50, (lane) => (lane === 'narrow' ? 0.5 : 1));
    // Stray wide records, however fast, change nothing while narrow is the choice.
    for (let i = 0; i < 10; i++) choice.record(1, 1, 'wide', 0.01);
    expect(drive(choice, 20, (lane) => (lane === 'narrow' ? 0.5 : 1))).toEqual(
      Array(20).fill('narrow'),
    );
  });
});
