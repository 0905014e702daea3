// The GPT's building blocks as tfjs ops with hand-written gradients. Why: tfjs's own matMul
// gradient uses transposed matMuls, which run 8–16× slower than plain ones on the wasm
// backend, and gather's gradient (UnsortedSegmentSum) has no wasm kernel at all. Here every
// backward matMul goes through matMulT — plain, on an explicitly transposed operand, where
// only tfjs's wasm kernel runs — and the embedding gradient is a one-hot matMul. Each op is
// checked against tfjs autodiff of the same math in tests.
//
// Shapes: N rows (= B·T), C channels, V vocab, B batch, nh heads, T time, hs head size.
import * as tf from '@tensorflow/tfjs';
import type { GPTActivation } from './config.js';

type Grads = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];

/**
 * a·b with the last two axes of a and/or b transposed. tfjs's own wasm BatchMatMul runs
 * transposed operands 8–16× slower than plain ones, so on it the operand is transposed
 * first; kernels that transpose for free while packing — @minigpt/native-kernels' (which
 * mark their kernelFunc `native`), tfjs-node's BLAS, cpu — get the flags and skip a copy.
 */
export function matMulT<T extends tf.Tensor>(
  a: T,
  b: T,
  transposeA: boolean,
  transposeB: boolean,
): T {
  if (!transposesAreSlow()) return tf.matMul(a, b, transposeA, transposeB) as T;
  const swapped = (t: tf.Tensor) => {
    const perm = [...Array(t.rank).keys()];
    [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1]!, perm[t.rank - 2]!];
    return tf.transpose(t, perm);
  };
  return tf.matMul(transposeA ? swapped(a) : a, transposeB ? swapped(b) : b) as T;
}

function transposesAreSlow(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  const kernel = tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc as { native?: boolean };
  return !kernel?.native;
}

/** y = x·w (+ b). x (N, in), w (in, out), b (out) → (N, out). */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  if (b) {
    const op = tf.customGrad((xIn, wIn, bIn, save) => {
      const [xt, wt] = [xIn as tf.Tensor2D, wIn as tf.Tensor2D];
      (save as tf.GradSaveFunc)([xt, wt]);
      const value = tf.add(tf.matMul(xt, wt), bIn as tf.Tensor1D) as tf.Tensor2D;
      const gradFunc: Grads = (dy, [xs, ws]) => [
        ...linearGrads(dy as tf.Tensor2D, xs as tf.Tensor2D, ws as tf.Tensor2D),
        tf.sum(dy, 0),
      ];
      return { value, gradFunc };
    });
    return op(x, w, b) as tf.Tensor2D;
  }
  const op = tf.customGrad((xIn, wIn, save) => {
    const [xt, wt] = [xIn as tf.Tensor2D, wIn as tf.Tensor2D];
    (save as tf.GradSaveFunc)([xt, wt]);
    const gradFunc: Grads = (dy, [xs, ws]) =>
      linearGrads(dy as tf.Tensor2D, xs as tf.Tensor2D, ws as tf.Tensor2D);
    return { value: tf.matMul(xt, wt), gradFunc };
  });
  return op(x, w) as tf.Tensor2D;
}

function linearGrads(dy: tf.Tensor2D, x: tf.Tensor2D, w: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] {
  return tf.tidy(() => {
    const dx: tf.Tensor2D = matMulT(dy, w, false, true); // (N, out)·(out, in) → (N, in)
    const dw: tf.Tensor2D = matMulT(x, dy, true, false); // (in, N)·(N, out) → (in, out)
    return [dx, dw];
  });
}

/**
 * The LM head tied to the token embedding: x·tableᵀ. x (N, C), table (V, C) → (N, V).
 * The products take the table as it is stored (transposed operands), where `linear` of a
 * transposed table would copy the (V, C) table and its gradient every step: at GPT-2's
 * vocabulary those two copies of 154 MB cost more than the head's backward product.
 */
export function tiedHead(x: tf.Tensor2D, table: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((xIn, tableIn, save) => {
    const [xt, tt] = [xIn as tf.Tensor2D, tableIn as tf.Tensor2D];
    (save as tf.GradSaveFunc)([xt, tt]);
    const gradFunc: Grads = (dy, [xs, ts]) =>
      tf.tidy(() => [
        tf.matMul(dy as tf.Tensor2D, ts as tf.Tensor2D), // (N, V)·(V, C) → (N, C)
        matMulT(dy as tf.Tensor2D, xs as tf.Tensor2D, true, false), // (V, N)·(N, C) → (V, C)
      ]);
    return { value: matMulT(xt, tt, false, true), gradFunc }; // (N, C)·(C, V)
  });
  return op(x, table) as tf.Tensor2D;
}

