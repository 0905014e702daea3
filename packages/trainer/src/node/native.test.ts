// The kernel sets change speed, not math: 20 iterations of `baby` (with dropout, so the
// same masks are drawn either way) on the wasm backend give the same losses with
// @minigpt/native-kernels, and with @minigpt/wasm-kernels (what startTraining falls back to
// where the addon is not built), as with tfjs's own wasm kernels, within 1e-3.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TrainerEvent } from '../index.js';
import { startTraining } from './index.js';
import { prepareData, useTempDir } from '../test-helpers.js';

const tempDir = useTempDir();

async function losses(dataDir: string, outDir: string, nativeKernels: boolean, maxIters = 20) {
  const trainer = await startTraining({
    dataDir,
    outDir,
    backend: 'wasm',
    nativeKernels,
    estimate: false,
    config: {
      preset: 'baby',
      dropout: 0.1,
      maxIters,
      lrDecayIters: 20, // the same schedule for a shorter run: its steps are the first ones
      evalIters: 1, // the losses compared are the steps'; evaluation would only add time
      evalInterval: 1000,
      checkpointInterval: 1000,
      logInterval: 1000,
    },
  });
  const events: TrainerEvent[] = [];
  await trainer.train((event) => events.push(event));
  trainer.dispose();
  const start = events.find((event) => event.type === 'start');
  const steps = events.flatMap((event) => (event.type === 'step' ? [event.loss] : []));
  return { start, steps };
}

describe('native kernels in training', () => {
  it('give the reference tfjs path its losses over 20 iterations (≤ 1e-3)', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    const reference = await losses(dataDir, join(dir, 'reference'), false);
    // MINIGPT_NATIVE=0 makes the addon unavailable, as on a machine without a compiler.
    process.env['MINIGPT_NATIVE'] = '0';
    let wasm: Awaited<ReturnType<typeof losses>>;
    try {
      // 10 iterations: the same first 10 steps, in half the time.
      wasm = await losses(dataDir, join(dir, 'wasm'), true, 10);
    } finally {
      delete process.env['MINIGPT_NATIVE'];
    }
    const native = await losses(dataDir, join(dir, 'native'), true);
    expect(reference.start).toMatchObject({
      nativeKernels: { installed: false, reason: 'turned off' },
    });
    expect(native.start).toMatchObject({
      nativeKernels: {
        installed: true,
        kernels: [
          'BatchMatMul',
          'Exp',
          'Erf',
          'Slice',
          'SplitV',
          'GatherV2',
          'MinigptLayerNorm',
          'MinigptLayerNormGrad',
          'MinigptGelu',
          'MinigptGeluGrad',
          'MinigptAdamW',
          'MinigptSumOfSquares',
        ],
      },
    });
    expect(native.start).toMatchObject({
      nativeKernels: { kind: 'native', threads: expect.any(Number) },
    });
    expect(wasm.start).toMatchObject({
      nativeKernels: { installed: true, kind: 'wasm', reason: 'MINIGPT_NATIVE=0', threads: 1 },
    });
    expect(native.steps).toHaveLength(20);
    expect(wasm.steps).toHaveLength(10);
    for (const run of [native, wasm])
      for (let iter = 0; iter < run.steps.length; iter++)
        expect(Math.abs(run.steps[iter]! - reference.steps[iter]!)).toBeLessThanOrEqual(1e-3);
    // And training moves: the curve is not flat.
    expect(native.steps[19]!).toBeLessThan(native.steps[0]! - 0.3);
    // 50 steps, 20 on tfjs's single-threaded wasm kernels: ~15 s alone on 2 cores, and
    // more beside the rest of the suite on a slow machine.
  }, 150_000);
});
