// Progress on the terminal: a bar for long byte-based jobs (silent when stderr is not a
// terminal: logs and pipes get the final summary only), and training's display (a bar for
// the steps and one for each evaluation; in log mode, throttled lines).
import type { TrainerEvent } from '@minigpt/trainer';
import { countEvaluations } from '@minigpt/trainer/config';
import cliProgress from 'cli-progress';

export interface ByteProgress {
  update(phase: string, bytesDone: number, bytesTotal: number): void;
  stop(): void;
}

export function createByteProgress(enabled: boolean): ByteProgress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: '{phase} |{bar}| {percentage}% | {doneMB}/{totalMB} MB | ETA {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let currentPhase = '';
  return {
    update(phase, bytesDone, bytesTotal) {
      const payload = {
        phase: phase.padEnd(15),
        doneMB: (bytesDone / 1e6).toFixed(1),
        totalMB: (bytesTotal / 1e6).toFixed(1),
      };
      if (!started || phase !== currentPhase) {
        if (started) bar.stop();
        bar.start(bytesTotal, bytesDone, payload);
        started = true;
        currentPhase = phase;
      } else {
        bar.update(bytesDone, payload);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** A duration for people: "45s", "12m30s", "22h40m". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const minutes = Math.round(s / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** The trainer's events this display shows (the start's, the steps' and the evaluations'). */
type ProgressEvent = Extract<
  TrainerEvent,
  { type: 'start' | 'step' | 'eval-progress' | 'eval' | 'estimate' }
>;

export interface TrainProgressOptions {
  /** Where bars and lines go (stderr). */
  readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** A live bar (needs a terminal) instead of log lines. */
  readonly bar: boolean;
  /** In log mode, a step line every this many iterations. */
  readonly logInterval: number;
  /** In log mode, at most one evaluation-progress line this often (default 3 s). */
  readonly logEveryMs?: number;
  /**
   * In log mode, a step line also whenever nothing was printed for this long (default 30 s),
   * so a slow run's log shows it is alive between logInterval lines.
   */
  readonly quietMs?: number;
  /** The clock, in ms (tests). */
  readonly now?: () => number;
}

/**
 * Training's live display. With a bar: one line at the bottom, the training bar (iteration,
 * loss, tokens/s, an ETA that counts the evaluations still to come) or, while evaluating,
 * the evaluation's (batches done of all, per split, and its ETA); lines printed meanwhile
 * appear above it. In log mode: a step line every logInterval iterations (and after any
 * step that ends 30 s of silence), and during a long evaluation a progress line at most
 * every few seconds, never one per batch.
 */
export class TrainProgress {
  private readonly trainBar?: cliProgress.SingleBar;
  private readonly evalBar?: cliProgress.SingleBar;
  private active?: cliProgress.SingleBar;
  private readonly now: () => number;
  private readonly logEveryMs: number;
  private maxIters = 0;
  private iteration = 0;
  private lastLoss = '-';
  private lastTokS = '-';
  /** Recent step times, for the training ETA. */
  private readonly stepMs: number[] = [];
  /** Time of one whole evaluation, once measured (the estimate) or seen. */
  private evaluationMs?: number;
  private evalInterval = 1;
  private lastEvalLine = 0;
  private lastLine: number;

  constructor(private readonly options: TrainProgressOptions) {
    this.now = options.now ?? (() => performance.now());
    this.logEveryMs = options.logEveryMs ?? 3000;
    this.lastLine = this.now();
    if (options.bar) {
      const common = {
        stream: options.stream as NodeJS.WriteStream,
        hideCursor: true,
        clearOnComplete: true,
        barsize: 30,
      };
      this.trainBar = new cliProgress.SingleBar(
        {
          ...common,
          format:
            'train |{bar}| iter {value}/{total} | loss {loss} | {tokS} tok/s | ETA {remaining}',
        },
        cliProgress.Presets.shades_classic,
      );
      this.evalBar = new cliProgress.SingleBar(
        {
          ...common,
          format:
            'eval @{iter} |{bar}| {value}/{total} batches ({split} {batch}/{batches}) | ETA {remaining}',
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  /** Prints a line; with a bar up, above it. */
  line(text: string): void {
    const bar = this.active;
    if (bar) this.pause();
    this.options.stream.write(`${text}\n`);
    this.lastLine = this.now();
    if (bar === this.trainBar) this.showTrainBar();
    else if (bar) this.active = undefined; // an evaluation's next batch brings its bar back
  }

  event(event: ProgressEvent): void {
    switch (event.type) {
      case 'start':
        this.maxIters = event.config.maxIters;
        this.iteration = event.startIteration;
        this.evalInterval = event.config.evalInterval;
        this.showTrainBar();
        break;
      case 'step':
        this.iteration = event.iter;
        this.lastLoss = event.loss.toFixed(4);
        this.lastTokS = event.tokensPerSec.toFixed(0);
        this.stepMs.push(event.msPerIter);
        if (this.stepMs.length > 20) this.stepMs.shift();
        if (this.trainBar) {
          if (this.active === this.trainBar) this.trainBar.update(event.iter, this.trainPayload());
        } else if (
          event.iter % this.options.logInterval === 0 ||
          this.now() - this.lastLine >= (this.options.quietMs ?? 30_000)
        ) {
          this.line(
            `iter ${event.iter}: loss ${event.loss.toFixed(4)}, lr ${event.lr.toExponential(2)}, ${event.msPerIter.toFixed(0)} ms/iter, ${event.tokensPerSec.toFixed(0)} tok/s`,
          );
        }
        break;
      case 'estimate':
        this.evaluationMs = event.msPerEvalBatch * 2 * event.evalIters.used;
        break;
      case 'eval-progress':
        this.evalProgress(event);
        break;
      case 'eval':
        if (this.active === this.evalBar) this.pause();
        this.showTrainBar();
        break;
    }
  }

  /** Takes the bar down (the lines printed so far stay). */
  stop(): void {
    this.pause();
  }

  private evalProgress(event: Extract<TrainerEvent, { type: 'eval-progress' }>): void {
    const remaining =
      event.done > 0 ? (event.elapsedMs / event.done) * (event.total - event.done) : undefined;
    const eta = remaining === undefined ? '-' : formatDuration(remaining / 1000);
    if (event.done === event.total && event.total > 0) this.evaluationMs = event.elapsedMs;
    if (this.evalBar) {
      const payload = {
        iter: event.iter,
        split: event.split,
        batch: event.batch,
        batches: event.batches,
        remaining: eta,
      };
      if (this.active !== this.evalBar) {
        this.pause();
        this.evalBar.start(event.total, event.done, payload);
        this.active = this.evalBar;
      } else {
        this.evalBar.update(event.done, payload);
      }
      return;
    }
    const now = this.now();
    if (event.done === 0) {
      this.lastEvalLine = now;
      return;
    }
    if (event.done === event.total || now - this.lastEvalLine < this.logEveryMs) return;
    this.lastEvalLine = now;
    this.line(
      `eval at iter ${event.iter}: ${event.done}/${event.total} batches (${event.split} ${event.batch}/${event.batches}), ETA ${eta}`,
    );
  }

  private showTrainBar(): void {
    if (!this.trainBar || this.iteration >= this.maxIters) return;
    this.pause();
    this.trainBar.start(this.maxIters, this.iteration, this.trainPayload());
    this.active = this.trainBar;
  }

  private pause(): void {
    this.active?.stop();
    this.active = undefined;
  }

  /** The training bar's fields; its ETA is the steps left plus the evaluations left. */
  private trainPayload(): Record<string, string> {
    const left = this.maxIters - this.iteration;
    let eta = '-';
    if (this.stepMs.length > 0) {
      const sorted = [...this.stepMs].sort((a, b) => a - b);
      const stepMs = sorted[Math.floor(sorted.length / 2)]!;
      const evaluations = countEvaluations({
        startIteration: this.iteration,
        maxIters: this.maxIters,
        evalInterval: this.evalInterval,
        evaluatesAtStart: false,
      });
      eta = formatDuration((left * stepMs + evaluations * (this.evaluationMs ?? 0)) / 1000);
    }
    // Not `eta`: cli-progress fills that one itself, from the bar's own rate.
    return { loss: this.lastLoss, tokS: this.lastTokS, remaining: eta };
  }
}
