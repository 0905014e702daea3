import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Random } from '@minigpt/random';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GPT,
  GPT_PRESETS,
  ConfigError,
  countParameters,
  resolveGPTConfig,
  decodeSafetensors,
  encodeSafetensors,
} from './index.js';

const nano = resolveGPTConfig({ vocabSize: 11 }, 'nano');

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function batch(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32');
}

describe('GPT config', () => {
  it('counts parameters as nanoGPT reports them', () => {
    expect(countParameters(resolveGPTConfig({ vocabSize: 65 }, 'baby'))).toBe(795_904); // "0.80M"
    const seed = resolveGPTConfig({ vocabSize: 65 }, 'seed');
    expect(countParameters(seed)).toBe(4_738_560);
    expect(countParameters(seed, true)).toBe(4_771_328); // "4.77 M" with position embeddings
  });

  it('rejects unknown keys, wrong types and impossible shapes, listing what is valid', () => {
    expect(() => resolveGPTConfig({ vocabSize: 65, nLayers: 3 })).toThrow(
      /unknown model config key "nLayers"; valid keys: blockSize, vocabSize, nLayer/,
    );
    expect(() => resolveGPTConfig({ vocabSize: 65, dropout: '0.1' })).toThrow(
      /"dropout" must be a number, got "0.1"/,
    );
    expect(() => resolveGPTConfig({ vocabSize: 65, nEmbd: 100, nHead: 3 })).toThrow(
      /divisible by nHead/,
    );
    expect(() => resolveGPTConfig({ vocabSize: 65 }, 'huge' as never)).toThrow(ConfigError);
    expect(GPT_PRESETS.seed).toMatchObject({
      nLayer: 6,
      nHead: 8,
      nEmbd: 256,
      blockSize: 128,
      dropout: 0.1,
    });
  });
});

