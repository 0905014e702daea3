// The WebAssembly kernels installed on tfjs's wasm backend, each against a reference
// computed independently in float64 JavaScript (a plain triple loop, Math.exp, a series for
// erf, finite differences for LayerNorm's backward), on float32-rounded inputs so that only
// the kernels' own arithmetic is measured.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ATTENTION_KERNEL_NAMES,
  FUSED_KERNEL_NAMES,
  KERNEL_NAMES,
  createWasmKernelSet,
  installKernelSet,
  installWasmKernels,
  uninstallWasmKernels,
  type KernelSet,
} from './index.js';

/** Deterministic values in [−scale, scale), rounded to float32 (a small LCG: no Math.random). */
function wave(count: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32) * 2 * scale - scale;
  }
  return out;
}

const product = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/**
 * op(A)·op(B) in float64 with numpy batch broadcasting, and for each entry Σ|a·b|, the scale
 * a float32 product's rounding error is proportional to.
 */
function referenceMatMul(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  transposeA: boolean,
  transposeB: boolean,
) {
  const [ar, ac] = aShape.slice(-2) as [number, number];
  const [br, bc] = bShape.slice(-2) as [number, number];
  const [m, k] = transposeA ? [ac, ar] : [ar, ac];
  const n = transposeB ? br : bc;
  const aOuter = aShape.slice(0, -2);
  const bOuter = bShape.slice(0, -2);
  const rank = Math.max(aOuter.length, bOuter.length);
  const padA = [...Array<number>(rank - aOuter.length).fill(1), ...aOuter];
  const padB = [...Array<number>(rank - bOuter.length).fill(1), ...bOuter];
  const outer = padA.map((size, i) => Math.max(size, padB[i]!));
  const batch = product(outer);
  const value = new Float64Array(batch * m * n);
  const scale = new Float64Array(batch * m * n);
  for (let item = 0; item < batch; item++) {
    // The batch index in each operand: a dimension of size 1 repeats.
    let rest = item;
    let aItem = 0;
    let bItem = 0;
    let aStride = 1;
    let bStride = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const index = rest % outer[d]!;
      rest = Math.floor(rest / outer[d]!);
      aItem += (padA[d] === 1 ? 0 : index) * aStride;
      bItem += (padB[d] === 1 ? 0 : index) * bStride;
      aStride *= padA[d]!;
      bStride *= padB[d]!;
    }
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let sum = 0;
        let magnitude = 0;
        for (let p = 0; p < k; p++) {
          const x = a[aItem * ar * ac + (transposeA ? p * ac + i : i * ac + p)]!;
          const y = b[bItem * br * bc + (transposeB ? j * bc + p : p * bc + j)]!;
          sum += x * y;
          magnitude += Math.abs(x * y);
        }
        value[(item * m + i) * n + j] = sum;
        scale[(item * m + i) * n + j] = magnitude;
      }
  }
  return { shape: [...outer, m, n], value, scale };
}

/** erf in float64: 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1)), all terms positive (no cancellation). */
function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x); // erfc(6) ≈ 2e-17
  let term = ax;
  let sum = ax;
  for (let n = 1; term > 1e-17 * sum; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum);
}

const cdf = (x: number) => 0.5 * (1 + erf64(x / Math.SQRT2));
const density = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

// tfjs's own kernel functions, captured before the set is installed: a kernel is the set's
// when its function is no longer tfjs's.
const tfjsKernels = new Map(
  ['BatchMatMul', 'Exp', 'Erf', 'Slice', 'SplitV', 'GatherV2', 'Identity'].map((name) => [
    name,
    tf.getKernel(name, 'wasm')?.kernelFunc,
  ]),
);
const isNative = (name: string) => {
  const current = tf.getKernel(name, 'wasm')?.kernelFunc;
  return current !== undefined && current !== tfjsKernels.get(name);
};

