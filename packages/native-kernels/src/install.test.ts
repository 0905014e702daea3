// The native kernels against tfjs's own: same products (float32 rounding aside) for every
// transpose and batch layout the GPT uses, installed on the wasm backend in place of its
// kernel; and a clear reason when the addon is missing.
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NATIVE_KERNEL_NAMES,
  installNativeKernels,
  loadNativeAddon,
  uninstallNativeKernels,
} from './index.js';

/** Reference products on tfjs's cpu backend. */
async function onCpu(
  a: number[][],
  b: number[][],
  shapes: [number[], number[]],
  ta: boolean,
  tb: boolean,
) {
  await tf.setBackend('cpu');
  const product = tf.matMul(tf.tensor(a.flat(), shapes[0]), tf.tensor(b.flat(), shapes[1]), ta, tb);
  const result = { shape: product.shape, data: await product.data() };
  product.dispose();
  return result;
}

function values(count: number, seed: number): number[][] {
  return [Array.from({ length: count }, (_, i) => Math.sin(seed * 7.1 + i * 0.37) * 2)];
}

const layouts: Array<{ name: string; a: number[]; b: number[]; ta: boolean; tb: boolean }> = [];
for (const ta of [false, true])
  for (const tb of [false, true]) {
    layouts.push({
      name: `2-D ${ta ? 'Aᵀ' : 'A'}·${tb ? 'Bᵀ' : 'B'}`,
      a: ta ? [37, 70] : [70, 37],
      b: tb ? [45, 37] : [37, 45],
      ta,
      tb,
    });
    layouts.push({
      name: `batched (2, 3) ${ta ? 'Aᵀ' : 'A'}·${tb ? 'Bᵀ' : 'B'}`,
      a: ta ? [2, 3, 19, 33] : [2, 3, 33, 19],
      b: tb ? [2, 3, 40, 19] : [2, 3, 19, 40],
      ta,
      tb,
    });
  }
layouts.push({
  name: 'a batch times one matrix',
  a: [4, 50, 24],
  b: [24, 66],
  ta: false,
  tb: false,
});
layouts.push({
  name: 'one matrix times a batch',
  a: [50, 24],
  b: [5, 24, 66],
  ta: false,
  tb: false,
});
layouts.push({
  name: 'large enough for threads',
  a: [300, 200],
  b: [200, 260],
  ta: false,
  tb: false,
});
// K 1100: five K blocks accumulated, and on threads C cut into blocks each summed over all
// of K by one thread (gemmSplitC); 150 columns: 9 whole panels and a part; transposed
// operands packed along their rows in memory.
layouts.push({
  name: 'Aᵀ·B over K blocks, threaded (a weight gradient)',
  a: [1100, 130],
  b: [1100, 150],
  ta: true,
  tb: false,
});
layouts.push({
  name: 'A·Bᵀ over K blocks, threaded (an input gradient)',
  a: [130, 1100],
  b: [150, 1100],
  ta: false,
  tb: true,
});
layouts.push({ name: 'empty inner dimension', a: [3, 0], b: [0, 4], ta: false, tb: false });

