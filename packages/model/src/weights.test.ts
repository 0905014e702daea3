// GPT.fromSafetensors / fromWeights against weights that do not fit the config: missing,
// unknown, int32, non-finite, misshapen. Each is a ModelError naming the file, the weight and
// the rule, thrown before any tensor is allocated. Runs on tfjs's cpu backend.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelError, resolveGPTConfig } from './config.js';
import { GPT } from './gpt.js';
import { encodeSafetensors, type SafeTensor } from './safetensors.js';
import { checkWeights, weightShapes, type WeightData, type WeightRule } from './weights.js';

const nano = resolveGPTConfig({ vocabSize: 11 }, 'nano');
const SOURCE = 'ckpt/model.safetensors';
let good: Map<string, WeightData>;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = GPT.create(nano, { log: null });
  good = await model.weightData();
  model.dispose();
});

/** The good weights as safetensors tensors, after `edit`. */
function tensors(edit: (tensors: Map<string, SafeTensor>) => void = () => {}): Uint8Array {
  const map = new Map<string, SafeTensor>(
    [...good].map(([name, w]) => [name, { dtype: 'F32', shape: w.shape, data: w.data.slice() }]),
  );
  edit(map);
  return encodeSafetensors(map);
}

/** fromSafetensors refuses `bytes` with `rule`, allocating no tensor; returns the message. */
function refused(bytes: Uint8Array, rule: WeightRule): string {
  const before = tf.memory().numTensors;
  let error: unknown;
  try {
    GPT.fromSafetensors(nano, bytes, SOURCE).dispose();
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ModelError);
  expect((error as ModelError).rule).toBe(rule);
  expect((error as ModelError).file).toBe(SOURCE);
  const message = (error as ModelError).message;
  expect(message.startsWith(`${SOURCE}: `)).toBe(true);
  expect(message).toContain(`[${rule}]`);
  expect(tf.memory().numTensors).toBe(before);
  return message;
}

describe('GPT.fromSafetensors checks the weights against the config first', () => {
  it('loads the good weights exactly', async () => {
    const model = GPT.fromSafetensors(nano, tensors(), SOURCE);
    const loaded = await model.weightData();
    expect([...loaded.keys()]).toEqual([...weightShapes(nano).keys()]);
    for (const [name, weight] of good) expect(loaded.get(name)!.data).toEqual(weight.data);
    model.dispose();
  });

  it('missing weights, named', () => {
    const message = refused(
      tensors((map) => map.delete('h.1.ln_2.bias')),
      'missing-weight',
    );
    expect(message).toMatch(
      /missing weights "h\.1\.ln_2\.bias": a GPT with this config \(nLayer 2/,
    );
  });

  it('unknown weights, named (several listed, then counted)', () => {
    const message = refused(
      tensors((map) => {
        for (let i = 0; i < 7; i++) {
          map.set(`h.${i + 2}.ln_1.weight`, {
            dtype: 'F32',
            shape: [32],
            data: new Float32Array(32),
          });
        }
      }),
      'unknown-weight',
    );
    expect(message).toMatch(/unknown weights "h\.2\.ln_1\.weight", .*, … \(7 in all\)/);
  });

  it('an I32 tensor where a weight belongs (it used to be read as floats)', () => {
    const message = refused(
      tensors((map) =>
        map.set('ln_f.weight', { dtype: 'I32', shape: [32], data: new Int32Array(32) }),
      ),
      'weight-dtype',
    );
    expect(message).toMatch(/weight "ln_f\.weight" is I32; model weights must be F32/);
  });

  it('NaN or Infinity in a weight, with the first bad index', () => {
    const nan = refused(
      tensors((map) => {
        const data = map.get('h.0.attn.c_proj.weight')!.data;
        data[17] = NaN;
        data[20] = NaN;
      }),
      'weight-finite',
    );
    expect(nan).toMatch(
      /weight "h\.0\.attn\.c_proj\.weight" holds NaN at index 17 \(of 1024\); weights must be finite/,
    );
    const infinite = refused(
      tensors((map) => {
        map.get('wte.weight')!.data[351] = -Infinity;
      }),
      'weight-finite',
    );
    expect(infinite).toMatch(/weight "wte\.weight" holds -Infinity at index 351 \(of 352\)/);
  });

  it('a weight of the wrong shape, with both shapes', () => {
    const message = refused(
      tensors((map) => {
        const wpe = map.get('wpe.weight')!;
        map.set('wpe.weight', { ...wpe, shape: [32, 16] });
      }),
      'weight-shape',
    );
    expect(message).toMatch(
      /weight "wpe\.weight" has shape \[32, 16\], the config needs \[16, 32\]/,
    );
  });
});

describe('GPT.fromWeights and checkWeights', () => {
  it('refuse an Int32Array or a short array where a Float32Array belongs', () => {
    const edited = (name: string, data: ArrayLike<number>) =>
      new Map([...good].map(([n, w]) => [n, n === name ? { shape: w.shape, data } : w]));
    expect(() => GPT.fromWeights(nano, edited('ln_f.bias', new Int32Array(32)), 'w')).toThrow(
      /^w: weight "ln_f\.bias" is Int32Array; model weights must be F32/,
    );
    expect(() => checkWeights(nano, edited('ln_f.bias', new Float32Array(31)), 'w')).toThrow(
      /^w: weight "ln_f\.bias" holds 31 values, its shape \[32\] needs 32 \[weight-shape\]/,
    );
  });

  it('returns the weights in weightShapes order, as given', () => {
    const reversed = new Map([...good].reverse());
    const checked = checkWeights(nano, reversed, 'w');
    expect([...checked.keys()]).toEqual([...weightShapes(nano).keys()]);
    expect(checked.get('wte.weight')!.data).toBe(good.get('wte.weight')!.data);
  });

  it('scans every value of the seed model for NaN cheaply', () => {
    const seed = resolveGPTConfig({ vocabSize: 65 }, 'seed');
    const weights = new Map(
      [...weightShapes(seed)].map(([name, shape]) => [
        name,
        { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) },
      ]),
    );
    checkWeights(seed, weights, 'seed'); // warm up
    const start = performance.now();
    checkWeights(seed, weights, 'seed');
    const elapsed = performance.now() - start;
    // ~4.8 M floats: a few ms on a laptop; the bound only catches a pathological slowdown.
    expect(elapsed).toBeLessThan(200);
  });
});