describe('WebAssembly kernels on the wasm backend', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    const result = await installWasmKernels();
    expect(result, result.reason).toMatchObject({
      installed: true,
      kernels: [...KERNEL_NAMES, ...ATTENTION_KERNEL_NAMES],
      threads: 1,
      vectorLanes: 4,
    });
  });
  afterAll(() => {
    uninstallWasmKernels();
  });

  it('registers BatchMatMul, Exp and Erf as its own and adds the fused kernels', async () => {
    for (const name of ['BatchMatMul', 'Exp', 'Erf']) expect(isNative(name), name).toBe(true);
    // Not marked `native`: on one thread a transposed product here loses to tfjs transposing
    // first and running XNNPACK, so @minigpt/model should keep doing that.
    expect(
      (tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc as { native?: true }).native,
    ).toBeUndefined();
    for (const name of [...FUSED_KERNEL_NAMES, ...ATTENTION_KERNEL_NAMES])
      expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
    // Installing again keeps the kernels installed (and does not wrap them twice).
    const again = await installWasmKernels();
    expect(again.installed).toBe(true);
    expect(isNative('BatchMatMul')).toBe(true);
  });

  describe('matMul equals a float64 triple loop', () => {
    const cases: Array<{ name: string; a: number[]; b: number[]; ta: boolean; tb: boolean }> = [];
    for (const ta of [false, true])
      for (const tb of [false, true]) {
        const label = `${ta ? 'Aᵀ' : 'A'}·${tb ? 'Bᵀ' : 'B'}`;
        // m = 7, n = 13, k = 5: none a multiple of the 6 × 8 tile or the 4-float vector.
        cases.push({
          name: `2-D ${label} 7×5·5×13`,
          a: ta ? [5, 7] : [7, 5],
          b: tb ? [13, 5] : [5, 13],
          ta,
          tb,
        });
        cases.push({
          name: `3-D ${label} batch 3`,
          a: ta ? [3, 11, 9] : [3, 9, 11],
          b: tb ? [3, 17, 11] : [3, 11, 17],
          ta,
          tb,
        });
      }
    cases.push(
      { name: '4-D batch (2, 3)', a: [2, 3, 7, 5], b: [2, 3, 5, 13], ta: false, tb: false },
      { name: '4-D batch (2, 3) Aᵀ·Bᵀ', a: [2, 3, 5, 7], b: [2, 3, 13, 5], ta: true, tb: true },
      { name: 'a batch times one matrix', a: [4, 7, 5], b: [5, 13], ta: false, tb: false },
      { name: 'a batch times one matrix, Bᵀ', a: [2, 2, 7, 5], b: [13, 5], ta: false, tb: true },
      { name: 'one matrix times a batch', a: [7, 5], b: [4, 5, 13], ta: false, tb: false },
      { name: 'one matrix times a batch, Aᵀ', a: [5, 7], b: [2, 2, 5, 13], ta: true, tb: false },
      { name: 'm = 1', a: [3, 1, 37], b: [3, 37, 29], ta: false, tb: false },
      { name: 'n = 1', a: [3, 29, 37], b: [3, 37, 1], ta: false, tb: false },
      { name: 'k = 1', a: [3, 29, 1], b: [3, 1, 23], ta: false, tb: false },
      { name: 'm = n = k = 1', a: [2, 1, 1], b: [2, 1, 1], ta: true, tb: true },
      { name: 'k = 0 (an empty sum is 0)', a: [2, 3, 0], b: [2, 0, 4], ta: false, tb: false },
      { name: 'plain 2-D product (tfjs runs it)', a: [31, 45], b: [45, 27], ta: false, tb: false },
      { name: 'larger: 64×200·200×96, Bᵀ', a: [64, 200], b: [96, 200], ta: false, tb: true },
      {
        name: 'larger batched: 2 × 64×200·200×96',
        a: [2, 200, 64],
        b: [2, 200, 96],
        ta: true,
        tb: false,
      },
    );
    for (const c of cases)
      it(c.name, async () => {
        const a = wave(product(c.a), 1 + c.a.length, 2);
        const b = wave(product(c.b), 7 + c.b.length, 3);
        const expected = referenceMatMul(a, c.a, b, c.b, c.ta, c.tb);
        const result = tf.tidy(() => tf.matMul(tf.tensor(a, c.a), tf.tensor(b, c.b), c.ta, c.tb));
        expect(result.shape).toEqual(expected.shape);
        const data = await result.data();
        result.dispose();
        for (let i = 0; i < data.length; i++) {
          // float32 rounding: relative to Σ|a·b| (a result near 0 from cancelling terms can
          // carry the rounding of its large terms), 1e-5 of it.
          const error = Math.abs(data[i]! - expected.value[i]!);
          if (!(error <= 1e-5 * expected.scale[i]! + 1e-30))
            expect.fail(
              `entry ${i}: ${data[i]} vs ${expected.value[i]} (scale ${expected.scale[i]})`,
            );
        }
      });
  });

  it('runs batched and transposed float32 products itself and leaves plain ones to tfjs', async () => {
    // A set that counts the products it is given, around the WebAssembly one.
    const wasm = await createWasmKernelSet();
    const taken: string[] = [];
    const counting: KernelSet = {
      ...Object.fromEntries(
        (['unary', 'layerNorm', 'layerNormGrad', 'adamw', 'sumOfSquares'] as const).map((name) => [
          name,
          (...args: unknown[]) => (wasm[name] as (...a: unknown[]) => unknown)(...args),
        ]),
      ),
      takesMatMul: (batch, ta, tb) => wasm.takesMatMul!(batch, ta, tb),
      matMul(heap, aOffset, bOffset, cOffset, batch, m, n, k, ta, tb, broadcastA, broadcastB) {
        taken.push(`${batch} ${m}×${k}·${k}×${n}${ta ? ' Aᵀ' : ''}${tb ? ' Bᵀ' : ''}`);
        wasm.matMul(
          heap,
          aOffset,
          bOffset,
          cOffset,
          batch,
          m,
          n,
          k,
          ta,
          tb,
          broadcastA,
          broadcastB,
        );
      },
    } as KernelSet;
    expect(wasm.takesMatMul!(1, false, false)).toBe(false);
    expect(wasm.takesMatMul!(2, false, false)).toBe(true);
    expect(wasm.takesMatMul!(1, true, false)).toBe(true);
    expect(wasm.takesMatMul!(1, false, true)).toBe(true);
    uninstallWasmKernels();
    try {
      expect(installKernelSet(counting)).toEqual(KERNEL_NAMES);
      const run = (aShape: number[], bShape: number[], ta = false, tb = false) =>
        tf.tidy(() => tf.matMul(tf.ones(aShape), tf.ones(bShape), ta, tb).dataSync());
      expect(run([4, 3], [3, 5])[0]).toBe(3); // plain: tfjs's
      expect(run([2, 4, 3], [2, 3, 5])[0]).toBe(3);
      expect(run([3, 4], [3, 5], true)[0]).toBe(3);
      expect(run([4, 3], [5, 3], false, true)[0]).toBe(3);
      // Batches broadcast both ways are tfjs's (whose kernel gets them wrong: it returns 2
      // matrices here, not 2 × 3, so only where they go is checked).
      tf.tidy(() => tf.matMul(tf.ones([1, 3, 4, 3]), tf.ones([2, 1, 3, 5])));
      // int32 products are tfjs's too: its wasm kernel refuses them.
      expect(() =>
        tf.tidy(() => tf.matMul(tf.ones([2, 4, 3], 'int32'), tf.ones([2, 3, 5], 'int32'))),
      ).toThrow(/non-float32/);
      expect(taken).toEqual(['2 4×3·3×5', '1 4×3·3×5 Aᵀ', '1 4×3·3×5 Bᵀ']);
    } finally {
      uninstallWasmKernels();
      expect((await installWasmKernels()).installed).toBe(true);
    }
  });

  it('exp equals Math.exp within 1e-6 relative, 0 below −87.3 and +∞ above 88.7', async () => {
    const xs = [
      ...Array.from({ length: 4001 }, (_, i) => -100 + (200 * i) / 4000),
      -1e30,
      -1000,
      -87.29,
      -1e-8,
      0,
      1e-8,
      1,
      88.69,
      1000,
      1e30,
      -Infinity,
      Infinity,
    ];
    const input = new Float32Array(xs);
    const result = tf.tidy(() => tf.exp(tf.tensor1d(input)).dataSync());
    const low = Math.fround(-87.3);
    const high = Math.fround(88.7);
    for (let i = 0; i < input.length; i++) {
      const x = input[i]!;
      const expected = Math.exp(x);
      // The documented flush: results there lie within 7% of float32's range ends.
      if (x < low) expect(result[i], `exp(${x})`).toBe(0);
      else if (x > high) expect(result[i], `exp(${x})`).toBe(Infinity);
      else if (!(Math.abs(result[i]! - expected) <= 1e-6 * expected))
        expect.fail(`exp(${x}) = ${result[i]}, expected ${expected}`);
    }
    // A 2-D tensor whose size is not a multiple of the vector width keeps its shape.
    const matrix = tf.exp(tf.fill([3, 7], 1));
    expect(matrix.shape).toEqual([3, 7]);
    expect((await matrix.data())[20]).toBeCloseTo(Math.E, 6);
    matrix.dispose();
  });

  it('erf equals a float64 series within 2e-7 absolute from |x| = 1, 6e-7 below', () => {
    // The reference itself, against known values.
    const known: Array<[number, number]> = [
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [-1, -0.8427007929497149],
      [3, 0.9999779095030014],
    ];
    for (const [x, value] of known) expect(Math.abs(erf64(x) - value)).toBeLessThan(1e-15);
    const atKnown = tf.tidy(() => tf.erf(tf.tensor1d(known.map(([x]) => x))).dataSync());
    known.forEach(([x, value], i) =>
      expect(Math.abs(atKnown[i]! - value), `erf(${x})`).toBeLessThan(2e-7),
    );
    const xs = [
      ...Array.from({ length: 3001 }, (_, i) => -7.5 + (15 * i) / 3000),
      -1e30,
      -100,
      -1e-8,
      0,
      1e-8,
      100,
      1e30,
      ...known.map(([x]) => x),
    ];
    const input = new Float32Array(xs);
    const result = tf.tidy(() => tf.erf(tf.tensor1d(input)).dataSync());
    // A&S 7.1.26 is within 1.5e-7 in exact arithmetic; evaluated in float32, 1 − poly·e^(−x²)
    // loses more where poly·e^(−x²) is near 1 (|x| small): measured up to 5.3e-7 at |x| < 0.25
    // (tfjs's cpu kernel, the same formula in float64, stays within 1.7e-7).
    for (let i = 0; i < input.length; i++)
      if (!(Math.abs(result[i]! - erf64(input[i]!)) <= (Math.abs(input[i]!) >= 1 ? 2e-7 : 6e-7)))
        expect.fail(`erf(${input[i]}) = ${result[i]}, expected ${erf64(input[i]!)}`);
    // Odd: erf(−x) = −erf(x) exactly (the kernel works on |x|), so erf(0) is 0.
    for (let i = 0; i < input.length; i++) {
      const mirror = xs.indexOf(-xs[i]!);
      if (mirror >= 0) expect(result[mirror]! + result[i]!, `erf(±${input[i]})`).toBe(0);
    }
  });

  it('MinigptGelu and MinigptGeluGrad equal x·Φ(x) and dy·(Φ(x) + x·φ(x)) in float64', () => {
    for (const length of [1, 3, 5, 1001]) {
      const x = Float32Array.from({ length }, (_, i) =>
        length === 1 ? 0.75 : -8 + (16 * i) / (length - 1),
      );
      const dy = wave(length, length, 2);
      const [y, dx] = tf.tidy(() => {
        const xt = tf.tensor1d(x);
        const gelu = tf.engine().runKernel('MinigptGelu', { x: xt }, {}) as tf.Tensor;
        const grad = tf
          .engine()
          .runKernel('MinigptGeluGrad', { dy: tf.tensor1d(dy), x: xt }, {}) as tf.Tensor;
        expect(gelu.shape).toEqual([length]);
        expect(grad.shape).toEqual([length]);
        return [gelu.dataSync(), grad.dataSync()];
      });
      for (let i = 0; i < length; i++) {
        const xi = x[i]!;
        // erf's error reaches GELU scaled by |x|/2 (and dx by |dy|); the rest is rounding.
        const geluExpected = xi * cdf(xi);
        if (!(Math.abs(y![i]! - geluExpected) <= 1e-7 * Math.abs(xi) + 2e-7))
          expect.fail(`gelu(${xi}) = ${y![i]}, expected ${geluExpected}`);
        const gradExpected = dy[i]! * (cdf(xi) + xi * density(xi));
        if (!(Math.abs(dx![i]! - gradExpected) <= 4e-7 * Math.abs(dy[i]!)))
          expect.fail(`gelu'(${xi})·${dy[i]} = ${dx![i]}, expected ${gradExpected}`);
      }
    }
    expect(() =>
      tf.engine().runKernel('MinigptGeluGrad', { dy: tf.ones([2]), x: tf.ones([3]) }, {}),
    ).toThrow(/dy and x must have the same shape/);
  });

  describe('MinigptLayerNorm and its backward', () => {
    const shape = [2, 3, 13]; // 6 rows of 13 channels: not a multiple of 4
    const [rows, channels] = [6, 13];
    const epsilon = 1e-5;
    // An offset and unequal row scales: the mean and variance matter.
    const x = wave(rows * channels, 11, 2).map((v, i) => 3 + v * (1 + Math.floor(i / channels)));
    const gamma = wave(channels, 12, 1.5);
    const beta = wave(channels, 13, 0.5);
    const dy = wave(rows * channels, 14, 1);

    /** LayerNorm in float64: y, x̂ and rstd. */
    function forward(xs: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number> | null) {
      const y = new Float64Array(rows * channels);
      const normalized = new Float64Array(rows * channels);
      const rstd = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        let mean = 0;
        for (let c = 0; c < channels; c++) mean += xs[r * channels + c]! / channels;
        let variance = 0;
        for (let c = 0; c < channels; c++)
          variance += (xs[r * channels + c]! - mean) ** 2 / channels;
        rstd[r] = 1 / Math.sqrt(variance + epsilon);
        for (let c = 0; c < channels; c++) {
          normalized[r * channels + c] = (xs[r * channels + c]! - mean) * rstd[r]!;
          y[r * channels + c] = normalized[r * channels + c]! * g[c]! + (b ? b[c]! : 0);
        }
      }
      return { y, normalized, rstd };
    }

    function expectClose(
      actual: ArrayLike<number>,
      expected: ArrayLike<number>,
      tolerance: number,
      what: string,
    ) {
      expect(actual.length, what).toBe(expected.length);
      for (let i = 0; i < expected.length; i++)
        if (!(Math.abs(actual[i]! - expected[i]!) <= tolerance))
          expect.fail(`${what}[${i}] = ${actual[i]}, expected ${expected[i]}`);
    }

    for (const withBeta of [true, false])
      it(`forward ${withBeta ? 'with' : 'without'} beta equals float64`, () => {
        const expected = forward(x, gamma, withBeta ? beta : null);
        const [y, normalized, rstd] = tf.tidy(() => {
          const outputs = tf.engine().runKernel(
            'MinigptLayerNorm',
            {
              x: tf.tensor(x, shape),
              gamma: tf.tensor1d(gamma),
              ...(withBeta ? { beta: tf.tensor1d(beta) } : {}),
            },
            { epsilon },
          ) as tf.Tensor[];
          expect(outputs.map((t) => t.shape)).toEqual([shape, shape, [2, 3, 1]]);
          return outputs.map((t) => t.dataSync());
        });
        // x̂ is O(1): float32 rounding of mean, rstd and the product, a few 1e-7.
        expectClose(normalized!, expected.normalized, 2e-6, 'x̂');
        expectClose(y!, expected.y, 3e-6, 'y');
        for (let r = 0; r < rows; r++)
          expect(Math.abs(rstd![r]! - expected.rstd[r]!) / expected.rstd[r]!).toBeLessThan(1e-6);
      });

    it('backward equals central differences of float64 LayerNorm', () => {
      // The loss L = Σ dy·y; its gradients by central differences in float64.
      const loss = (xs: Float64Array, g: Float64Array, b: Float64Array) =>
        forward(xs, g, b).y.reduce((sum, value, i) => sum + value * dy[i]!, 0);
      const params = [Float64Array.from(x), Float64Array.from(gamma), Float64Array.from(beta)];
      const numeric = params.map((param) =>
        param.map((_, i) => {
          const h = 1e-6;
          const saved = param[i]!;
          param[i] = saved + h;
          const up = loss(params[0]!, params[1]!, params[2]!);
          param[i] = saved - h;
          const down = loss(params[0]!, params[1]!, params[2]!);
          param[i] = saved;
          return (up - down) / (2 * h);
        }),
      );
      // The kernel's inputs are the forward's outputs, here float64's rounded to float32.
      const { normalized, rstd } = forward(x, gamma, beta);
      const [dx, dGamma, dBeta] = tf.tidy(() => {
        const outputs = tf.engine().runKernel('MinigptLayerNormGrad', {
          dy: tf.tensor(dy, shape),
          normalized: tf.tensor(Float32Array.from(normalized), shape),
          rstd: tf.tensor(Float32Array.from(rstd), [2, 3, 1]),
          gamma: tf.tensor1d(gamma),
        }) as tf.Tensor[];
        expect(outputs.map((t) => t.shape)).toEqual([shape, [channels], [channels]]);
        return outputs.map((t) => t.dataSync());
      });
      // Differences of a float64 loss carry ~1e-9 of their own error; dx is O(rstd·|dy·γ|).
      expectClose(dx!, numeric[0]!, 1e-5, 'dx');
      expectClose(dGamma!, numeric[1]!, 1e-5, 'dγ');
      expectClose(dBeta!, numeric[2]!, 1e-5, 'dβ');
    });
  });

  it('MinigptAdamW equals the AdamW step in float64, with and without decay', () => {
    const size = 1003;
    const weight = wave(size, 21, 1);
    const grad = wave(size, 22, 5);
    const m = wave(size, 23, 0.1);
    const v = wave(size, 24, 0.01).map((x) => x * x);
    // Zero gradient and moments: the update is exactly 0 and only decay moves the weight.
    grad[0] = 0;
    m[0] = 0;
    v[0] = 0;
    const scale = 0.37;
    const hyper = {
      beta1: 0.9,
      beta2: 0.95,
      epsilon: 1e-8,
      correction1: 0.271,
      correction2: 0.0975,
      lr: 3e-3,
    };
    for (const decay of [1, 1 - 3e-3 * 0.1]) {
      const expected = [new Float64Array(size), new Float64Array(size), new Float64Array(size)];
      for (let i = 0; i < size; i++) {
        const g = grad[i]! * scale;
        const mNew = hyper.beta1 * m[i]! + (1 - hyper.beta1) * g;
        const vNew = hyper.beta2 * v[i]! + (1 - hyper.beta2) * g * g;
        const mHat = mNew / hyper.correction1;
        const vHat = vNew / hyper.correction2;
        expected[0]![i] =
          weight[i]! * decay - (hyper.lr * mHat) / (Math.sqrt(vHat) + hyper.epsilon);
        expected[1]![i] = mNew;
        expected[2]![i] = vNew;
      }
      const outputs = tf.tidy(() => {
        const result = tf.engine().runKernel(
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
        expect(result.map((t) => t.shape)).toEqual([[size], [size], [size]]);
        return result.map((t) => t.dataSync());
      });
      outputs.forEach((actual, which) => {
        // Relative to the output's largest value: where m's two terms cancel, float32 rounding
        // of the terms is all that is left of an entry.
        const reference = expected[which]!;
        const magnitude = reference.reduce((max, value) => Math.max(max, Math.abs(value)), 0);
        for (let i = 0; i < size; i++)
          if (!(Math.abs(actual[i]! - reference[i]!) <= 1e-6 * magnitude))
            expect.fail(`output ${which}[${i}], decay ${decay}: ${actual[i]} vs ${reference[i]}`);
      });
      expect(outputs[0]![0]).toBe(Math.fround(weight[0]! * Math.fround(decay)));
      expect(outputs[1]![0]).toBe(0);
      expect(outputs[2]![0]).toBe(0);
    }
    const ones = (n: number) => tf.ones([n]);
    const attrs = { ...hyper, decay: 1 };
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
  });

  it('MinigptSumOfSquares equals the float64 sum over several tensors', () => {
    // Sizes around the kernel's 16-float lanes and 16 Ki chunks, and one of 1.
    const tensors = [1, 15, 17, 16_384, 40_003].map((size, t) => wave(size, 31 + t, t + 1));
    let expected = 0;
    for (const values of tensors) for (const value of values) expected += value * value;
    const sum = tf.tidy(() => {
      const inputs = Object.fromEntries(tensors.map((values, i) => [`g${i}`, tf.tensor1d(values)]));
      const result = tf.engine().runKernel('MinigptSumOfSquares', inputs) as tf.Tensor;
      expect(result.shape).toEqual([]);
      return result.dataSync()[0]!;
    });
    // A float32 result: within one rounding of the exact sum.
    expect(Math.abs(sum - expected) / expected).toBeLessThan(2 ** -24);
    const zero = tf.tidy(
      () =>
        (
          tf.engine().runKernel('MinigptSumOfSquares', { x: tf.zeros([5]) }) as tf.Tensor
        ).dataSync()[0],
    );
    expect(zero).toBe(0);
  });

  it('a product larger than the module memory grows it and is right', async () => {
    // 1024×1024 · (512×1024)ᵀ: 8 MiB of operands against a module that starts at 128 KiB. Bᵀ
    // makes it the module's product rather than tfjs's.
    const [m, k, n] = [1024, 1024, 512];
    const a = wave(m * k, 41, 1);
    const b = wave(n * k, 42, 1);
    const result = tf.tidy(() =>
      tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [n, k]), false, true),
    );
    expect(result.shape).toEqual([m, n]);
    const data = await result.data();
    result.dispose();
    for (const [i, j] of [
      [0, 0],
      [0, n - 1],
      [m - 1, 0],
      [m - 1, n - 1],
      [517, 263],
      [6, 8],
      [1000, 511],
    ] as const) {
      let sum = 0;
      let scale = 0;
      for (let p = 0; p < k; p++) {
        sum += a[i * k + p]! * b[j * k + p]!;
        scale += Math.abs(a[i * k + p]! * b[j * k + p]!);
      }
      expect(Math.abs(data[i * n + j]! - sum), `(${i}, ${j})`).toBeLessThan(1e-5 * scale);
    }
    // And a small product after it, through the grown memory.
    const small = tf.tidy(() => tf.matMul(tf.ones([2, 3, 4]), tf.ones([2, 4, 5])).dataSync());
    expect([...small]).toEqual(Array<number>(30).fill(4));
  });

  describe('MinigptAttention and its backward', () => {
    /**
     * softmax(q·kᵀ/√hs + causal mask)·v per (batch row, head) in float64 from qkv (B·T, 3C),
     * and each query's log-sum-exp: the kernel's contract, written as the textbook formula.
     */
    function attention64(qkv: Float64Array, batch: number, time: number, heads: number) {
      const width = qkv.length / (batch * time * 3);
      const headSize = width / heads;
      const y = new Float64Array(batch * time * width);
      const lse = new Float64Array(batch * heads * time);
      const at = (b: number, t: number, part: number, h: number, d: number) =>
        qkv[(b * time + t) * 3 * width + part * width + h * headSize + d]!;
      for (let b = 0; b < batch; b++)
        for (let h = 0; h < heads; h++)
          for (let i = 0; i < time; i++) {
            const scores: number[] = [];
            for (let j = 0; j <= i; j++) {
              let dot = 0;
              for (let d = 0; d < headSize; d++) dot += at(b, i, 0, h, d) * at(b, j, 1, h, d);
              scores.push(dot / Math.sqrt(headSize));
            }
            const max = Math.max(...scores);
            const sum = scores.reduce((total, x) => total + Math.exp(x - max), 0);
            lse[(b * heads + h) * time + i] = max + Math.log(sum);
            for (let d = 0; d < headSize; d++) {
              let value = 0;
              for (let j = 0; j <= i; j++)
                value += (Math.exp(scores[j]! - max) / sum) * at(b, j, 2, h, d);
              y[(b * time + i) * width + h * headSize + d] = value;
            }
          }
      return { y, lse };
    }

    const run = (
      qkv: tf.Tensor2D,
      dy: tf.Tensor2D,
      attrs: Record<string, number>,
    ): { y: Float32Array; lse: Float32Array; dqkv: Float32Array } =>
      tf.tidy(() => {
        const [y, lse] = tf.engine().runKernel('MinigptAttention', { qkv }, attrs) as tf.Tensor[];
        const dqkv = tf
          .engine()
          .runKernel('MinigptAttentionGrad', { dy, qkv, y: y!, lse: lse! }, attrs) as tf.Tensor;
        return {
          y: y!.dataSync() as Float32Array,
          lse: lse!.dataSync() as Float32Array,
          dqkv: dqkv.dataSync() as Float32Array,
        };
      });

    it('equals the float64 formula, and its gradient float64 central differences', () => {
      // hs 8 takes the vector path, hs 6 the scalar one; T 9 and 7 end in a partial vector.
      for (const [batch, time, heads, headSize] of [
        [2, 9, 2, 8],
        [1, 7, 3, 6],
      ] as const) {
        const rows = batch * time;
        const width = heads * headSize;
        const qkvValues = wave(rows * 3 * width, 31 + headSize, 1.5);
        const dyValues = wave(rows * width, 32 + headSize);
        const ours = run(
          tf.tensor2d(qkvValues, [rows, 3 * width]),
          tf.tensor2d(dyValues, [rows, width]),
          { batch, heads },
        );
        const exact = attention64(Float64Array.from(qkvValues), batch, time, heads);
        for (let i = 0; i < exact.y.length; i++)
          expect(Math.abs(ours.y[i]! - exact.y[i]!), `y[${i}]`).toBeLessThan(2e-6);
        for (let i = 0; i < exact.lse.length; i++)
          expect(Math.abs(ours.lse[i]! - exact.lse[i]!), `lse[${i}]`).toBeLessThan(2e-6);
        // d(Σ y·dy)/d qkv by central differences on the float64 formula.
        const loss = (qkv: Float64Array) =>
          attention64(qkv, batch, time, heads).y.reduce((sum, y, i) => sum + y * dyValues[i]!, 0);
        const shifted = Float64Array.from(qkvValues);
        const step = 1e-5;
        for (let i = 0; i < shifted.length; i++) {
          shifted[i] = qkvValues[i]! + step;
          const up = loss(shifted);
          shifted[i] = qkvValues[i]! - step;
          const down = loss(shifted);
          shifted[i] = qkvValues[i]!;
          expect(Math.abs(ours.dqkv[i]! - (up - down) / (2 * step)), `dqkv[${i}]`).toBeLessThan(
            1e-5,
          );
        }
      }
    });

    it('refuses a T whose (T, T) scratch would not fit its memory', async () => {
      const set = await createWasmKernelSet();
      const heap = new ArrayBuffer(64);
      expect(() => set.attention!(heap, 0, 0, 0, 1, 8193, 1, 4, -1, 0, 0, 1)).toThrow(
        /attention: T 8193 is longer than the WebAssembly kernels take \(8192/,
      );
      expect(() => set.attentionGrad!(heap, 0, 0, 0, 0, 0, 1, 8193, 1, 4, -1, 0, 0, 1)).toThrow(
        /attentionGrad: T 8193 is longer/,
      );
    });

    it('at head size 32 and T 37 too, and draws dropout from the stream it is given', () => {
      const [batch, time, heads, headSize] = [2, 37, 3, 32];
      const rows = batch * time;
      const width = heads * headSize;
      const qkvValues = wave(rows * 3 * width, 41, 1.5);
      const qkv = tf.tensor2d(qkvValues, [rows, 3 * width]);
      const dy = tf.tensor2d(wave(rows * width, 42), [rows, width]);
      const plain = run(qkv, dy, { batch, heads });
      const exact = attention64(Float64Array.from(qkvValues), batch, time, heads);
      for (let i = 0; i < exact.y.length; i++)
        expect(Math.abs(plain.y[i]! - exact.y[i]!), `y[${i}]`).toBeLessThan(2e-6);
      // Threshold 0 keeps every weight: the same bits as no dropout. Threshold 2³² − 1 keeps
      // a 2⁻³² share, so y is 0 and so is v's gradient (the last C of each qkv row).
      const keepAll = run(qkv, dy, { batch, heads, threshold: 0, start: 12345, step: 777 });
      const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
      expect(bits(keepAll.y)).toEqual(bits(plain.y));
      expect(bits(keepAll.dqkv)).toEqual(bits(plain.dqkv));
      const dropAll = run(qkv, dy, {
        batch,
        heads,
        threshold: 2 ** 32 - 1,
        start: 1,
        step: 2,
        keepScale: 5,
      });
      expect(dropAll.y.every((x) => x === 0)).toBe(true);
      for (let row = 0; row < rows; row++)
        for (let c = 2 * width; c < 3 * width; c++)
          expect(dropAll.dqkv[row * 3 * width + c], `dv (${row}, ${c})`).toBe(0);
      // Half dropped, start and step above 2³¹ (they cross into JavaScript's sign bit): each
      // query's kept weights, rescaled by keepScale, are what the forward sums.
      const half = run(qkv, dy, {
        batch,
        heads,
        threshold: 2 ** 31,
        start: 2 ** 32 - 5,
        step: 2 ** 31 + 7,
        keepScale: 2,
      });
      const keptWeight = (e: number) => {
        let x = (2 ** 32 - 5 + Math.imul(e, 2 ** 31 + 7)) >>> 0;
        x = (x ^ (x >>> 16)) >>> 0;
        x = Math.imul(x, 0x7feb352d) >>> 0;
        x = (x ^ (x >>> 15)) >>> 0;
        x = Math.imul(x, 0x846ca68b) >>> 0;
        x = (x ^ (x >>> 16)) >>> 0;
        return x >= 2 ** 31 ? 2 : 0;
      };
      const at = (b: number, t: number, part: number, h: number, d: number) =>
        qkvValues[(b * time + t) * 3 * width + part * width + h * headSize + d]!;
      for (let b = 0; b < batch; b++)
        for (let h = 0; h < heads; h++)
          for (let i = 0; i < time; i += 9) {
            const scores = Array.from({ length: i + 1 }, (_, j) => {
              let dot = 0;
              for (let d = 0; d < headSize; d++) dot += at(b, i, 0, h, d) * at(b, j, 1, h, d);
              return dot / Math.sqrt(headSize);
            });
            const max = Math.max(...scores);
            const sum = scores.reduce((total, x) => total + Math.exp(x - max), 0);
            const first = ((b * heads + h) * time + i) * time; // weight number of j = 0
            for (let d = 0; d < headSize; d++) {
              let value = 0;
              for (let j = 0; j <= i; j++)
                value +=
                  (Math.exp(scores[j]! - max) / sum) * keptWeight(first + j) * at(b, j, 2, h, d);
              const got = half.y[(b * time + i) * width + h * headSize + d]!;
              expect(Math.abs(got - value), `(${b}, ${h}, ${i}, ${d})`).toBeLessThan(1e-5);
            }
          }
    });
  });

  describe('Slice, SplitV and GatherV2 copy exactly what tfjs copies', () => {
    // The reference: the same op on tfjs's cpu backend, whose kernels are plain JavaScript.
    const x = wave(3 * 5 * 7 * 4, 11, 10);
    const onBoth = (
      op: (t: tf.Tensor) => tf.Tensor | tf.Tensor[],
      dtype: 'float32' | 'int32' | 'bool' = 'float32',
    ) => {
      const run = (backend: string) => {
        const previous = tf.getBackend();
        tf.setBackend(backend);
        try {
          return tf.tidy(() => {
            let t: tf.Tensor = tf.tensor(x, [3, 5, 7, 4]);
            if (dtype === 'int32') t = tf.cast(tf.mul(t, 100), 'int32');
            if (dtype === 'bool') t = tf.greater(t, 0);
            return [op(t)].flat().map((r) => ({ shape: r.shape, values: [...r.dataSync()] }));
          });
        } finally {
          tf.setBackend(previous);
        }
      };
      return { wasm: run('wasm'), cpu: run('cpu') };
    };
    const cases: Array<[string, (t: tf.Tensor) => tf.Tensor | tf.Tensor[]]> = [
      ['slice inside every axis', (t) => tf.slice(t, [1, 2, 3, 1], [2, 2, 3, 2])],
      ['slice of the last axis only', (t) => tf.slice(t, [0, 0, 0, 1], [3, 5, 7, 2])],
      ['slice of the first axis only (one run)', (t) => tf.slice(t, [1, 0, 0, 0], [2, -1, -1, -1])],
      ['slice of a 1-D tensor', (t) => tf.slice(tf.reshape(t, [420]), [17], [100])],
      ['slice to nothing', (t) => tf.slice(t, [0, 0, 0, 0], [3, 0, 7, 4])],
      ['split in equal parts, axis 1', (t) => tf.split(t, 5, 1)],
      ['split by sizes with a −1, axis 2', (t) => tf.split(t, [2, -1, 1], 2)],
      ['split of the last axis, axis −1', (t) => tf.split(t, [1, 3], -1)],
      ['gather on axis 0 with repeats', (t) => tf.gather(t, tf.tensor1d([2, 0, 2, 1], 'int32'))],
      [
        'gather on axis 2 with 2-D indices',
        (t) => tf.gather(t, tf.tensor2d([6, 0, 3, 3], [2, 2], 'int32'), 2),
      ],
      ['gather on the last axis', (t) => tf.gather(t, tf.tensor1d([3, 1], 'int32'), 3)],
    ];
    for (const [name, op] of cases)
      for (const dtype of ['float32', 'int32', 'bool'] as const)
        it(`${name} (${dtype})`, () => {
          const { wasm, cpu } = onBoth(op, dtype);
          expect(wasm).toEqual(cpu);
        });

    it('the copies are the set’s kernels, and an index out of range still gets tfjs’s error', () => {
      for (const name of ['Slice', 'SplitV', 'GatherV2']) expect(isNative(name), name).toBe(true);
      expect(() =>
        tf.tidy(() => tf.gather(tf.tensor(x, [3, 5, 7, 4]), tf.tensor1d([3], 'int32')).dataSync()),
      ).toThrow(/index value 3 is not in \[0, 2\]/);
    });
  });

  it('Identity shares its input’s memory: no copy, and each reference outlives the other', () => {
    expect(isNative('Identity')).toBe(true);
    const heapOffset = (t: tf.Tensor) =>
      (
        tf.backend() as unknown as { dataIdMap: { get(id: object): { memoryOffset: number } } }
      ).dataIdMap.get(t.dataId).memoryOffset;
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      const original = tf.tensor([1, 0, 3, 4, 0, 6], [2, 3], dtype);
      const copy = tf.clone(original);
      expect(heapOffset(copy)).toBe(heapOffset(original));
      original.dispose();
      // The memory stays while a reference holds it.
      expect([...copy.dataSync()]).toEqual(
        dtype === 'bool' ? [1, 0, 1, 1, 0, 1] : [1, 0, 3, 4, 0, 6],
      );
      const again = tf.clone(copy);
      copy.dispose();
      expect(again.shape).toEqual([2, 3]);
      expect(again.dtype).toBe(dtype);
      expect(again.dataSync()[2]).toBe(dtype === 'bool' ? 1 : 3);
      again.dispose();
    }
    // Gradients through saved (cloned) tensors still flow: d/dx Σ (x·x) = 2x.
    const grad = tf.tidy(() =>
      tf
        .grad((x: tf.Tensor) => tf.sum(tf.mul(x, x)))(tf.tensor1d([1, -2, 3]))
        .dataSync(),
    );
    expect([...grad]).toEqual([2, -4, 6]);
  });

  it("uninstalling puts tfjs's kernels back", async () => {
    uninstallWasmKernels();
    try {
      for (const name of ['BatchMatMul', 'Exp', 'Erf']) {
        expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
        expect(isNative(name), name).toBe(false);
      }
      for (const name of FUSED_KERNEL_NAMES)
        expect(tf.getKernel(name, 'wasm'), name).toBeUndefined();
      // tfjs's own kernels still compute.
      const c = tf.tidy(() =>
        tf.matMul(tf.ones([2, 3, 4]), tf.ones([2, 4, 5]), false, false).dataSync(),
      );
      expect([...c]).toEqual(Array<number>(30).fill(4));
      expect(tf.tidy(() => tf.exp(tf.scalar(1)).dataSync()[0])).toBeCloseTo(Math.E, 6);
      // Uninstalling twice is harmless.
      uninstallWasmKernels();
      expect(isNative('BatchMatMul')).toBe(false);
    } finally {
      expect((await installWasmKernels()).installed).toBe(true);
    }
    expect(isNative('BatchMatMul')).toBe(true);
  });
});
