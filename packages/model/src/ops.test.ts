// Each hand-written gradient against tfjs autodiff of the same math, written naively.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Random } from '@minigpt/random';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  causalAttention,
  causalMask,
  crossEntropy,
  dropoutKeepMask,
  embedding,
  gelu,
  layerNorm,
  linear,
  mlp,
  RECOMPUTE_ATTENTION_ELEMENTS,
} from './index.js';

const random = new Random(42);
const randn = (shape: number[], scale = 1) =>
  tf.tensor(
    Float32Array.from(
      { length: shape.reduce((a, b) => a * b, 1) },
      () => random.nextNormal() * scale,
    ),
    shape,
  );

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** Compares value and gradients of `fast` and `reference` for a random upstream gradient. */
function expectSameGradients(
  inputs: tf.Tensor[],
  fast: (...x: tf.Tensor[]) => tf.Tensor,
  reference: (...x: tf.Tensor[]) => tf.Tensor,
  tolerance = 1e-4,
) {
  tf.tidy(() => {
    const upstream = randn(fast(...inputs).shape);
    const loss =
      (f: (...x: tf.Tensor[]) => tf.Tensor) =>
      (...x: tf.Tensor[]) =>
        tf.sum(tf.mul(f(...x), upstream));
    expect(maxAbsDiff(fast(...inputs), reference(...inputs))).toBeLessThan(tolerance);
    const fastGrads = tf.grads(loss(fast))(inputs);
    const referenceGrads = tf.grads(loss(reference))(inputs);
    fastGrads.forEach((grad, i) =>
      expect(maxAbsDiff(grad, referenceGrads[i]!)).toBeLessThan(tolerance),
    );
  });
}

/**
 * The tanh GELU 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) at x = −3, −1, −0.5, 0, 0.5, 1, 3
 * and its slope there, in float64: torch.nn.functional.gelu(x, approximate='tanh') on a
 * float64 tensor and its autograd gradient (PyTorch 1.13, Debian's python3-torch); the same
 * digits from Python's math.tanh and the derivative written out.
 */
const TANH_GELU_VALUES = [
  -0.0036373920817729943, -0.15880800939172324, -0.15428599017485606, 0, 0.34571400982514394,
  0.8411919906082768, 2.996362607918227,
];
const TANH_GELU_SLOPES = [
  -0.011584166630969648, -0.08296408384578252, 0.13263009646535764, 0.5, 0.8673699035346424,
  1.0829640838457826, 1.0115841666309695,
];

/** The tanh GELU as tfjs ops, differentiated by tfjs autodiff. */
const naiveGeluTanh = (x: tf.Tensor) =>
  tf.mul(
    tf.mul(x, 0.5),
    tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))),
  );