describe('GPT', () => {
  it('has GPT-2 weight names and nanoGPT init statistics', () => {
    const model = GPT.create(resolveGPTConfig({ vocabSize: 50 }, 'baby'), { log: null });
    expect([...model.weights.keys()].slice(0, 4)).toEqual([
      'wte.weight',
      'wpe.weight',
      'h.0.ln_1.weight',
      'h.0.attn.c_attn.weight',
    ]);
    expect(model.weights.get('h.3.mlp.c_proj.weight')!.shape).toEqual([512, 128]);
    const std = (name: string) =>
      tf.tidy(() => tf.moments(model.weights.get(name)!).variance.sqrt().dataSync()[0]!);
    expect(std('h.0.mlp.c_fc.weight')).toBeCloseTo(0.02, 3);
    expect(std('h.0.mlp.c_proj.weight')).toBeCloseTo(0.02 / Math.sqrt(8), 3);
    expect(
      model.weights
        .get('h.0.ln_1.weight')!
        .dataSync()
        .every((v) => v === 1),
    ).toBe(true);
    model.dispose();
  });

  it('holds exactly one tensor per weight, and frees them all on dispose', () => {
    const before = tf.memory().numTensors;
    const model = GPT.create(nano, { log: null });
    expect(tf.memory().numTensors - before).toBe(model.weights.size);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('prints its parameter count on construction', () => {
    const lines: string[] = [];
    GPT.create(nano, { log: (line) => lines.push(line) }).dispose();
    expect(lines).toEqual([`number of parameters: ${(countParameters(nano) / 1e6).toFixed(2)}M`]);
  });

  it('maps (B, T) ids to (B, T, V) logits; loss at init is about ln V', () => {
    const model = GPT.create(nano, { log: null });
    const idx = batch([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(model.forward(idx).shape).toEqual([2, 4, 11]);
    const loss = model
      .loss(
        idx,
        batch([
          [2, 3, 4, 5],
          [6, 7, 8, 9],
        ]),
      )
      .dataSync()[0]!;
    expect(Math.abs(loss - Math.log(11))).toBeLessThan(0.1);
    expect(() => model.forward(batch([Array.from({ length: 17 }, () => 1)]))).toThrow(
      /exceeds blockSize 16/,
    );
    model.dispose();
  });

  it('is causal end to end: later tokens do not change earlier logits', () => {
    const model = GPT.create(nano, { log: null });
    const a = model.forward(batch([[1, 2, 3, 4, 5]])).arraySync()[0]!;
    const b = model.forward(batch([[1, 2, 3, 9, 9]])).arraySync()[0]!;
    for (let t = 0; t < 3; t++)
      b[t]!.forEach((value, i) => expect(value).toBeCloseTo(a[t]![i]!, 5));
    model.dispose();
  });

  it('gives the same loss on the wasm and cpu backends', async () => {
    const model = GPT.create(resolveGPTConfig({ vocabSize: 30 }, 'nano'), { log: null });
    const idx = batch([[1, 2, 3, 4, 5, 6, 7, 8]]);
    const targets = batch([[2, 3, 4, 5, 6, 7, 8, 9]]);
    const weights = await model.weightData();
    const onCpu = model.loss(idx, targets).dataSync()[0]!;
    await tf.setBackend('wasm');
    const wasmModel = GPT.fromWeights(model.config, weights);
    const onWasm = wasmModel
      .loss(
        tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8]], [1, 8], 'int32'),
        tf.tensor2d([[2, 3, 4, 5, 6, 7, 8, 9]], [1, 8], 'int32'),
      )
      .dataSync()[0]!;
    wasmModel.dispose();
    await tf.setBackend('cpu');
    expect(Math.abs(onCpu - onWasm)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('learns: a few steps of gradient descent lower the loss, with no tensor leaks', () => {
    const model = GPT.create(nano, { log: null, random: new Random(3) });
    const idx = batch([[1, 2, 3, 4, 5, 6, 7, 8]]);
    const targets = batch([[2, 3, 4, 5, 6, 7, 8, 9]]);
    const optimizer = tf.train.adam(1e-2);
    const first = model.loss(idx, targets).dataSync()[0]!;
    let counts: number[] = [];
    for (let step = 0; step < 30; step++) {
      tf.dispose(
        optimizer.minimize(() => model.loss(idx, targets), false, model.trainableVariables) ??
          undefined,
      );
      counts.push(tf.memory().numTensors);
    }
    expect(model.loss(idx, targets).dataSync()[0]!).toBeLessThan(first / 2);
    counts = counts.slice(2);
    expect(new Set(counts).size).toBe(1);
    model.dispose();
  });

  it('trains with dropout reproducibly from the same generator state', () => {
    const config = resolveGPTConfig({ vocabSize: 11, dropout: 0.3 }, 'nano');
    const model = GPT.create(config, { log: null });
    const idx = batch([[1, 2, 3, 4]]);
    const a = model.loss(idx, idx, { training: true, random: new Random(5) }).dataSync()[0];
    const b = model.loss(idx, idx, { training: true, random: new Random(5) }).dataSync()[0];
    const c = model.loss(idx, idx, { training: true, random: new Random(6) }).dataSync()[0];
    const evalLoss = model.loss(idx, idx).dataSync()[0];
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(evalLoss).toBe(
      model.loss(idx, idx, { training: false, random: new Random(9) }).dataSync()[0],
    );
    expect(() => model.loss(idx, idx, { training: true })).toThrow(/needs options.random/);
    model.dispose();
  });

  it('generates reproducibly, crops the context to blockSize, and checks its input', () => {
    const model = GPT.create(nano, { log: null });
    const prompt = [1, 2, 3];
    const a = model.generate(prompt, 30, { seed: 7, temperature: 1 });
    expect(a).toHaveLength(30); // 33 tokens in all: past blockSize 16, so cropping happened
    expect(model.generate(prompt, 30, { seed: 7 })).toEqual(a);
    expect(model.generate(prompt, 30, { seed: 8 })).not.toEqual(a);
    // Greedy: each new id is the argmax of the last row of forward's logits over the context
    // so far (generate runs the LM head on that row alone), past blockSize too.
    const greedy = model.generate(prompt, 20, { temperature: 0 });
    const context = [...prompt];
    for (const id of greedy) {
      const window = context.slice(-nano.blockSize);
      const logits = model.forward(batch([window])).arraySync()[0]![window.length - 1]!;
      expect(id).toBe(logits.indexOf(Math.max(...logits)));
      context.push(id);
    }
    expect(() => model.generate(prompt, 0)).toThrow(/positive integer/);
    expect(() => model.generate([99], 1)).toThrow(/outside the vocabulary/);
    model.dispose();
  });

  it('saves weights as safetensors and loads them back exactly', async () => {
    const model = GPT.create(nano, { log: null });
    const weights = await model.weightData();
    const bytes = encodeSafetensors(
      [...weights].map(([name, w]) => [name, { dtype: 'F32', ...w }]),
      { format: 'pt' },
    );
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    // The reference reader's rules: data offsets tile the data section, in header order.
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    let expectedStart = 0;
    for (const [name, entry] of Object.entries(header) as Array<
      [string, { data_offsets: number[]; dtype: string }]
    >) {
      if (name === '__metadata__') continue;
      expect(entry.dtype).toBe('F32');
      expect(entry.data_offsets[0]).toBe(expectedStart);
      expectedStart = entry.data_offsets[1]!;
    }
    expect(8 + headerLength + expectedStart).toBe(bytes.length);
    const decoded = decodeSafetensors(bytes, 'model.safetensors');
    expect(decoded.metadata).toEqual({ format: 'pt' });
    const restored = GPT.fromWeights(
      nano,
      new Map(
        [...decoded.tensors].map(([name, t]) => [
          name,
          { shape: t.shape, data: t.data as Float32Array },
        ]),
      ),
    );
    const idx = batch([[1, 2, 3]]);
    expect(restored.forward(idx).arraySync()).toEqual(model.forward(idx).arraySync());
    expect(() =>
      decodeSafetensors(bytes.subarray(0, bytes.length - 4), 'model.safetensors'),
    ).toThrow(/model\.safetensors: tensor .*\(truncated\?\)/);
    const wrongConfig = resolveGPTConfig({ vocabSize: 12 }, 'nano');
    expect(() =>
      GPT.fromWeights(
        wrongConfig,
        new Map(
          [...decoded.tensors].map(([n, t]) => [
            n,
            { shape: t.shape, data: t.data as Float32Array },
          ]),
        ),
        'ckpt',
      ),
    ).toThrow(/ckpt: weight "wte.weight" has shape \[11, 32\], the config needs \[12, 32\]/);
    model.dispose();
    restored.dispose();
  });
});

/**
 * Logits (T, V) of one sequence through GPT-2's math written plainly in tfjs ops, none of
 * ops.ts (its gradients are tfjs autodiff's), with the MLP's GELU given: the reference for
 * `activation`.
 */
function referenceLogits(
  model: GPT,
  ids: readonly number[],
  geluOf: (u: tf.Tensor) => tf.Tensor,
): tf.Tensor2D {
  const { nLayer, nHead, nEmbd } = model.config;
  const time = ids.length;
  const headSize = nEmbd / nHead;
  const w = (name: string) => model.weights.get(name)! as tf.Tensor as tf.Tensor2D;
  const withBias = (y: tf.Tensor, prefix: string) =>
    model.weights.has(`${prefix}.bias`) ? tf.add(y, w(`${prefix}.bias`)) : y;
  const norm = (x: tf.Tensor, prefix: string) => {
    const { mean, variance } = tf.moments(x, -1, true);
    const scaled = tf.mul(
      tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))),
      w(`${prefix}.weight`),
    );
    return withBias(scaled, prefix);
  };
  const dense = (x: tf.Tensor, prefix: string) =>
    withBias(tf.matMul(x as tf.Tensor2D, w(`${prefix}.weight`)), prefix);
  // (T, T): 0 where query t sees key s ≤ t, −1e9 above the diagonal.
  const blocked = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([time, time]), -1, 0)), -1e9);
  let x: tf.Tensor = tf.add(
    tf.gather(w('wte.weight'), tf.tensor1d(ids as number[], 'int32')),
    tf.slice(w('wpe.weight'), [0, 0], [time, nEmbd]),
  ); // (T, C)
  for (let layer = 0; layer < nLayer; layer++) {
    const p = `h.${layer}`;
    const qkv = dense(norm(x, `${p}.ln_1`), `${p}.attn.c_attn`); // (T, 3C)
    const head = (part: number) =>
      tf.transpose(
        tf.reshape(tf.slice(qkv, [0, part * nEmbd], [time, nEmbd]), [time, nHead, headSize]),
        [1, 0, 2],
      ); // (nh, T, hs)
    const scores = tf.add(
      tf.div(tf.matMul(head(0), head(1), false, true), Math.sqrt(headSize)),
      blocked,
    ); // (nh, T, T)
    const attended = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), head(2)), [1, 0, 2]), [
      time,
      nEmbd,
    ]); // (T, C)
    x = tf.add(x, dense(attended, `${p}.attn.c_proj`));
    x = tf.add(x, dense(geluOf(dense(norm(x, `${p}.ln_2`), `${p}.mlp.c_fc`)), `${p}.mlp.c_proj`));
  }
  return tf.matMul(norm(x, 'ln_f') as tf.Tensor2D, w('wte.weight'), false, true); // (T, V)
}