/** Rows `ids` of `table`. ids (N) int32, table (V, C) → (N, C). */
export function embedding(ids: tf.Tensor1D, table: tf.Tensor2D): tf.Tensor2D {
  const vocabSize = table.shape[0];
  const op = tf.customGrad((tableIn, save) => {
    const value = tf.gather(tableIn as tf.Tensor2D, ids) as tf.Tensor2D;
    // Saved, not just captured: tensors made in the forward pass are freed before backprop.
    (save as tf.GradSaveFunc)([ids]);
    // d(table) = one_hot(ids)ᵀ · dy: (V, N)·(N, C) → (V, C); repeated ids add up.
    const gradFunc: Grads = (dy, [savedIds]) => [
      matMulT(oneHotFloat(savedIds as tf.Tensor1D, vocabSize), dy as tf.Tensor2D, true, false),
    ];
    return { value, gradFunc };
  });
  return op(table) as tf.Tensor2D;
}

/**
 * Fused LayerNorm kernels a backend may register (@minigpt/native-kernels does, on wasm):
 *   MinigptLayerNorm      {x (N, C), gamma (C), beta? (C)}, {epsilon} → [y, x̂ (N, C), rstd (N, 1)]
 *   MinigptLayerNormGrad  {dy, normalized: x̂, rstd, gamma} → [dx (N, C), dGamma (C), dBeta (C)]
 * Where they exist, layerNorm is two kernels (forward, backward) instead of ~20 tfjs ops.
 */
export const FUSED_LAYER_NORM = 'MinigptLayerNorm';
export const FUSED_LAYER_NORM_GRAD = 'MinigptLayerNormGrad';

function fusedLayerNorm(
  x: tf.Tensor2D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D | undefined,
  eps: number,
): tf.Tensor2D {
  const forward = (
    xIn: tf.Tensor,
    gammaIn: tf.Tensor,
    betaIn: tf.Tensor | undefined,
    save: tf.GradSaveFunc,
  ) => {
    const [y, normalized, rstd] = tf
      .engine()
      .runKernel(
        FUSED_LAYER_NORM,
        betaIn ? { x: xIn, gamma: gammaIn, beta: betaIn } : { x: xIn, gamma: gammaIn },
        { epsilon: eps },
      ) as tf.Tensor[];
    save([normalized!, rstd!, gammaIn]);
    const gradFunc: Grads = (dy, [xHat, r, gm]) => {
      const [dx, dGamma, dBeta] = tf.engine().runKernel(FUSED_LAYER_NORM_GRAD, {
        dy,
        normalized: xHat!,
        rstd: r!,
        gamma: gm!,
      }) as tf.Tensor[];
      if (betaIn) return [dx!, dGamma!, dBeta!];
      dBeta!.dispose();
      return [dx!, dGamma!];
    };
    return { value: y as tf.Tensor2D, gradFunc };
  };
  if (beta) {
    const op = tf.customGrad((xIn, gammaIn, betaIn, save) =>
      forward(xIn as tf.Tensor, gammaIn as tf.Tensor, betaIn as tf.Tensor, save as tf.GradSaveFunc),
    );
    return op(x, gamma, beta) as tf.Tensor2D;
  }
  const op = tf.customGrad((xIn, gammaIn, save) =>
    forward(xIn as tf.Tensor, gammaIn as tf.Tensor, undefined, save as tf.GradSaveFunc),
  );
  return op(x, gamma) as tf.Tensor2D;
}

