import { Writable } from 'node:stream';
import type { TrainerEvent } from '@minigpt/trainer';
import { describe, expect, it } from 'vitest';
import { TrainProgress, formatDuration } from './progress.js';

/** A stream that keeps what was written; a terminal when `tty`. */
function capture(tty: boolean) {
  const chunks: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
    { isTTY: tty, columns: 160 },
  );
  // Terminal escapes removed, as a person would read it.
  // eslint-disable-next-line no-control-regex
  const text = () => chunks.join('').replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '');
  return { stream, text };
}

const start = {
  type: 'start',
  backend: 'wasm',
  skippedBackends: [],
  config: { maxIters: 100, evalInterval: 50, logInterval: 10 },
  model: {},
  parameters: 1,
  microBatchRows: 12,
  startIteration: 0,
} as unknown as Extract<TrainerEvent, { type: 'start' }>;

/** An evaluation of 2 × 200 batches, `msPerBatch` each: its progress events, in order. */
function evaluation(iter: number, msPerBatch: number) {
  const events: Array<Extract<TrainerEvent, { type: 'eval-progress' }>> = [];
  // As the trainer sends them: train 0…200 of 200, then val 1…200 (its start is train's end).
  for (let done = 0; done <= 400; done++) {
    const split = done <= 200 ? 'train' : 'val';
    events.push({
      type: 'eval-progress',
      iter,
      split,
      batch: split === 'train' ? done : done - 200,
      batches: 200,
      done,
      total: 400,
      elapsedMs: done * msPerBatch,
    });
  }
  return events;
}

describe('formatDuration', () => {
  it('reads as a person would say it', () => {
    expect([0.4, 45, 61, 750, 3599, 3600, 81_600, 102_000].map(formatDuration)).toEqual([
      '0s',
      '45s',
      '1m01s',
      '12m30s',
      '59m59s',
      '1h00m',
      '22h40m',
      '28h20m',
    ]);
  });
});

describe('TrainProgress in log mode', () => {
  it('prints an evaluation line every few seconds, not one per batch, with an ETA', () => {
    let now = 0;
    const { stream, text } = capture(false);
    const progress = new TrainProgress({ stream, bar: false, logInterval: 10, now: () => now });
    progress.event(start);
    // 400 batches of 100 ms: 40 s of evaluation.
    for (const event of evaluation(0, 100)) {
      now = event.elapsedMs;
      progress.event(event);
    }
    const lines = text().trim().split('\n');
    // One line each 3 s of the 40 s (none at the start, none at the very end).
    expect(lines.length).toBe(13);
    expect(lines[0]).toBe('eval at iter 0: 30/400 batches (train 30/200), ETA 37s');
    expect(lines.at(-1)).toBe('eval at iter 0: 390/400 batches (val 190/200), ETA 1s');
  });

  it('prints nothing extra for an evaluation shorter than the interval', () => {
    let now = 0;
    const { stream, text } = capture(false);
    const progress = new TrainProgress({ stream, bar: false, logInterval: 10, now: () => now });
    for (const event of evaluation(0, 1)) {
      now = event.elapsedMs;
      progress.event(event);
    }
    expect(text()).toBe('');
  });

  it('prints a step line every logInterval, and after a step that ends 30 s of silence', () => {
    let now = 0;
    const { stream, text } = capture(false);
    const progress = new TrainProgress({ stream, bar: false, logInterval: 10, now: () => now });
    progress.event(start);
    const step = (iter: number, ms: number) => {
      now += ms;
      progress.event({
        type: 'step',
        iter,
        loss: 2,
        lr: 1e-3,
        gradNorm: 1,
        msPerIter: ms,
        tokensPerSec: 100,
      });
    };
    for (let iter = 1; iter <= 10; iter++) step(iter, 100);
    step(11, 31_000);
    step(12, 100);
    expect(
      text()
        .trim()
        .split('\n')
        .map((line) => line.split(':')[0]),
    ).toEqual(['iter 10', 'iter 11']);
  });
});

describe('TrainProgress on a terminal', () => {
  it('shows the evaluation as its own bar: batches done of all, the split, an ETA', async () => {
    const { stream, text } = capture(true);
    const progress = new TrainProgress({ stream, bar: true, logInterval: 10 });
    progress.event(start);
    progress.event({
      type: 'step',
      iter: 1,
      loss: 4.1234,
      lr: 1e-3,
      gradNorm: 1,
      msPerIter: 100,
      tokensPerSec: 7680,
    });
    // The bar redraws on its own timer too: let a frame pass.
    await new Promise((resolve) => setTimeout(resolve, 250));
    const events = evaluation(0, 100);
    for (const event of events.slice(0, 38)) progress.event(event);
    await new Promise((resolve) => setTimeout(resolve, 250));
    progress.line('a line printed meanwhile');
    for (const event of events.slice(38)) progress.event(event);
    progress.event({ type: 'eval', iter: 0, trainLoss: 4, valLoss: 4, best: false });
    progress.stop();
    const shown = text();
    expect(shown).toMatch(/train \|[█░]+\| iter 1\/100 \| loss 4\.1234 \| 7680 tok\/s \| ETA /);
    expect(shown).toMatch(/eval @0 \|[█░]+\| 37\/400 batches \(train 37\/200\) \| ETA 36s/);
    expect(shown).toContain('a line printed meanwhile\n');
  });
});