for (const backend of ['cpu', 'wasm']) {
  describe(`custom-gradient ops (${backend})`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
      await tf.ready();
    });

    it('linear, with and without bias', () => {
      const [x, w, b] = [randn([6, 5]), randn([5, 3]), randn([3])];
      expectSameGradients(
        [x!, w!, b!],
        (x, w, b) => linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D),
        (x, w, b) => tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b!),
      );
      expectSameGradients(
        [x!, w!],
        (x, w) => linear(x as tf.Tensor2D, w as tf.Tensor2D),
        (x, w) => tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
      );
    });

    it('embedding: gathered rows, gradient adds up over repeated ids', () => {
      const ids = tf.tensor1d([3, 1, 3, 0, 3], 'int32');
      const table = randn([4, 6]);
      // Reference: one-hot matMul has an autodiff gradient that every backend runs.
      expectSameGradients(
        [table],
        (t) => embedding(ids, t as tf.Tensor2D),
        (t) => tf.matMul(tf.cast(tf.oneHot(ids, 4), 'float32'), t as tf.Tensor2D),
      );
    });

    it('layerNorm with eps 1e-5, with and without beta', () => {
      const [x, gamma, beta] = [randn([5, 8], 3), randn([8]), randn([8])];
      const reference = (x: tf.Tensor, g: tf.Tensor, b?: tf.Tensor) => {
        const { mean, variance } = tf.moments(x, -1, true);
        const y = tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g);
        return b ? tf.add(y, b) : y;
      };
      expectSameGradients(
        [x!, gamma!, beta!],
        (x, g, b) => layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D),
        reference,
      );
      expectSameGradients(
        [x!, gamma!],
        (x, g) => layerNorm(x as tf.Tensor2D, g as tf.Tensor1D),
        (x, g) => reference(x, g),
      );
    });

    it('exact GELU', () => {
      const x = randn([4, 7], 2);
      expectSameGradients(
        [x],
        (x) => gelu(x!),
        (x) => tf.mul(tf.mul(x!, 0.5), tf.add(1, tf.erf(tf.div(x!, Math.SQRT2)))),
      );
      // Known values of x·Φ(x).
      expect(
        Array.from(gelu(tf.tensor1d([0, 1, -1])).dataSync()).map((v) => +v.toFixed(4)),
      ).toEqual([0, 0.8413, -0.1587]);
    });

    it('tanh GELU: known values and slopes, and the gradient of its formula', () => {
      const xs = [-3, -1, -0.5, 0, 0.5, 1, 3];
      const x = tf.tensor1d(xs);
      const values = gelu(x, 'gelu_tanh').dataSync();
      const slopes = tf
        .grad((t) => tf.sum(gelu(t, 'gelu_tanh')))(x)
        .dataSync();
      xs.forEach((_, i) => {
        // float32 rounding of values ≤ 3 is ≤ 2.4e-7; the exact GELU differs by ≥ 1.5e-5 at
        // every x ≠ 0 here (4.1e-4 at −3), so these values tell the two apart.
        expect(Math.abs(values[i]! - TANH_GELU_VALUES[i]!)).toBeLessThan(1e-6);
        expect(Math.abs(slopes[i]! - TANH_GELU_SLOPES[i]!)).toBeLessThan(1e-6);
      });
      expectSameGradients([randn([4, 7], 2)], (x) => gelu(x!, 'gelu_tanh'), naiveGeluTanh);
    });

    it('fused MLP equals linear → GELU → linear, with and without biases', () => {
      const [x, wFc, bFc, wProj, bProj] = [
        randn([6, 4]),
        randn([4, 16], 0.5),
        randn([16]),
        randn([16, 4], 0.5),
        randn([4]),
      ];
      const naive = (
        x: tf.Tensor,
        a: tf.Tensor,
        b: tf.Tensor | undefined,
        c: tf.Tensor,
        d: tf.Tensor | undefined,
      ) => {
        const h = b
          ? tf.add(tf.matMul(x as tf.Tensor2D, a as tf.Tensor2D), b)
          : tf.matMul(x as tf.Tensor2D, a as tf.Tensor2D);
        const g = tf.mul(tf.mul(h, 0.5), tf.add(1, tf.erf(tf.div(h, Math.SQRT2))));
        const y = tf.matMul(g as tf.Tensor2D, c as tf.Tensor2D);
        return d ? tf.add(y, d) : y;
      };
      const as2 = (t: tf.Tensor) => t as tf.Tensor2D;
      const as1 = (t: tf.Tensor) => t as tf.Tensor1D;
      expectSameGradients(
        [x!, wFc!, bFc!, wProj!, bProj!],
        (x, a, b, c, d) => mlp(as2(x!), as2(a!), as1(b!), as2(c!), as1(d!)),
        (x, a, b, c, d) => naive(x!, a!, b, c!, d),
      );
      expectSameGradients(
        [x!, wFc!, wProj!],
        (x, a, c) => mlp(as2(x!), as2(a!), undefined, as2(c!), undefined),
        (x, a, c) => naive(x!, a!, undefined, c!, undefined),
      );
    });

    it('fused MLP with the tanh GELU equals linear → tanh GELU → linear', () => {
      const [x, wFc, bFc, wProj, bProj] = [
        randn([6, 4]),
        randn([4, 16], 0.8),
        randn([16]),
        randn([16, 4], 0.5),
        randn([4]),
      ];
      const as2 = (t: tf.Tensor) => t as tf.Tensor2D;
      const as1 = (t: tf.Tensor) => t as tf.Tensor1D;
      expectSameGradients(
        [x!, wFc!, bFc!, wProj!, bProj!],
        (x, a, b, c, d) => mlp(as2(x!), as2(a!), as1(b!), as2(c!), as1(d!), 'gelu_tanh'),
        (x, a, b, c, d) =>
          tf.add(
            tf.matMul(as2(naiveGeluTanh(tf.add(tf.matMul(as2(x!), as2(a!)), b!))), as2(c!)),
            d!,
          ),
      );
      expectSameGradients(
        [x!, wFc!, wProj!],
        (x, a, c) => mlp(as2(x!), as2(a!), undefined, as2(c!), undefined, 'gelu_tanh'),
        (x, a, c) => tf.matMul(as2(naiveGeluTanh(tf.matMul(as2(x!), as2(a!)))), as2(c!)),
      );
    });

    it('causal attention, with and without dropout on the weights', () => {
      const shape = [2, 3, 5, 4];
      const [q, k, v] = [randn(shape), randn(shape), randn(shape)];
      const dropout = { rate: 0.2, seed: 7 };
      // The same keep mask the op draws from (rate, seed), scaled by 1/(1 − rate).
      const keep = tf.mul(tf.cast(dropoutKeepMask([2, 3, 5, 5], 0.2, 7), 'float32'), 1 / 0.8);
      const reference = (mask?: tf.Tensor) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
        const scores = tf.add(
          tf.div(tf.matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true), 2),
          causalMask(5),
        );
        const weights = tf.softmax(scores);
        return tf.matMul(mask ? tf.mul(weights, mask) : weights, v as tf.Tensor4D);
      };
      const as4 = (t: tf.Tensor) => t as tf.Tensor4D;
      expectSameGradients(
        [q!, k!, v!],
        (q, k, v) => causalAttention(as4(q!), as4(k!), as4(v!)),
        reference(),
      );
      expectSameGradients(
        [q!, k!, v!],
        (q, k, v) => causalAttention(as4(q!), as4(k!), as4(v!), dropout),
        reference(keep),
      );
      // About a fifth of the weights are dropped.
      const kept = tf
        .mean(tf.cast(dropoutKeepMask([50, 50, 50], 0.2, 3), 'float32'))
        .dataSync()[0]!;
      expect(Math.abs(kept - 0.8)).toBeLessThan(0.01);
    });

    it('recomputes large attention weights in backward, with the same gradients', () => {
      const shape = [1, 5, 512, 2]; // 5·512·512 weights > RECOMPUTE_ATTENTION_ELEMENTS
      expect(5 * 512 * 512).toBeGreaterThan(RECOMPUTE_ATTENTION_ELEMENTS);
      const [q, k, v] = [randn(shape), randn(shape), randn(shape)];
      const dropout = { rate: 0.1, seed: 3 };
      const keep = tf.mul(tf.cast(dropoutKeepMask([1, 5, 512, 512], 0.1, 3), 'float32'), 1 / 0.9);
      const reference = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
        const scores = tf.add(
          tf.div(tf.matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true), Math.SQRT2),
          causalMask(512),
        );
        return tf.matMul(tf.mul(tf.softmax(scores), keep), v as tf.Tensor4D);
      };
      const as4 = (t: tf.Tensor) => t as tf.Tensor4D;
      expectSameGradients(
        [q!, k!, v!],
        (q, k, v) => causalAttention(as4(q!), as4(k!), as4(v!), dropout),
        reference,
      );
    });

    it('attention is causal: a query never sees later keys', () => {
      const shape = [1, 1, 4, 2];
      const [q, k, v] = [randn(shape), randn(shape), randn(shape)];
      const before = causalAttention(
        q as tf.Tensor4D,
        k as tf.Tensor4D,
        v as tf.Tensor4D,
      ).arraySync()[0]![0]!;
      const changedLast = tf.concat(
        [tf.slice(v, [0, 0, 0, 0], [1, 1, 3, 2]), tf.fill([1, 1, 1, 2], 100)],
        2,
      );
      const after = causalAttention(
        q as tf.Tensor4D,
        k as tf.Tensor4D,
        changedLast as tf.Tensor4D,
      ).arraySync()[0]![0]!;
      for (let t = 0; t < 3; t++) expect(after[t]).toEqual(before[t]);
      expect(after[3]).not.toEqual(before[3]);
    });

    it('cross-entropy equals the mean negative log-likelihood, gradient included', () => {
      const logits = randn([6, 9], 2);
      const targets = tf.tensor1d([0, 8, 3, 3, 5, 1], 'int32');
      expectSameGradients(
        [logits],
        (l) => crossEntropy(l as tf.Tensor2D, targets),
        (l) =>
          tf.neg(
            tf.mean(
              tf.sum(tf.mul(tf.logSoftmax(l!), tf.cast(tf.oneHot(targets, 9), 'float32')), -1),
            ),
          ),
      );
      // Uniform logits: loss is ln(V).
      expect(
        crossEntropy(
          tf.zeros([3, 9]) as tf.Tensor2D,
          tf.tensor1d([1, 2, 3], 'int32'),
        ).dataSync()[0],
      ).toBeCloseTo(Math.log(9), 5);
    });
  });
}