/** LayerNorm over the last axis (eps 1e-5, as PyTorch). x (N, C), gamma/beta (C) → (N, C). */
export function layerNorm(
  x: tf.Tensor2D,
  gamma: tf.Tensor1D,
  beta?: tf.Tensor1D,
  eps = 1e-5,
): tf.Tensor2D {
  if (tf.getKernel(FUSED_LAYER_NORM, tf.getBackend())) return fusedLayerNorm(x, gamma, beta, eps);
  const forward = (xIn: tf.Tensor2D, gammaIn: tf.Tensor1D) => {
    const [normalized, rstd] = tf.tidy(() => {
      const mean = tf.mean(xIn, -1, true); // (N, 1)
      const centered = tf.sub(xIn, mean);
      const variance = tf.mean(tf.square(centered), -1, true); // (N, 1), biased as PyTorch
      const inverseStd = tf.rsqrt(tf.add(variance, eps)); // (N, 1)
      return [tf.mul(centered, inverseStd), inverseStd]; // (N, C), (N, 1)
    });
    return { normalized, rstd, scaled: tf.mul(normalized, gammaIn) as tf.Tensor2D };
  };
  // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)), with g = dy · gamma.
  const inputGrad = (dy: tf.Tensor, normalized: tf.Tensor, rstd: tf.Tensor, gammaIn: tf.Tensor) =>
    tf.tidy(() => {
      const g = tf.mul(dy, gammaIn);
      const meanG = tf.mean(g, -1, true);
      const meanGX = tf.mean(tf.mul(g, normalized), -1, true);
      return tf.mul(rstd, tf.sub(tf.sub(g, meanG), tf.mul(normalized, meanGX)));
    });
  if (beta) {
    const op = tf.customGrad((xIn, gammaIn, betaIn, save) => {
      const { normalized, rstd, scaled } = forward(xIn as tf.Tensor2D, gammaIn as tf.Tensor1D);
      (save as tf.GradSaveFunc)([normalized, rstd, gammaIn as tf.Tensor]);
      const gradFunc: Grads = (dy, [xHat, r, gm]) => [
        inputGrad(dy, xHat!, r!, gm!),
        tf.sum(tf.mul(dy, xHat!), 0),
        tf.sum(dy, 0),
      ];
      return { value: tf.add(scaled, betaIn as tf.Tensor1D), gradFunc };
    });
    return op(x, gamma, beta) as tf.Tensor2D;
  }
  const op = tf.customGrad((xIn, gammaIn, save) => {
    const { normalized, rstd, scaled } = forward(xIn as tf.Tensor2D, gammaIn as tf.Tensor1D);
    (save as tf.GradSaveFunc)([normalized, rstd, gammaIn as tf.Tensor]);
    const gradFunc: Grads = (dy, [xHat, r, gm]) => [
      inputGrad(dy, xHat!, r!, gm!),
      tf.sum(tf.mul(dy, xHat!), 0),
    ];
    return { value: scaled, gradFunc };
  });
  return op(x, gamma) as tf.Tensor2D;
}

const SQRT_HALF = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * Fused GELU kernels a backend may register (@minigpt/native-kernels does, on wasm):
 *   MinigptGelu      {x} → x·Φ(x)
 *   MinigptGeluGrad  {dy, x} → dy·(Φ(x) + x·φ(x))
 * Where they exist, GELU forward and backward are one kernel each instead of 5 and ~9 ops.
 * They compute the exact GELU only: the tanh GELU never runs them.
 */
export const FUSED_GELU = 'MinigptGelu';
export const FUSED_GELU_GRAD = 'MinigptGeluGrad';

const hasKernel = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;

/** x·Φ(x), Φ(x) = (1 + erf(x/√2))/2. */
function geluValue(x: tf.Tensor): tf.Tensor {
  if (hasKernel(FUSED_GELU)) return tf.engine().runKernel(FUSED_GELU, { x }) as tf.Tensor;
  return tf.tidy(() => tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, SQRT_HALF))))));
}

/** dy · d/dx x·Φ(x) = dy·(Φ(x) + x·φ(x)), φ(x) = exp(−x²/2)/√(2π). */
function geluBackward(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  if (hasKernel(FUSED_GELU_GRAD))
    return tf.engine().runKernel(FUSED_GELU_GRAD, { dy, x }) as tf.Tensor;
  return tf.tidy(() => {
    const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, SQRT_HALF))));
    const density = tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), INV_SQRT_2PI);
    return tf.mul(dy, tf.add(cdf, tf.mul(x, density)));
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const TANH_GELU_CUBIC = 0.044715;

/**
 * 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³), computed as x·σ(2u) — the same
 * function, since 0.5·(1 + tanh(u)) = σ(2u). tfjs-wasm's Sigmoid is XNNPACK's vectorised
 * one and its Tanh a scalar loop: 0.8 against 14 ms for a (256, 3072) tensor, which made
 * Tanh the largest cost after the matMuls of a GPT-2 fine-tuning step. Plain tfjs ops on
 * every backend: the fused kernels are the exact GELU's.
 */