const exactGelu = (u: tf.Tensor) =>
  tf.mul(tf.mul(u, 0.5), tf.add(1, tf.erf(tf.div(u, Math.SQRT2))));
const tanhGelu = (u: tf.Tensor) =>
  tf.mul(
    tf.mul(u, 0.5),
    tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(u, tf.mul(0.044715, tf.pow(u, 3)))))),
  );

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

describe('GPT with the tanh GELU (activation "gelu_tanh")', () => {
  /** The same weights under three configs: no activation key, "gelu", "gelu_tanh". */
  async function models() {
    const source = GPT.create(nano, { log: null, random: new Random(11) });
    const weights = await source.weightData();
    source.dispose();
    // MLP inputs u around −3 (c_fc bias −3, weights × 10: spread ≈ 1.1), where the tanh GELU
    // is far off the exact one relative to its value (−10 % at −3, −45 % at −4), and c_proj
    // × 50 so that the MLP's output counts in the residual stream. At init (u ≈ ±0.11) the
    // GELUs differ by ≤ 5e-6 and the two models' logits hardly at all.
    for (const [name, weight] of weights) {
      const scale = (factor: number) => weight.data.forEach((v, i, data) => (data[i] = v * factor));
      if (name.endsWith('mlp.c_fc.weight')) scale(10);
      if (name.endsWith('mlp.c_fc.bias')) weight.data.fill(-3);
      if (name.endsWith('mlp.c_proj.weight')) scale(50);
    }
    const [none, exact, tanh] = [undefined, 'gelu', 'gelu_tanh'].map((activation) =>
      GPT.fromWeights(
        resolveGPTConfig({ vocabSize: 11, ...(activation ? { activation } : {}) }, 'nano'),
        weights,
      ),
    );
    return { none: none!, exact: exact!, tanh: tanh! };
  }
  const ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8];
  const targets = [1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9];

  it('forward gives the reference logits of its own GELU, and not those of the exact one', async () => {
    const { none, exact, tanh } = await models();
    tf.tidy(() => {
      const logits = (model: GPT) => tf.reshape(model.forward(batch([ids])), [ids.length, 11]);
      const reference = {
        exact: referenceLogits(none, ids, exactGelu),
        tanh: referenceLogits(none, ids, tanhGelu),
      };
      // Measured: 1.8e-7 against the reference of the same GELU (logits up to 0.29).
      expect(maxAbsDiff(logits(tanh), reference.tanh)).toBeLessThan(1e-6);
      expect(maxAbsDiff(logits(exact), reference.exact)).toBeLessThan(1e-6);
      // The two GELUs' models are far further apart (measured: 4.6e-3).
      expect(maxAbsDiff(reference.tanh, reference.exact)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(logits(tanh), reference.exact)).toBeGreaterThan(1e-3);
      // No key and "gelu" are the same model, to the bit.
      expect(logits(exact).arraySync()).toEqual(logits(none).arraySync());
    });
    expect('activation' in none.config).toBe(false);
    expect(tanh.config.activation).toBe('gelu_tanh');
    for (const model of [none, exact, tanh]) model.dispose();
  });

  it('loss and its gradients go through the tanh GELU (against tfjs autodiff of the reference)', async () => {
    const { none, tanh } = await models();
    const targetIds = tf.tensor1d(targets, 'int32');
    const gradients = (model: GPT, loss: () => tf.Scalar) => {
      const { value, grads } = tf.variableGrads(loss, [...model.weights.values()]);
      const byName = new Map([...model.weights].map(([name, v]) => [name, grads[v.name]!]));
      return {
        value: value.dataSync()[0]!,
        byName,
        dispose: () => tf.dispose([value, ...byName.values()]),
      };
    };
    const expected = gradients(tanh, () =>
      tf.losses.softmaxCrossEntropy(tf.oneHot(targetIds, 11), referenceLogits(tanh, ids, tanhGelu)),
    );
    const actual = gradients(tanh, () => tanh.loss(batch([ids]), batch([targets])));
    const exact = gradients(none, () => none.loss(batch([ids]), batch([targets])));
    expect(Math.abs(actual.value - expected.value)).toBeLessThan(5e-7); // measured: 0
    let exactApart = 0;
    for (const [name, grad] of expected.byName) {
      const scale = tf.tidy(() => tf.max(tf.abs(grad)).dataSync()[0]!);
      // Measured: ≤ 1.5e-6 of the gradient's largest entry, for every weight.
      expect(maxAbsDiff(actual.byName.get(name)!, grad), name).toBeLessThan(1e-5 * scale);
      exactApart = Math.max(exactApart, maxAbsDiff(exact.byName.get(name)!, grad));
    }
    // The exact GELU's gradients are far from these (measured: up to 9.7e-3).
    expect(exactApart).toBeGreaterThan(1e-3);
    for (const result of [expected, actual, exact]) result.dispose();
    targetIds.dispose();
    for (const model of [none, tanh]) model.dispose();
  });

  it('generate decodes from the tanh GELU logits', async () => {
    const { none, tanh } = await models();
    // A prompt whose greedy continuation differs between the two GELUs (from the first token).
    const prompt = [9, 5, 0];
    const greedy = (geluOf: (u: tf.Tensor) => tf.Tensor) => {
      const out: number[] = [];
      for (let step = 0; step < 6; step++) {
        const row = tf.tidy(() =>
          referenceLogits(none, [...prompt, ...out], geluOf)
            .arraySync()
            .at(-1)!,
        );
        const sorted = [...row].sort((a, b) => b - a);
        // Far from a tie (measured: ≥ 8e-4), so float32 rounding cannot flip the choice.
        expect(sorted[0]! - sorted[1]!).toBeGreaterThan(1e-5);
        out.push(row.indexOf(sorted[0]!));
      }
      return out;
    };
    const expected = greedy(tanhGelu);
    expect(expected).not.toEqual(greedy(exactGelu));
    expect(tanh.generate(prompt, 6, { temperature: 0 })).toEqual(expected);
    for (const model of [none, tanh]) model.dispose();
  });
});