describe('native kernels', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('the addon is built here and reports its threads', () => {
    const loaded = loadNativeAddon();
    expect(loaded.addon, loaded.addon ? '' : loaded.reason).not.toBeNull();
    expect(loaded.addon!.info().threads).toBeGreaterThanOrEqual(1);
  });

  it('installs on the wasm backend', () => {
    const result = installNativeKernels();
    expect(result).toMatchObject({ installed: true, kernels: [...NATIVE_KERNEL_NAMES] });
    expect((tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc as { native?: true }).native).toBe(
      true,
    );
    // Twice is harmless.
    expect(installNativeKernels().installed).toBe(true);
    uninstallNativeKernels();
    expect(
      (tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc as { native?: true }).native,
    ).toBeUndefined();
  });

  for (const layout of layouts) {
    it(`matMul ${layout.name} equals tfjs's cpu kernel`, async () => {
      const size = (shape: number[]) => shape.reduce((x, y) => x * y, 1);
      const a = values(size(layout.a), 1);
      const b = values(size(layout.b), 2);
      const expected = await onCpu(a, b, [layout.a, layout.b], layout.ta, layout.tb);
      await tf.setBackend('wasm');
      installNativeKernels();
      const product = tf.matMul(
        tf.tensor(a.flat(), layout.a),
        tf.tensor(b.flat(), layout.b),
        layout.ta,
        layout.tb,
      );
      expect(product.shape).toEqual(expected.shape);
      const data = await product.data();
      let worst = 0;
      for (let i = 0; i < data.length; i++)
        worst = Math.max(worst, Math.abs(data[i]! - expected.data[i]!));
      expect(worst).toBeLessThan(1e-3);
      product.dispose();
    });
  }

  it("exp and erf equal tfjs's cpu kernels (float32 rounding aside), edges included", async () => {
    const xs = [
      ...Array.from({ length: 5000 }, (_, i) => -20 + (40 * i) / 4999),
      -1e9,
      -100,
      -87.5,
      0,
      88.5,
      100,
      1e-8,
      -1e-8,
    ];
    await tf.setBackend('cpu');
    const input = tf.tensor1d(xs);
    const [expCpu, erfCpu] = [await tf.exp(input).data(), await tf.erf(input).data()];
    input.dispose();
    await tf.setBackend('wasm');
    installNativeKernels();
    const onWasm = tf.tensor1d(xs);
    const [expNative, erfNative] = [await tf.exp(onWasm).data(), await tf.erf(onWasm).data()];
    for (let i = 0; i < xs.length; i++) {
      const expected = expCpu[i]!;
      if (expected === Infinity) expect(expNative[i]).toBe(Infinity);
      // Below float32's smallest normal (x < −87.3) the native exp flushes to 0.
      else if (expected < 1.2e-38) expect(expNative[i]!).toBeLessThan(1.2e-38);
      else expect(Math.abs(expNative[i]! - expected) / expected).toBeLessThan(1e-6);
      expect(Math.abs(erfNative[i]! - erfCpu[i]!)).toBeLessThan(1e-6);
    }
    // A tensor of another shape, not a multiple of the vector width.
    const matrix = tf.exp(tf.fill([3, 7], 1));
    expect(matrix.shape).toEqual([3, 7]);
    expect(Math.abs((await matrix.data())[20]! - Math.E)).toBeLessThan(1e-6);
  });

  it('fused LayerNorm and its backward equal tfjs autodiff of the same formula (cpu)', async () => {
    const [rows, channels] = [37, 24];
    const x = values(rows * channels, 3)
      .flat()
      .map((v, i) => v * (1 + (i % 5)));
    const gamma = values(channels, 4).flat();
    const beta = values(channels, 5).flat();
    const dy = values(rows * channels, 6).flat();
    // Reference: LayerNorm written in tf ops, differentiated by tfjs on cpu.
    await tf.setBackend('cpu');
    const reference = (withBeta: boolean) =>
      tf.tidy(() => {
        const f = (xt: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const mean = tf.mean(xt, -1, true);
          const centered = tf.sub(xt, mean);
          const variance = tf.mean(tf.square(centered), -1, true);
          const y = tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, 1e-5))), g);
          // (Without beta, b·0 keeps b in the graph so tf.grads can differentiate by it.)
          return tf.add(y, withBeta ? b : tf.mul(b, 0));
        };
        const inputs = [tf.tensor2d(x, [rows, channels]), tf.tensor1d(gamma), tf.tensor1d(beta)];
        const grads = tf.grads(f)(inputs, tf.tensor2d(dy, [rows, channels]));
        return [f(inputs[0]!, inputs[1]!, inputs[2]!), ...grads].map((t) => t.arraySync());
      });
    for (const withBeta of [true, false]) {
      const [y, dx, dGamma, dBeta] = reference(withBeta);
      await tf.setBackend('wasm');
      installNativeKernels();
      const inputs = {
        x: tf.tensor2d(x, [rows, channels]),
        gamma: tf.tensor1d(gamma),
        ...(withBeta ? { beta: tf.tensor1d(beta) } : {}),
      };
      const [yN, normalized, rstd] = tf
        .engine()
        .runKernel('MinigptLayerNorm', inputs, { epsilon: 1e-5 }) as tf.Tensor[];
      expect(rstd!.shape).toEqual([rows, 1]);
      const [dxN, dGammaN, dBetaN] = tf.engine().runKernel('MinigptLayerNormGrad', {
        dy: tf.tensor2d(dy, [rows, channels]),
        normalized: normalized!,
        rstd: rstd!,
        gamma: inputs.gamma,
      }) as tf.Tensor[];
      const close = (a: unknown, b: tf.Tensor) => {
        const expected = (a as number[] | number[][]).flat();
        const actual = b.dataSync();
        for (let i = 0; i < expected.length; i++)
          expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThan(1e-4);
      };
      close(y, yN!);
      close(dx, dxN!);
      close(dGamma, dGammaN!);
      if (withBeta) close(dBeta, dBetaN!);
      await tf.setBackend('cpu');
    }
  });

  it('fused GELU and its backward equal tfjs autodiff of x·Φ(x) (cpu)', async () => {
    const x = Array.from({ length: 1001 }, (_, i) => -8 + (16 * i) / 1000);
    const dy = x.map((_, i) => Math.cos(i * 0.3));
    await tf.setBackend('cpu');
    const f = (t: tf.Tensor) => tf.mul(t, tf.mul(0.5, tf.add(1, tf.erf(tf.mul(t, Math.SQRT1_2)))));
    const [y, dx] = tf.tidy(() => {
      const input = tf.tensor1d(x);
      return [f(input).dataSync(), tf.grad(f)(input, tf.tensor1d(dy)).dataSync()];
    });
    await tf.setBackend('wasm');
    installNativeKernels();
    const input = tf.tensor1d(x);
    const yNative = (tf.engine().runKernel('MinigptGelu', { x: input }) as tf.Tensor).dataSync();
    const dxNative = (
      tf.engine().runKernel('MinigptGeluGrad', { dy: tf.tensor1d(dy), x: input }) as tf.Tensor
    ).dataSync();
    for (let i = 0; i < x.length; i++) {
      expect(Math.abs(yNative[i]! - y![i]!)).toBeLessThan(5e-6);
      expect(Math.abs(dxNative[i]! - dx![i]!)).toBeLessThan(5e-6);
    }
    expect(() =>
      tf.engine().runKernel('MinigptGeluGrad', { dy: tf.tensor1d([1, 2]), x: input }),
    ).toThrow(/dy and x must have the same shape/);
  });

  it('fused AdamW equals the same update as tfjs ops (cpu), with and without decay', async () => {
    const size = 70_001; // spans several threads' chunks and a ragged tail
    const wave = (seed: number, scale = 1) =>
      Array.from({ length: size }, (_, i) => Math.sin(seed * 3.7 + i * 0.013) * scale);
    const [weight, grad, m] = [wave(1), wave(2, 5), wave(3, 0.1)];
    const v = wave(4, 0.01).map((x) => x * x);
    const hyper = {
      beta1: 0.9,
      beta2: 0.95,
      epsilon: 1e-8,
      correction1: 0.271,
      correction2: 0.0975,
      lr: 3e-3,
    };
    const scale = 0.37;
    for (const decay of [1, 1 - 3e-3 * 0.1]) {
      // The reference: the tfjs ops @minigpt/trainer's AdamW runs without the kernel.
      await tf.setBackend('cpu');
      const expected = tf.tidy(() => {
        const g = tf.mul(tf.tensor1d(grad), scale);
        const m1 = tf.add(tf.mul(tf.tensor1d(m), hyper.beta1), tf.mul(g, 1 - hyper.beta1));
        const v1 = tf.add(
          tf.mul(tf.tensor1d(v), hyper.beta2),
          tf.mul(tf.square(g), 1 - hyper.beta2),
        );
        const update = tf.div(
          tf.div(m1, hyper.correction1),
          tf.add(tf.sqrt(tf.div(v1, hyper.correction2)), hyper.epsilon),
        );
        const w1 = tf.sub(tf.mul(tf.tensor1d(weight), decay), tf.mul(update, hyper.lr));
        return [w1, m1, v1].map((t) => t.dataSync());
      });
      await tf.setBackend('wasm');
      installNativeKernels();
      const outputs = tf.engine().runKernel(
        'MinigptAdamW',
        {
          weight: tf.tensor1d(weight),
          grad: tf.tensor1d(grad),
          m: tf.tensor1d(m),
          v: tf.tensor1d(v),
          scale: tf.scalar(scale),
        },
        { ...hyper, decay },
      ) as tf.Tensor[];
      expect(outputs.map((t) => t.shape)).toEqual([[size], [size], [size]]);
      outputs.forEach((output, which) => {
        // Measured against the output's largest value: where m's two terms cancel, the
        // native code's fused multiply-adds round differently from separate tfjs ops.
        const actual = output.dataSync();
        const reference = expected[which] as Float32Array;
        const magnitude = reference.reduce((max, x) => Math.max(max, Math.abs(x)), 0);
        let worst = 0;
        for (let i = 0; i < size; i++)
          worst = Math.max(worst, Math.abs(actual[i]! - reference[i]!) / magnitude);
        expect(worst, `output ${which}, decay ${decay}`).toBeLessThan(1e-6);
      });
      tf.dispose(outputs);
    }
  });

  it('fused AdamW refuses inputs of the wrong shape', async () => {
    await tf.setBackend('wasm');
    installNativeKernels();
    const attrs = {
      beta1: 0.9,
      beta2: 0.95,
      epsilon: 1e-8,
      correction1: 1,
      correction2: 1,
      lr: 1,
      decay: 1,
    };
    const ones = (n: number) => tf.ones([n]);
    expect(() =>
      tf
        .engine()
        .runKernel(
          'MinigptAdamW',
          { weight: ones(4), grad: ones(3), m: ones(4), v: ones(4), scale: tf.scalar(1) },
          attrs,
        ),
    ).toThrow(/grad, m and v must have the weight's shape \[4\], got \[3\]/);
    expect(() =>
      tf
        .engine()
        .runKernel(
          'MinigptAdamW',
          { weight: ones(4), grad: ones(4), m: ones(4), v: ones(4), scale: ones(2) },
          attrs,
        ),
    ).toThrow(/scale must be a scalar/);
    expect(() =>
      tf.engine().runKernel('MinigptAdamW', { weight: ones(4), grad: ones(4) }, attrs),
    ).toThrow(/input m is missing/);
  });

  it('the fused sum of squares equals tfjs over many tensors, the same for any thread count', async () => {
    const tensors = [3, 1, 100_003, 65_536].map((size, t) =>
      Array.from({ length: size }, (_, i) => Math.cos(t + i * 0.7) * (t + 1)),
    );
    await tf.setBackend('cpu');
    const expected = tf.tidy(() =>
      tensors.reduce((total, x) => total + tf.sum(tf.square(tf.tensor1d(x))).dataSync()[0]!, 0),
    );
    await tf.setBackend('wasm');
    installNativeKernels();
    const inputs = Object.fromEntries(tensors.map((x, i) => [`g${i}`, tf.tensor1d(x)]));
    const sums = [2, 1].map((threads) => {
      installNativeKernels({ threads });
      const sum = tf.engine().runKernel('MinigptSumOfSquares', inputs) as tf.Tensor;
      expect(sum.shape).toEqual([]);
      return sum.dataSync()[0]!;
    });
    expect(Math.abs(sums[0]! - expected) / expected).toBeLessThan(1e-6);
    expect(sums[1]).toBe(sums[0]);
  });

  it('fused attention and its backward equal tfjs autodiff of softmax(q·kᵀ/√hs + causal mask)·v (cpu)', async () => {
    // Head sizes 32 and 64 (the kernels' register paths) and 12 (the general one); T not a
    // multiple of the vector width, so the last vector of a row's keys is partly past i.
    // (Dropout's masks are checked against @minigpt/model's in @minigpt/trainer's tests.)
    for (const [batch, time, heads, headSize] of [
      [2, 37, 3, 32],
      [1, 21, 2, 64],
      [2, 19, 2, 12],
    ] as const) {
      const width = heads * headSize;
      const [q, k, v, dy] = [21, 22, 23, 24].map((seed) =>
        values(batch * time * width, seed).flat(),
      ) as [number[], number[], number[], number[]];
      await tf.setBackend('cpu');
      const [y, dq, dk, dv, lse] = tf.tidy(() => {
        const heads4 = (x: tf.Tensor) =>
          tf.transpose(tf.reshape(x, [batch, time, heads, headSize]), [0, 2, 1, 3]);
        const mask = tf.tensor2d(
          Array.from({ length: time * time }, (_, i) =>
            i % time > Math.floor(i / time) ? -1e9 : 0,
          ),
          [time, time],
        );
        const scores = (qt: tf.Tensor, kt: tf.Tensor) =>
          tf.add(tf.div(tf.matMul(heads4(qt), heads4(kt), false, true), Math.sqrt(headSize)), mask);
        const f = (qt: tf.Tensor, kt: tf.Tensor, vt: tf.Tensor) => {
          const out = tf.matMul(tf.softmax(scores(qt, kt)), heads4(vt)); // (B, nh, T, hs)
          return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch * time, width]);
        };
        const inputs = [q, k, v].map((x) => tf.tensor2d(x, [batch * time, width]));
        const grads = tf.grads(f)(inputs, tf.tensor2d(dy, [batch * time, width]));
        const logSumExp = tf.logSumExp(scores(inputs[0]!, inputs[1]!), -1);
        return [f(inputs[0]!, inputs[1]!, inputs[2]!), ...grads, logSumExp].map((t) =>
          t.dataSync(),
        );
      });
      await tf.setBackend('wasm');
      installNativeKernels();
      // qkv (B·T, 3C): each row's q, k and v side by side, as c_attn writes them.
      const rows = batch * time;
      const qkvValues = Array.from({ length: rows * 3 * width }, (_, index) => {
        const [row, column] = [Math.floor(index / (3 * width)), index % (3 * width)];
        const part = [q, k, v][Math.floor(column / width)]!;
        return part[row * width + (column % width)]!;
      });
      const qkv = tf.tensor2d(qkvValues, [rows, 3 * width]);
      const run = (attrs: object) => {
        const [yN, lseN] = tf
          .engine()
          .runKernel('MinigptAttention', { qkv }, attrs as never) as tf.Tensor[];
        expect(yN!.shape).toEqual([rows, width]);
        expect(lseN!.shape).toEqual([batch, heads, time]);
        const dqkv = tf
          .engine()
          .runKernel(
            'MinigptAttentionGrad',
            { dy: tf.tensor2d(dy, [rows, width]), qkv, y: yN!, lse: lseN! },
            attrs as never,
          ) as tf.Tensor;
        expect(dqkv.shape).toEqual([rows, 3 * width]);
        const [dqN, dkN, dvN] = tf.split(dqkv, 3, 1);
        return {
          y: yN!.dataSync() as Float32Array,
          lse: lseN!.dataSync() as Float32Array,
          dq: dqN!.dataSync() as Float32Array,
          dk: dkN!.dataSync() as Float32Array,
          dv: dvN!.dataSync() as Float32Array,
        };
      };
      const fused = run({ batch, heads });
      const expected = { y: y!, lse: lse!, dq: dq!, dk: dk!, dv: dv! };
      for (const [name, data] of Object.entries(expected)) {
        const actual = fused[name as keyof typeof fused];
        expect(actual.length, name).toBe(data.length);
        let worst = 0;
        for (let i = 0; i < data.length; i++)
          worst = Math.max(worst, Math.abs(actual[i]! - data[i]!));
        expect(worst, `${name}, hs ${headSize}`).toBeLessThan(1e-4);
      }
      // Dropout's stream at its edges: threshold 0 keeps every weight (the same bits as no
      // dropout); threshold 2³² − 1 drops all but a 2⁻³² share of them, so y and dv are 0.
      const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      const keepAll = run({ batch, heads, threshold: 0, start: 12345, step: 777, keepScale: 1 });
      for (const name of ['y', 'dq', 'dk', 'dv'] as const)
        expect(bytes(keepAll[name]).equals(bytes(fused[name])), name).toBe(true);
      const dropAll = run({
        batch,
        heads,
        threshold: 2 ** 32 - 1,
        start: 1,
        step: 2,
        keepScale: 5,
      });
      expect(dropAll.y.every((x) => x === 0)).toBe(true);
      expect(dropAll.dv.every((x) => x === 0)).toBe(true);
      await tf.setBackend('cpu');
    }
  });

  it('the fused attention kernels refuse inputs of the wrong shape or type, and bad dropout attrs', async () => {
    await tf.setBackend('wasm');
    installNativeKernels();
    const qkv = tf.zeros([12, 24]) as tf.Tensor2D; // B 2 · T 6, 3 × 2 heads of 4
    const attrs = { batch: 2, heads: 2 };
    const run =
      (inputs: Record<string, tf.Tensor>, kernelAttrs: object = attrs) =>
      () =>
        tf.engine().runKernel('MinigptAttention', inputs, kernelAttrs as never);
    expect(run({ qkv: tf.zeros([12, 20]) })).toThrow(
      /MinigptAttention: qkv float32 \[12,20\] is not float32 \(batch 2 · T, 3 · heads 2 · hs\)/,
    );
    expect(run({ qkv: tf.zeros([12, 24], 'int32') })).toThrow(/qkv int32 \[12,24\] is not float32/);
    expect(run({ qkv }, { batch: 5, heads: 2 })).toThrow(/is not float32 \(batch 5/);
    expect(run({ qkv }, { batch: 2.5, heads: 2 })).toThrow(/is not float32 \(batch 2.5/);
    expect(
      run({ qkv: tf.zeros([12, 24]) }, { ...attrs, threshold: 2 ** 32, start: 0, step: 1 }),
    ).toThrow(/bad dropout attrs/);
    expect(run({ qkv }, { ...attrs, threshold: 5, start: -1, step: 1 })).toThrow(
      /bad dropout attrs/,
    );
    expect(run({})).toThrow(/MinigptAttention: input qkv is missing/);
    const [y, lse] = run({ qkv })() as tf.Tensor[];
    expect(y!.shape).toEqual([12, 8]);
    expect(lse!.shape).toEqual([2, 2, 6]);
    const grad = (inputs: Record<string, tf.Tensor>) => () =>
      tf.engine().runKernel('MinigptAttentionGrad', inputs, attrs);
    expect(grad({ dy: y!, qkv, y: y!, lse: y! })).toThrow(
      /MinigptAttentionGrad: lse must be float32 \[2,2,6\], got float32 \[12,8\]/,
    );
    expect(grad({ dy: qkv, qkv, y: y!, lse: lse! })).toThrow(/dy must be float32 \[12,8\]/);
    expect(grad({ dy: y!, qkv, lse: lse! })).toThrow(/input y is missing/);
    await tf.setBackend('cpu');
  });

  it('gives the same bits on 1, 2, 3 and 5 threads; LayerNorm sums its row blocks right', async () => {
    const defaultThreads = loadNativeAddon().addon!.info().threads;
    const [rows, channels] = [600, 96]; // 57,600 floats: threaded, 4 row blocks of 170 rows
    const x = values(rows * channels, 7)
      .flat()
      .map((v, i) => v * (1 + (i % 3)));
    const gamma = values(channels, 8).flat();
    const dy = values(rows * channels, 9).flat();
    const a = values(300 * 200, 10).flat();
    const b = values(200 * 260, 11).flat();
    // K 1100: five blocks of K accumulated; on threads, C cut into blocks of columns (c) or
    // rows (tall), each summed over all of K by one thread (gemmSplitC).
    const c = values(1100 * 128, 12).flat();
    const tall = values(1100 * 150, 17).flat();
    const heads = values(48 * 64 * 32, 13).flat(); // 48 small products: split by item
    const geluInput = values(70_001, 14).flat();
    await tf.setBackend('wasm');
    // Attention: 2 · 3 (batch row, head) tasks, each summing over keys and queries.
    const attentionInput = tf.tensor2d(values(2 * 70 * 288, 15).flat(), [140, 288]);
    const attentionGradient = tf.tensor2d(values(2 * 70 * 96, 16).flat(), [140, 96]);
    const fusedAttention = () => {
      const attrs = { batch: 2, heads: 3 };
      const [attention, lse] = tf
        .engine()
        .runKernel('MinigptAttention', { qkv: attentionInput }, attrs as never) as tf.Tensor[];
      const dqkv = tf
        .engine()
        .runKernel(
          'MinigptAttentionGrad',
          { dy: attentionGradient, qkv: attentionInput, y: attention!, lse: lse! },
          attrs as never,
        ) as tf.Tensor;
      return { fusedAttention: attention!, lse: lse!, dqkv };
    };
    const run = (threads: number) => {
      installNativeKernels({ threads });
      return tf.tidy(() => {
        const [y, normalized, rstd] = tf
          .engine()
          .runKernel(
            'MinigptLayerNorm',
            { x: tf.tensor2d(x, [rows, channels]), gamma: tf.tensor1d(gamma) },
            { epsilon: 1e-5 },
          ) as tf.Tensor[];
        const [dx, dGamma, dBeta] = tf.engine().runKernel('MinigptLayerNormGrad', {
          dy: tf.tensor2d(dy, [rows, channels]),
          normalized: normalized!,
          rstd: rstd!,
          gamma: tf.tensor1d(gamma),
        }) as tf.Tensor[];
        const q = tf.tensor3d(heads, [48, 64, 32]);
        const outputs = {
          product: tf.matMul(tf.tensor2d(a, [300, 200]), tf.tensor2d(b, [200, 260])),
          weightGradient: tf.matMul(tf.tensor2d(c, [1100, 128]), tf.tensor2d(c, [1100, 128]), true),
          tallGradient: tf.matMul(
            tf.tensor2d(tall, [1100, 150]),
            tf.tensor2d(c.slice(0, 1100 * 40), [1100, 40]),
            true,
          ),
          attention: tf.matMul(q, q, false, true),
          gelu: tf.engine().runKernel('MinigptGelu', { x: tf.tensor1d(geluInput) }) as tf.Tensor,
          ...fusedAttention(),
          y: y!,
          dx: dx!,
          dGamma: dGamma!,
          dBeta: dBeta!,
        };
        return Object.fromEntries(
          Object.entries(outputs).map(([name, tensor]) => [name, tensor.dataSync()]),
        );
      });
    };
    try {
      const single = run(1);
      for (const threads of [2, 3, 5]) {
        const outputs = run(threads);
        for (const [name, data] of Object.entries(single)) {
          // Bit for bit (NaN included): the float32s' bytes.
          const bytes = (array: Float32Array | Int32Array | Uint8Array) =>
            Buffer.from(array.buffer, array.byteOffset, array.byteLength);
          expect(bytes(outputs[name]!).equals(bytes(data)), `${name}, ${threads} threads`).toBe(
            true,
          );
        }
      }
      // dγ = Σ_rows dy·x̂ and dβ = Σ_rows dy over all 4 blocks, against float64 sums.
      const gammaSums = new Float64Array(channels);
      const betaSums = new Float64Array(channels);
      for (let row = 0; row < rows; row++) {
        const xs = x.slice(row * channels, (row + 1) * channels);
        const mean = xs.reduce((sum, v) => sum + v, 0) / channels;
        const variance = xs.reduce((sum, v) => sum + (v - mean) ** 2, 0) / channels;
        for (let channel = 0; channel < channels; channel++) {
          const normalized = (xs[channel]! - mean) / Math.sqrt(variance + 1e-5);
          gammaSums[channel]! += dy[row * channels + channel]! * normalized;
          betaSums[channel]! += dy[row * channels + channel]!;
        }
      }
      for (let channel = 0; channel < channels; channel++) {
        expect(Math.abs(single['dGamma']![channel]! - gammaSums[channel]!)).toBeLessThan(1e-3);
        expect(Math.abs(single['dBeta']![channel]! - betaSums[channel]!)).toBeLessThan(1e-3);
      }
    } finally {
      installNativeKernels({ threads: defaultThreads });
    }
  });

  it('two threads of the process calling the addon at once both get right products', async () => {
    // The addon's thread pool serves one caller at a time; a second runs its loops alone.
    const [m, n, k] = [200, 150, 120]; // 3.6 M multiply-adds: threaded
    const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
    const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.11));
    const expected = new Float64Array(m * n);
    for (let i = 0; i < m; i++)
      for (let p = 0; p < k; p++)
        for (let j = 0; j < n; j++) expected[i * n + j]! += a[i * k + p]! * b[p * n + j]!;
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.path);
      const { m, n, k, a, b, expected } = workerData;
      const heap = new ArrayBuffer((m * k + k * n + m * n) * 4);
      const f = new Float32Array(heap);
      f.set(a, 0);
      f.set(b, m * k);
      let worst = 0;
      for (let call = 0; call < 200; call++) {
        addon.matMul(heap, 0, m * k * 4, (m * k + k * n) * 4, 1, m, n, k, false, false, false, false);
        const c = f.subarray(m * k + k * n);
        for (let i = 0; i < m * n; i++) worst = Math.max(worst, Math.abs(c[i] - expected[i]));
      }
      parentPort.postMessage(worst);`;
    const { path } = loadNativeAddon() as { path: string };
    const worsts = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<number>((resolve, reject) => {
            const worker = new Worker(source, {
              eval: true,
              workerData: { path, m, n, k, a, b, expected },
            });
            worker.once('message', (worst: number) => {
              resolve(worst);
              void worker.terminate();
            });
            worker.once('error', reject);
          }),
      ),
    );
    for (const worst of worsts) expect(worst).toBeLessThan(1e-3);
  });

  it('leaves int32 products to tfjs (the addon only does float32)', async () => {
    await tf.setBackend('wasm');
    installNativeKernels();
    expect(() =>
      tf.matMul(tf.tensor2d([[1, 2]], [1, 2], 'int32'), tf.tensor2d([[3], [4]], [2, 1], 'int32')),
    ).toThrow(/non-float32/);
  });

  it('the addon refuses operands outside the heap and calls of the wrong shape', () => {
    const addon = loadNativeAddon().addon!;
    const heap = new ArrayBuffer(64);
    expect(() => addon.matMul(heap, 0, 0, 0, 1, 5, 5, 5, false, false, false, false)).toThrow(
      /matMul: an operand lies outside the heap/,
    );
    expect(() => addon.unary(heap, 0, 32, 16, 0, -1)).toThrow(/unary: an operand lies outside/);
    expect(() => addon.unary(heap, 0, 32, 4, 7 as 0, -1)).toThrow(/op must be 0 \(exp\), 1/);
    expect(() => (addon.layerNorm as (...args: unknown[]) => void)(heap, 0)).toThrow(
      /layerNorm takes 10 arguments/,
    );
    expect(() =>
      addon.adamw(heap, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0.9, 0.1, 0.9, 0.1, 1, 1, 1e-8, 1, 1),
    ).toThrow(/adamw: an operand lies outside the heap/);
    expect(() => addon.sumOfSquares(heap, 4, 16)).toThrow(/sumOfSquares: an operand lies outside/);
    // qkv of 2·4·24 floats (768 bytes) does not fit in 64.
    expect(() => addon.attention!(heap, 0, 0, 0, 2, 4, 2, 4, -1, 0, 0, 1)).toThrow(
      /attention: an operand lies outside the heap/,
    );
    expect(() => addon.attention!(heap, 0, 0, 0, 1, 0, 1, 2, -1, 0, 0, 1)).toThrow(
      /attention: bad sizes/,
    );
    expect(() => addon.attention!(heap, 0, 0, 0, 1, 1, 1, 2, 2 ** 32, 0, 0, 1)).toThrow(
      /attention: bad sizes/,
    );
    expect(() => addon.attentionGrad!(heap, 0, 0, 0, 0, 0, 2, 4, 2, 4, -1, 0, 0, 1)).toThrow(
      /attentionGrad: an operand lies outside the heap/,
    );
    expect(addon.sumOfSquares(heap, 0, 16)).toBe(0);
  });

  it('says why when the addon cannot be loaded', () => {
    const result = installNativeKernels({ addonPath: '/nowhere/minigpt_kernels.node' });
    expect(result.installed).toBe(false);
    expect(result.reason).toMatch(
      /\/nowhere\/minigpt_kernels\.node could not be loaded .*npm rebuild @minigpt\/native-kernels/,
    );
  });
});