function geluTanhValue(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(twiceInner(x, tf.square(x)))));
}

/** 2u = x·(2√(2/π) + 2√(2/π)·0.044715·x²), given x². */
function twiceInner(x: tf.Tensor, xSquared: tf.Tensor): tf.Tensor {
  return tf.mul(
    x,
    tf.add(tf.mul(xSquared, 2 * SQRT_2_OVER_PI * TANH_GELU_CUBIC), 2 * SQRT_2_OVER_PI),
  );
}

/**
 * dy · d/dx of the tanh GELU x·s, s = σ(2u): dy·s·(1 + x·(1 − s)·2u′), with
 * 2u′ = 2√(2/π)·(1 + 3·0.044715·x²) (σ′ = σ·(1 − σ)).
 */
function geluTanhBackward(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const xSquared = tf.square(x);
    const s = tf.sigmoid(twiceInner(x, xSquared));
    const twiceInnerSlope = tf.add(
      tf.mul(xSquared, 6 * SQRT_2_OVER_PI * TANH_GELU_CUBIC),
      2 * SQRT_2_OVER_PI,
    );
    const slope = tf.mul(s, tf.add(tf.mul(tf.mul(x, tf.sub(1, s)), twiceInnerSlope), 1));
    return tf.mul(dy, slope);
  });
}

/** Each GELU's forward and backward (dy · GELU′(x)), by `GPTConfig.activation`. */
const GELUS: Record<
  GPTActivation,
  { value: (x: tf.Tensor) => tf.Tensor; backward: (dy: tf.Tensor, x: tf.Tensor) => tf.Tensor }
> = {
  gelu: { value: geluValue, backward: geluBackward },
  gelu_tanh: { value: geluTanhValue, backward: geluTanhBackward },
};

/**
 * GELU. 'gelu' (default): exact, 0.5·x·(1 + erf(x/√2)) — PyTorch's nn.GELU() default, and
 * ONNX's Erf form. 'gelu_tanh': 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — PyTorch's
 * gelu(approximate='tanh'), GPT-2's, Hugging Face's "gelu_new".
 */
export function gelu<T extends tf.Tensor>(x: T, activation: GPTActivation = 'gelu'): T {
  const { value, backward } = geluOf(activation);
  const op = tf.customGrad((xIn, save) => {
    const xt = xIn as tf.Tensor;
    // Only x is saved (Φ is recomputed in backward): the MLP's (N, 4C) tensors are big.
    (save as tf.GradSaveFunc)([xt]);
    const gradFunc: Grads = (dy, [xs]) => [backward(dy, xs!)];
    return { value: value(xt), gradFunc };
  });
  return op(x) as T;
}

function geluOf(activation: GPTActivation) {
  // Callers in JS may pass anything; a wrong name must not silently pick a GELU.
  if (!Object.hasOwn(GELUS, activation))
    throw new RangeError(
      `unknown GELU "${String(activation)}"; valid: ${Object.keys(GELUS).join(', ')}`,
    );
  return GELUS[activation];
}

/**
 * The transformer MLP, fused: gelu(x·wFc + bFc)·wProj + bProj, with the GELU `activation`
 * names (see `gelu`). x (N, C), wFc (C, 4C), wProj (4C, C) → (N, C). Saves only x and the
 * (N, 4C) pre-activation and recomputes the GELU in backward: one (N, 4C) tensor kept per
 * layer instead of four.
 */
