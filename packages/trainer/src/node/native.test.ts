// The kernel sets change speed, not math: 20 iterations of `baby` (with dropout, so the
// same masks are drawn either way) on the wasm backend give the same losses with
// @minigpt/native-kernels, and with @minigpt/wasm-kernels (what startTraining falls back to
// where the addon is not built), as with tfjs's own wasm kernels, within 1e-3.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  causalAttention,
  dropout,
  FUSED_DROPOUT,
  fusedCausalAttention,
  hasFusedAttention,
} from '@minigpt/model';
import { installNativeKernels, uninstallNativeKernels } from '@minigpt/native-kernels';
import { installWasmKernels, uninstallWasmKernels } from '@minigpt/wasm-kernels';
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
  it.each([
    ['native', async () => installNativeKernels().installed, uninstallNativeKernels],
    ['WebAssembly', async () => (await installWasmKernels()).installed, uninstallWasmKernels],
  ] as const)(
    "%s fused attention gives causalAttention's values and gradients, dropping the same weights",
    async (_set, install, uninstall) => {
      // @minigpt/model's two paths on one backend: the fused kernels draw dropoutKeepMask's
      // stream themselves, so with dropout the same weights must drop (a different mask
      // would move the values by far more than rounding). T 23 is not a multiple of 8 (native
      // vectors) or 4 (WebAssembly's).
      const [batch, time, heads, headSize] = [3, 23, 4, 16];
      const width = heads * headSize;
      await tf.setBackend('wasm');
      expect(await install()).toBe(true);
      try {
        expect(hasFusedAttention()).toBe(true);
        const input = (seed: number) =>
          tf.tensor2d(
            Array.from(
              { length: batch * time * width },
              (_, i) => Math.sin(seed * 3.7 + i * 0.29) * 1.5,
            ),
            [batch * time, width],
          );
        const [q, k, v, weights] = [1, 2, 3, 4].map(input) as [
          tf.Tensor2D,
          tf.Tensor2D,
          tf.Tensor2D,
          tf.Tensor2D,
        ];
        for (const dropout of [undefined, { rate: 0.25, seed: 99 }]) {
          const reference = (qt: tf.Tensor2D, kt: tf.Tensor2D, vt: tf.Tensor2D) => {
            const split = (x: tf.Tensor2D) =>
              tf.transpose(
                tf.reshape(x, [batch, time, heads, headSize]),
                [0, 2, 1, 3],
              ) as tf.Tensor4D;
            const out = causalAttention(split(qt), split(kt), split(vt), dropout); // (B, nh, T, hs)
            return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch * time, width]);
          };
          const fused = (qt: tf.Tensor2D, kt: tf.Tensor2D, vt: tf.Tensor2D) =>
            fusedCausalAttention(tf.concat([qt, kt, vt], 1), batch, heads, dropout);
          // A weighted sum, so each output element has its own gradient.
          const results = [reference, fused].map((f) =>
            tf.valueAndGrads((qt, kt, vt) =>
              tf.sum(tf.mul(f(qt as tf.Tensor2D, kt as tf.Tensor2D, vt as tf.Tensor2D), weights)),
            )([q, k, v]),
          );
          const [ours, theirs] = results.map((r) => [r.value, ...r.grads].map((t) => t.dataSync()));
          for (let index = 0; index < ours!.length; index++) {
            let worst = 0;
            for (let i = 0; i < ours![index]!.length; i++)
              worst = Math.max(worst, Math.abs(ours![index]![i]! - theirs![index]![i]!));
            const scale = index === 0 ? Math.abs(ours![0]![0]!) : 1;
            expect(
              worst,
              `${['value', 'dq', 'dk', 'dv'][index]}, dropout ${!!dropout}`,
            ).toBeLessThan(1e-5 * Math.max(1, scale));
          }
        }
      } finally {
        uninstall();
      }
    },
  );

  it("native dropout gives the tfjs mask path's values and gradients, bit for bit", async () => {
    // @minigpt/model's dropout on one backend, with the addon's kernel and without it (the
    // mask drawn in JavaScript): 69,069 elements span several of the kernel's chunks and end
    // inside a vector. Any other mask, or another rounding of x·keepScale, changes bits.
    const shape = [3, 23, 1001];
    const size = 3 * 23 * 1001;
    await tf.setBackend('wasm');
    const x = tf.tensor3d(
      Array.from({ length: size }, (_, i) => Math.sin(i * 0.37) * 2),
      shape as [number, number, number],
    );
    const weights = tf.tensor3d(
      Array.from({ length: size }, (_, i) => Math.cos(i * 0.11)),
      shape as [number, number, number],
    );
    const run = (rate: number, seed: number) => {
      const { value, grads } = tf.valueAndGrads((input) =>
        tf.sum(tf.mul(dropout(input as tf.Tensor3D, rate, seed), weights)),
      )([x]);
      // The gradient is the dropped-out weights: dy·mask·keepScale, element by element.
      return {
        value: value.dataSync() as Float32Array,
        forward: dropout(x, rate, seed).dataSync() as Float32Array,
        grad: grads[0]!.dataSync() as Float32Array,
      };
    };
    const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (const [rate, seed] of [
      [0.1, 7],
      [0.5, 123456789],
    ] as const) {
      expect(tf.getKernel(FUSED_DROPOUT, 'wasm')).toBeUndefined();
      const reference = run(rate, seed);
      expect(installNativeKernels().installed).toBe(true);
      let fused: ReturnType<typeof run>;
      try {
        expect(tf.getKernel(FUSED_DROPOUT, 'wasm')).toBeDefined();
        fused = run(rate, seed);
      } finally {
        uninstallNativeKernels();
      }
      const dropped = reference.forward.filter((value) => value === 0).length / size;
      expect(Math.abs(dropped - rate)).toBeLessThan(0.01);
      expect(bytes(fused.forward).equals(bytes(reference.forward)), `forward, rate ${rate}`).toBe(
        true,
      );
      expect(bytes(fused.grad).equals(bytes(reference.grad)), `gradient, rate ${rate}`).toBe(true);
      expect(Math.abs(fused.value[0]! - reference.value[0]!)).toBeLessThan(1e-3);
    }
  });

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
          'Identity',
          'MinigptLayerNorm',
          'MinigptLayerNormGrad',
          'MinigptGelu',
          'MinigptGeluGrad',
          'MinigptAdamW',
          'MinigptSumOfSquares',
          'MinigptAttention',
          'MinigptAttentionGrad',
          'MinigptDropout',
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
