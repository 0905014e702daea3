import { installNativeKernels, uninstallNativeKernels } from '@minigpt/native-kernels';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamW, decaysWeight, FUSED_ADAMW } from './index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(async () => {
  uninstallNativeKernels();
  await tf.setBackend('cpu');
});

/** The update as tfjs ops (cpu), and fused in @minigpt/native-kernels (wasm). */
const paths = [
  { name: 'tfjs ops', setUp: () => tf.setBackend('cpu') },
  {
    name: 'fused native kernels',
    setUp: async () => {
      await tf.setBackend('wasm');
      const result = installNativeKernels();
      expect(result.installed, result.reason).toBe(true);
      expect(tf.getKernel(FUSED_ADAMW, 'wasm')).toBeDefined();
    },
  },
];

/** Plain-number AdamW (PyTorch's algorithm) for one weight vector. */
function referenceSteps(w0: number[], grads: number[][], lr: number, wd: number, clip: number) {
  const [b1, b2, eps] = [0.9, 0.99, 1e-8];
  let w = [...w0];
  let m = w.map(() => 0);
  let v = w.map(() => 0);
  grads.forEach((g0, index) => {
    const t = index + 1;
    const norm = Math.sqrt(g0.reduce((s, g) => s + g * g, 0));
    const scale = clip > 0 ? Math.min(1, clip / (norm + 1e-6)) : 1;
    const g = g0.map((x) => x * scale);
    m = m.map((mi, i) => b1 * mi + (1 - b1) * g[i]!);
    v = v.map((vi, i) => b2 * vi + (1 - b2) * g[i]! ** 2);
    w = w.map(
      (wi, i) =>
        wi * (1 - lr * wd) -
        (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps),
    );
  });
  return w;
}

describe.each(paths)('AdamW with $name', ({ setUp }) => {
  beforeAll(setUp);

  it('matches PyTorch-style AdamW with decoupled decay and global-norm clipping', () => {
    const w0 = [0.5, -1, 2];
    const grads = [
      [3, 4, 0],
      [0.1, -0.2, 0.3],
      [1, 1, 1],
    ];
    for (const [wd, clip] of [
      [0.1, 1],
      [0, 0],
    ] as const) {
      const weight = tf.variable(tf.tensor1d(w0));
      const optimizer = new AdamW(new Map([['h.0.mlp.c_fc.weight', weight]]), {
        beta1: 0.9,
        beta2: 0.99,
        weightDecay: wd,
        decay: () => true,
      });
      for (const g of grads)
        tf.dispose(optimizer.apply(new Map([['h.0.mlp.c_fc.weight', tf.tensor1d(g)]]), 0.01, clip));
      const expected = referenceSteps(w0, grads, 0.01, wd, clip);
      Array.from(weight.dataSync()).forEach((value, i) =>
        expect(value).toBeCloseTo(expected[i]!, 5),
      );
      optimizer.dispose();
      weight.dispose();
    }
  });

  it('returns the pre-clipping global norm', () => {
    const weights = new Map([
      ['a.weight', tf.variable(tf.zeros([2]))],
      ['b.weight', tf.variable(tf.zeros([1]))],
    ]);
    const optimizer = new AdamW(weights, {
      beta1: 0.9,
      beta2: 0.99,
      weightDecay: 0,
      decay: () => false,
    });
    const norm = optimizer.apply(
      new Map([
        ['a.weight', tf.tensor1d([3, 0])],
        ['b.weight', tf.tensor1d([4])],
      ]),
      0.1,
      1,
    );
    expect(norm.dataSync()[0]).toBeCloseTo(5);
  });
});

describe('AdamW', () => {
  beforeAll(() => tf.setBackend('cpu'));

  it('continues identically from a saved state', async () => {
    const make = () => new Map([['w.weight', tf.variable(tf.tensor1d([1, 2, 3]))]]);
    const options = { beta1: 0.9, beta2: 0.99, weightDecay: 0.1, decay: () => true };
    const grad = () => new Map([['w.weight', tf.tensor1d([0.3, -0.1, 0.2])]]);
    const a = make();
    const optA = new AdamW(a, options);
    for (let i = 0; i < 3; i++) optA.apply(grad(), 0.01, 1);
    const b = new Map([['w.weight', tf.variable(a.get('w.weight')!.clone())]]);
    const optB = new AdamW(b, options);
    optB.setState(await optA.getState());
    optA.apply(grad(), 0.01, 1);
    optB.apply(grad(), 0.01, 1);
    expect(Array.from(b.get('w.weight')!.dataSync())).toEqual(
      Array.from(a.get('w.weight')!.dataSync()),
    );
  });

  it('decays linear weights only: not biases, LayerNorms or embeddings', () => {
    expect(decaysWeight('h.0.attn.c_attn.weight')).toBe(true);
    expect(decaysWeight('h.0.mlp.c_proj.weight')).toBe(true);
    for (const name of [
      'h.0.attn.c_attn.bias',
      'h.1.ln_1.weight',
      'ln_f.weight',
      'wte.weight',
      'wpe.weight',
    ]) {
      expect(decaysWeight(name)).toBe(false);
    }
  });
});