export function mlp(
  x: tf.Tensor2D,
  wFc: tf.Tensor2D,
  bFc: tf.Tensor1D | undefined,
  wProj: tf.Tensor2D,
  bProj: tf.Tensor1D | undefined,
  activation: GPTActivation = 'gelu',
): tf.Tensor2D {
  const { value: activate, backward: activateBackward } = geluOf(activation);
  const withBias = bFc !== undefined && bProj !== undefined;
  const forward = (inputs: tf.Tensor[], save: tf.GradSaveFunc) => {
    const [xt, fc, proj, fcBias, projBias] = inputs as [
      tf.Tensor2D,
      tf.Tensor2D,
      tf.Tensor2D,
      tf.Tensor1D?,
      tf.Tensor1D?,
    ];
    const value = tf.tidy(() => {
      const preActivation = fcBias ? tf.add(tf.matMul(xt, fc), fcBias) : tf.matMul(xt, fc); // (N, 4C)
      save([xt, fc, proj, preActivation]);
      const activated = activate(preActivation); // (N, 4C)
      const out = tf.matMul(activated, proj); // (N, C)
      return (projBias ? tf.add(out, projBias) : out) as tf.Tensor2D;
    });
    const gradFunc: Grads = (dy, [xs, fcs, projs, h]) =>
      tf.tidy(() => {
        const activated = activate(h!); // recomputed (N, 4C)
        const dProj = matMulT(activated, dy, true, false); // (4C, N)·(N, C)
        const dActivated = matMulT(dy, projs!, false, true); // (N, C)·(C, 4C)
        const dh = activateBackward(dActivated, h!); // (N, 4C)
        const dFc = matMulT(xs!, dh, true, false); // (C, N)·(N, 4C)
        const dx = matMulT(dh, fcs!, false, true); // (N, 4C)·(4C, C)
        return withBias ? [dx, dFc, dProj, tf.sum(dh, 0), tf.sum(dy, 0)] : [dx, dFc, dProj];
      });
    return { value, gradFunc };
  };
  if (withBias) {
    const op = tf.customGrad((a, b, c, d, e, save) =>
      forward([a, b, c, d, e] as tf.Tensor[], save as tf.GradSaveFunc),
    );
    return op(x, wFc, wProj, bFc, bProj) as tf.Tensor2D;
  }
  const op = tf.customGrad((a, b, c, save) =>
    forward([a, b, c] as tf.Tensor[], save as tf.GradSaveFunc),
  );
  return op(x, wFc, wProj) as tf.Tensor2D;
}

/** Attention weight tensors larger than this (elements) are recomputed in backward. */
export const RECOMPUTE_ATTENTION_ELEMENTS = 1 << 20;

/** Dropout on the attention weights: drop with probability `rate`, masks drawn from `seed`. */
export interface AttentionDropout {
  readonly rate: number;
  readonly seed: number;
}

/**
 * The counter stream behind dropoutKeepMask: element i is kept when
 * lowbias32((start + i·step) mod 2³²) ≥ threshold (= rate·2³²). A different stream per seed:
 * the seed picks the starting point and the (odd) step. Fused kernels draw the same stream
 * themselves (MinigptAttention), so a mask never has to be stored.
 */
export function dropoutStream(
  rate: number,
  seed: number,
): { threshold: number; start: number; step: number } {
  return {
    threshold: Math.min(Math.floor(rate * 2 ** 32), 2 ** 32 - 1),
    start: Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0,
    step: (Math.imul(seed, 0xc2b2ae35) | 1) >>> 0,
  };
}