describe('fused GELU kernels (MinigptGelu, MinigptGeluGrad: the exact GELU only)', () => {
  // Stand-ins registered on cpu, as @minigpt/native-kernels and @minigpt/wasm-kernels register
  // theirs on wasm, returning a marker value: the exact GELU must run them, the tanh GELU never.
  const MARKER = 1234;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  it('run for the exact GELU, and never for the tanh one (values, gradients, fused MLP)', () => {
    const names = ['MinigptGelu', 'MinigptGeluGrad'];
    for (const kernelName of names) {
      tf.registerKernel({
        kernelName,
        backendName: 'cpu',
        kernelFunc: ({ inputs, backend }) => {
          const { x } = inputs as { x: tf.TensorInfo };
          const size = x.shape.reduce((a, b) => a * b, 1);
          return (backend as unknown as CpuBackend).makeTensorInfo(
            x.shape,
            'float32',
            new Float32Array(size).fill(MARKER),
          );
        },
      });
    }
    try {
      const x = tf.tensor1d([-3, -1, -0.5, 0, 0.5, 1, 3]);
      // The exact GELU takes the registered kernels (so the stand-ins are in effect)…
      expect(Array.from(gelu(x).dataSync())).toEqual(new Array(7).fill(MARKER));
      expect(
        Array.from(
          tf
            .grad((t) => tf.sum(gelu(t)))(x)
            .dataSync(),
        ),
      ).toEqual(new Array(7).fill(MARKER));
      // …the tanh GELU does not.
      const values = gelu(x, 'gelu_tanh').dataSync();
      const slopes = tf
        .grad((t) => tf.sum(gelu(t, 'gelu_tanh')))(x)
        .dataSync();
      TANH_GELU_VALUES.forEach((value, i) => {
        expect(Math.abs(values[i]! - value)).toBeLessThan(1e-6);
        expect(Math.abs(slopes[i]! - TANH_GELU_SLOPES[i]!)).toBeLessThan(1e-6);
      });
      const [input, wFc, wProj] = [randn([3, 4]), randn([4, 16], 0.8), randn([16, 4], 0.5)];
      const as2 = (t: tf.Tensor) => t as tf.Tensor2D;
      expectSameGradients(
        [input!, wFc!, wProj!],
        (x, a, c) => mlp(as2(x!), as2(a!), undefined, as2(c!), undefined, 'gelu_tanh'),
        (x, a, c) => tf.matMul(as2(naiveGeluTanh(tf.matMul(as2(x!), as2(a!)))), as2(c!)),
      );
    } finally {
      for (const kernelName of names) tf.unregisterKernel(kernelName, 'cpu');
    }
    expect(tf.getKernel('MinigptGelu', 'cpu')).toBeUndefined();
  });

  it('refuses an unknown activation instead of picking a GELU', () => {
    expect(() => gelu(tf.tensor1d([1]), 'relu' as never)).toThrow(
      /unknown GELU "relu"; valid: gelu, gelu_tanh/,
    );
  });
});

/** The part of tfjs's cpu backend a stand-in kernel uses. */
interface CpuBackend {
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}
