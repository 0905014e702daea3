// Which of two onnxruntime sessions of one model runs the next decode step: one whose
// intra-op pool has a thread per core ('wide') or one with a single thread ('narrow').
//
// Why two: onnxruntime splits every operator of a step evenly across its pool and waits for
// the slowest share. How much that gains depends on the machine, the model, the batch and
// the load, and can be a loss: on one 2-core Zen 5 host a pool of 2 threads decoded the
// seed-size model in int8 at batch 1 at 0.63–0.69× of one thread's speed and gained at most
// 1.1–1.2× anywhere (float32), while on another host of that family the pool was 1.2× faster
// at batch 16. With another process keeping a core busy (a browser, a build) the share
// on that core runs late and holds up every operator: the pool then fell to half the speed
// of one quiet thread. So the choice is measured, per batch size: the two sessions' decode
// steps are timed side by side, the pool runs only where it is clearly faster (a pool as fast
// as one thread only keeps more cores busy), and the choice is measured again every so often
// and as soon as its steps slow down. Both sessions run the same graph and give bit-identical
// logits (load.test.ts checks), so the choice changes only the time a step takes.
//
// This is the bookkeeping only: the caller times each run and reports it. Prefill steps
// (T > 1) always run on the pool, where their large products gain most, and are not timed,
// as their length varies.

export type ThreadLane = 'wide' | 'narrow';

/**
 * Decode steps from a choice to its next measurement: PROBE_INTERVAL after the first
 * measurement or a switch, then doubling each time the choice holds, up to MAX_PROBE_INTERVAL.
 */
const PROBE_INTERVAL = 128;
const MAX_PROBE_INTERVAL = 1024;
/** A measurement starts at once when the recent steps take this many times their reference. */
const SLOWDOWN = 1.5;
/**
 * The first measurement gives a batch size to the pool only where its steps take under
 * 1 − POOL_GAIN of one thread's: a pool as fast as one thread only keeps more cores busy.
 */
const POOL_GAIN = 0.1;
/**
 * After that, the lane running keeps the batch size unless the other beats that bar by MARGIN
 * more, against noise: the pool takes over under 0.855× one thread's step time and gives it up
 * over 0.945×.
 */
const MARGIN = 0.05;
/** Steps timed on the current lane whose median says whether it has slowed down. */
const RECENT_STEPS = 3;
/**
 * A measurement runs this many steps on the other lane, then as many back on the current one;
 * the first of each warms its caches and is not counted. The two lanes are compared on the
 * best of the others, so that one slow step (a page fault, a burst of another process's
 * work) decides nothing, and both are measured under the same load. What the winner's steps
 * took on average becomes the reference a slowdown is measured against.
 */
const PROBE_STEPS = 3;
/** Batch sizes remembered at once; a server sending many different ones starts over past this. */
const MAX_BATCH_SIZES = 64;

interface Probe {
  /** The lane measured against the current one. */
  readonly lane: ThreadLane;
  /** What started it: the batch size's first steps, a slowdown, or the interval. */
  readonly cause: 'first' | 'slowdown' | 'interval';
  /** Steps run so far: the first PROBE_STEPS on `lane`, the next PROBE_STEPS on the current lane. */
  steps: number;
  readonly challenger: number[];
  readonly incumbent: number[];
}

interface BatchState {
  lane: ThreadLane;
  /** The last RECENT_STEPS step times on `lane`, ms. */
  recent: number[];
  /** The mean step time on `lane` when it was last compared, ms. */
  reference: number | undefined;
  stepsSinceProbe: number;
  interval: number;
  probe: Probe | undefined;
}

export interface ThreadChoiceCounts {
  readonly wide: number;
  readonly narrow: number;
}

export class ThreadChoice {
  private readonly batches = new Map<number, BatchState>();
  private wideSteps = 0;
  private narrowSteps = 0;

  /** The lane for a step of `batch` rows of `tokens` new tokens each. */
  pick(batch: number, tokens: number): ThreadLane {
    const state = this.batches.get(batch);
    const lane = !state || tokens > 1 ? 'wide' : expectedLane(state);
    if (lane === 'wide') this.wideSteps++;
    else this.narrowSteps++;
    return lane;
  }

  /** Steps run on each lane so far (prefill included). */
  counts(): ThreadChoiceCounts {
    return { wide: this.wideSteps, narrow: this.narrowSteps };
  }

  /** How long a step that `pick` sent to `lane` took, in ms. */
  record(batch: number, tokens: number, lane: ThreadLane, ms: number): void {
    if (tokens > 1) return;
    let state = this.batches.get(batch);
    if (!state) {
      if (this.batches.size >= MAX_BATCH_SIZES) this.batches.clear();
      state = {
        lane: 'wide',
        recent: [],
        reference: undefined,
        stepsSinceProbe: 0,
        interval: PROBE_INTERVAL,
        probe: undefined,
      };
      this.batches.set(batch, state);
    }
    // A step that ran on another lane (concurrent generations on one model) says nothing.
    if (lane !== expectedLane(state)) return;
    const probe = state.probe;
    if (probe) {
      const phase = probe.steps < PROBE_STEPS ? probe.challenger : probe.incumbent;
      if (probe.steps % PROBE_STEPS > 0) phase.push(ms);
      probe.steps++;
      if (probe.steps === 2 * PROBE_STEPS) this.decide(state, probe);
      return;
    }
    state.recent.push(ms);
    if (state.recent.length > RECENT_STEPS) state.recent.shift();
    state.stepsSinceProbe++;
    if (state.recent.length < RECENT_STEPS) return;
    const cause =
      state.reference === undefined
        ? 'first'
        : median(state.recent) > state.reference * SLOWDOWN
          ? 'slowdown'
          : state.stepsSinceProbe >= state.interval
            ? 'interval'
            : undefined;
    if (cause)
      state.probe = { lane: other(state.lane), cause, steps: 0, challenger: [], incumbent: [] };
  }

  private decide(state: BatchState, probe: Probe): void {
    const challenger = Math.min(...probe.challenger);
    const incumbent = Math.min(...probe.incumbent);
    state.probe = undefined;
    state.stepsSinceProbe = 0;
    const [wide, narrow] =
      probe.lane === 'wide' ? [challenger, incumbent] : [incumbent, challenger];
    // After the first measurement the lane running keeps its place unless the other wins by
    // MARGIN.
    const hysteresis =
      probe.cause === 'first' ? 1 : state.lane === 'wide' ? 1 + MARGIN : 1 - MARGIN;
    const winner: ThreadLane = wide < narrow * (1 - POOL_GAIN) * hysteresis ? 'wide' : 'narrow';
    const held = winner === state.lane;
    state.lane = winner;
    state.recent = [];
    state.reference = mean(held ? probe.incumbent : probe.challenger);
    // A switch (load came or went) measures again soon after, in case it passes; a choice
    // that holds waits longer each time, slowdowns included (a core kept busy for minutes
    // would otherwise have the pool measured every 128 steps at its slowest).
    state.interval =
      held && probe.cause !== 'first'
        ? Math.min(state.interval * 2, MAX_PROBE_INTERVAL)
        : PROBE_INTERVAL;
  }
}

/** The lane a batch size's next decode step runs on. */
function expectedLane(state: BatchState): ThreadLane {
  const probe = state.probe;
  return probe && probe.steps < PROBE_STEPS ? probe.lane : state.lane;
}

function other(lane: ThreadLane): ThreadLane {
  return lane === 'wide' ? 'narrow' : 'wide';
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