/** lowbias32 (Wellons): a full-avalanche 32-bit mixer; an unsigned 32-bit result. */
function lowbias32(value: number): number {
  let x = value;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * true where an element is kept, with probability 1 − rate: element i is kept when a 32-bit
 * hash of (seed, i) is ≥ rate·2³² (dropoutStream). Same shape and seed, same mask, on every
 * backend.
 *
 * Counter-based and written in plain JS: tf.randomUniform draws through a seeded generator
 * in JS and then compares in a kernel, which took a fifth of a `seed` train step on wasm;
 * this fills the bool tensor's bytes directly (~4× faster).
 */
export function dropoutKeepMask(shape: number[], rate: number, seed: number): tf.Tensor {
  const size = shape.reduce((product, dim) => product * dim, 1);
  const keep = new Uint8Array(size);
  const { threshold, start, step } = dropoutStream(rate, seed);
  let counter = start;
  for (let index = 0; index < size; index++) {
    keep[index] = lowbias32(counter) >= threshold ? 1 : 0;
    counter = (counter + step) >>> 0;
  }
  return tf.tensor(keep, shape, 'bool');
}

/**
 * Causal self-attention core: softmax(q·kᵀ/√hs + mask)·v, optionally with dropout on the
 * attention weights. q, k, v (B, nh, T, hs) → (B, nh, T, hs).
 *
 * Memory: the (B, nh, T, T) tensors are the largest in the model, so none is kept for the
 * backward pass. It saves q, k, v and a 1-byte keep mask, and recomputes the softmax (one
 * more matMul per layer). At the seed preset this is what keeps a wasm train step inside
 * wasm's 4 GB.
 */
export function causalAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  dropout?: AttentionDropout,
): tf.Tensor4D {
  const [batch, heads, time, headSize] = q.shape;
  const scale = 1 / Math.sqrt(headSize);
  const attentionWeights = (qt: tf.Tensor4D, kt: tf.Tensor4D) =>
    tf.tidy(() => {
      const mask = causalMask(time); // (T, T): 0 on and below the diagonal, −1e9 above
      const scores = tf.add(tf.mul(matMulT(qt, kt, false, true), scale), mask); // (B, nh, T, T)
      return tf.softmax(scores) as tf.Tensor4D; // (B, nh, T, T)
    });
  const keepScale = dropout ? 1 / (1 - dropout.rate) : 1;
  const op = tf.customGrad((qIn, kIn, vIn, save) => {
    const [qt, kt, vt] = [qIn as tf.Tensor4D, kIn as tf.Tensor4D, vIn as tf.Tensor4D];
    const keep = dropout
      ? dropoutKeepMask([batch, heads, time, time], dropout.rate, dropout.seed)
      : undefined;
    const weights = attentionWeights(qt, kt);
    const recompute = batch * heads * time * time > RECOMPUTE_ATTENTION_ELEMENTS;
    // save() takes a fixed list: placeholders stand in for what is not kept.
    (save as tf.GradSaveFunc)([
      qt,
      kt,
      vt,
      keep ?? tf.scalar(0),
      recompute ? tf.scalar(0) : weights,
    ]);
    const value = tf.tidy(() => {
      const kept = keep ? tf.mul(weights, tf.mul(tf.cast(keep, 'float32'), keepScale)) : weights;
      return tf.matMul(kept, vt) as tf.Tensor4D; // (B, nh, T, hs)
    });
    keep?.dispose();
    weights.dispose();
    const gradFunc: Grads = (dy, [qs, ks, vs, savedKeep, savedWeights]) =>
      tf.tidy(() => {
        const p = recompute
          ? attentionWeights(qs as tf.Tensor4D, ks as tf.Tensor4D)
          : savedWeights!;
        const keepFactor = keep ? tf.mul(tf.cast(savedKeep!, 'float32'), keepScale) : undefined;
        const pKept = keepFactor ? tf.mul(p, keepFactor) : p;
        const dKept = matMulT(dy as tf.Tensor4D, vs as tf.Tensor4D, false, true); // (B, nh, T, T)
        const dv = matMulT(pKept as tf.Tensor4D, dy as tf.Tensor4D, true, false); // (B, nh, T, hs)
        const dp = keepFactor ? tf.mul(dKept, keepFactor) : dKept;
        // softmax backward: ds = p · (dp − Σ dp·p), then the 1/√hs scale.
        const ds = tf.mul(tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true))), scale);
        const dq = tf.matMul(ds, ks!); // (B, nh, T, hs)
        const dk = matMulT(ds as tf.Tensor4D, qs as tf.Tensor4D, true, false); // (B, nh, T, hs)
        return [dq, dk, dv];
      });
    return { value, gradFunc };
  });
  return op(q, k, v) as tf.Tensor4D;
}

/**
 * The dropout kernel a backend may register (@minigpt/native-kernels does, on wasm):
 *   MinigptDropout {x}, attrs threshold, start, step (dropoutStream's), keepScale
 *                  → x·keepScale where dropoutKeepMask keeps, 0 elsewhere
 * The same values as the tfjs path below, without a mask drawn in JavaScript or stored.
 */
export const FUSED_DROPOUT = 'MinigptDropout';

/**
 * Dropout of `x` at `rate` with the mask of `seed` (dropoutKeepMask): kept elements scaled
 * by 1/(1 − rate), so the expectation is unchanged. Through FUSED_DROPOUT where the backend
 * has it (forward, and backward on dy with the same stream), else tfjs ops on the mask.
 */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T {
  const keepScale = 1 / (1 - rate);
  if (hasKernel(FUSED_DROPOUT)) {
    const attrs = { ...dropoutStream(rate, seed), keepScale };
    const run = (input: tf.Tensor) =>
      tf.engine().runKernel(FUSED_DROPOUT, { x: input }, attrs) as tf.Tensor;
    const op = tf.customGrad((xIn) => ({
      value: run(xIn as tf.Tensor),
      gradFunc: (dy: tf.Tensor) => [run(dy)],
    }));
    return op(x) as T;
  }
  return tf.tidy(() => {
    const keep = dropoutKeepMask(x.shape, rate, seed);
    return tf.mul(x, tf.mul(tf.cast(keep, 'float32'), keepScale)) as T;
  });
}

/**
 * Fused causal self-attention kernels a backend may register (on wasm, @minigpt/native-kernels'
 * addon and @minigpt/wasm-kernels' WebAssembly set both do; their inputs and outputs are on
 * @minigpt/wasm-kernels' FUSED_KERNEL_NAMES and KernelSet.attention). They read
 * q, k, v from c_attn's output as it is, (B·T, 3C), keep no (B, nh, T, T) tensor (each
 * query's log-sum-exp instead) and compute only the causal half.
 */
export const FUSED_ATTENTION = 'MinigptAttention';
export const FUSED_ATTENTION_GRAD = 'MinigptAttentionGrad';

/** Whether the active backend runs fusedCausalAttention's kernels. */
export function hasFusedAttention(): boolean {
  return tf.getKernel(FUSED_ATTENTION, tf.getBackend()) !== undefined;
}

/**
 * causalAttention on c_attn's output, through the fused kernels (hasFusedAttention):
 * qkv (B·T, 3C) — q, k, v side by side, head h at columns [h·hs, (h+1)·hs) of each —
 * → (B·T, C), the heads side by side as c_proj takes them. With dropout, the same weights
 * drop as in causalAttention for the same seed (the kernels draw dropoutStream themselves).
 */
export function fusedCausalAttention(
  qkv: tf.Tensor2D,
  batch: number,
  heads: number,
  dropout?: AttentionDropout,
): tf.Tensor2D {
  const attrs = {
    batch,
    heads,
    ...(dropout
      ? { ...dropoutStream(dropout.rate, dropout.seed), keepScale: 1 / (1 - dropout.rate) }
      : { threshold: -1, start: 0, step: 0, keepScale: 1 }),
  };
  const op = tf.customGrad((qkvIn, save) => {
    const [y, lse] = tf
      .engine()
      .runKernel(FUSED_ATTENTION, { qkv: qkvIn as tf.Tensor }, attrs) as tf.Tensor[];
    (save as tf.GradSaveFunc)([qkvIn as tf.Tensor, y!, lse!]);
    const gradFunc: Grads = (dy, [saved, ys, lses]) => [
      tf
        .engine()
        .runKernel(
          FUSED_ATTENTION_GRAD,
          { dy, qkv: saved!, y: ys!, lse: lses! },
          attrs,
        ) as tf.Tensor, // dqkv (B·T, 3C)
    ];
    return { value: y as tf.Tensor2D, gradFunc };
  });
  return op(qkv) as tf.Tensor2D;
}

/**
 * float32 one-hot rows. tfjs 4.22's wasm OneHot kernel ignores a float32 dtype and writes
 * int32 bits under a float32 label, so build it as int32 and cast.
 */
function oneHotFloat(ids: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.cast(tf.oneHot(ids, depth), 'float32') as tf.Tensor2D;
}

const maskCache = new Map<number, Float32Array>();

/** (T, T) additive mask: a query at t sees keys ≤ t. Large negative, not −∞, so rows never NaN. */
export function causalMask(time: number): tf.Tensor2D {
  let values = maskCache.get(time);
  if (!values) {
    values = new Float32Array(time * time);
    for (let row = 0; row < time; row++) values.fill(-1e9, row * time + row + 1, (row + 1) * time);
    maskCache.set(time, values);
  }
  return tf.tensor2d(values, [time, time]);
}

/**
 * Mean cross-entropy of logits (N, V) against integer targets (N). Backward is the fused
 * (softmax − one_hot)/N, one op instead of autodiff through log-softmax.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const [rows, vocabSize] = logits.shape;
  const op = tf.customGrad((logitsIn, save) => {
    const lt = logitsIn as tf.Tensor2D;
    const oneHot = oneHotFloat(targets, vocabSize); // (N, V)
    const logProbs = tf.sub(lt, tf.logSumExp(lt, -1, true)); // (N, V)
    const loss = tf.neg(tf.div(tf.sum(tf.mul(oneHot, logProbs)), rows)) as tf.Scalar;
    (save as tf.GradSaveFunc)([logProbs, oneHot]);
    const gradFunc: Grads = (dy, [lp, oh]) => [tf.mul(tf.sub(tf.exp(lp!), oh!), tf.div(dy, rows))];
    return { value: loss, gradFunc };
  });
  return op(logits) as tf.Scalar;
}
