// GPT-2 directories in the Hugging Face layout. The fixture (test-fixtures/gpt2-tiny, made by
// scripts/gpt2_reference.py make-fixture) is a random GPT-2 stored as old checkpoints store it;
// its expected.json holds the logits of an independent PyTorch forward pass, which our tfjs
// forward must reproduce within 1e-4. Then the writer's round trip, F16/BF16 widening checked
// against the IEEE formulas, and every refusal naming its file and key or tensor.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GPT } from './gpt.js';
import { ModelError, type GPTConfig } from './config.js';
import {
  GPT2_DIRECTORY_LAYOUT,
  gpt2DirectoryFiles,
  readGpt2Directory,
  type Gpt2FileReader,
} from './huggingface.js';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from './safetensors.js';
import type { WeightData } from './weights.js';

const FIXTURE = new URL('../test-fixtures/gpt2-tiny/', import.meta.url);
const DIR = 'models/gpt2-tiny';

interface Expected {
  readonly inputs: readonly { readonly ids: number[]; readonly logits: number[][] }[];
}

const fixtureFiles = (): Map<string, Uint8Array> =>
  new Map(
    ['config.json', 'model.safetensors'].map((name) => [
      name,
      new Uint8Array(readFileSync(new URL(name, FIXTURE))),
    ]),
  );
const expected = JSON.parse(readFileSync(new URL('expected.json', FIXTURE), 'utf8')) as Expected;

/** A reader over in-memory files that records what it was asked for. */
function reader(files: ReadonlyMap<string, Uint8Array>, asked: string[] = []): Gpt2FileReader {
  return (name) => {
    asked.push(name);
    return Promise.resolve(files.get(name));
  };
}

const fixtureConfig = (): Record<string, unknown> =>
  JSON.parse(new TextDecoder().decode(fixtureFiles().get('config.json'))) as Record<
    string,
    unknown
  >;

/** The fixture with config.json edited. */
function withConfig(edit: (config: Record<string, unknown>) => void): Map<string, Uint8Array> {
  const config = fixtureConfig();
  edit(config);
  const files = fixtureFiles();
  files.set('config.json', new TextEncoder().encode(JSON.stringify(config)));
  return files;
}

/** The fixture with model.safetensors' tensors edited (the bool mask buffer is left out). */
function withTensors(edit: (tensors: Map<string, SafeTensor>) => void): Map<string, Uint8Array> {
  const files = fixtureFiles();
  const { tensors } = decodeSafetensors(files.get('model.safetensors')!, 'fixture', {
    skip: (name) => name === 'transformer.h.1.attn.bias',
  });
  edit(tensors);
  files.set('model.safetensors', encodeSafetensors(tensors, { format: 'pt' }));
  return files;
}

/** The ModelError that reading `files` throws. */
async function refusal(
  files: ReadonlyMap<string, Uint8Array>,
  options: { blockSize?: number } = {},
): Promise<ModelError> {
  try {
    await readGpt2Directory(reader(files), { directory: DIR, ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(ModelError);
    return error as ModelError;
  }
  throw new Error('expected readGpt2Directory to refuse the directory');
}

/** Logits (T, V) per sequence from our tfjs forward. */
function logitsOf(config: GPTConfig, weights: ReadonlyMap<string, WeightData>, ids: number[][]) {
  const model = GPT.fromWeights(config, weights);
  try {
    return ids.map((row) =>
      tf.tidy(() => {
        const logits = model.forward(tf.tensor2d([row], [1, row.length], 'int32'));
        return (logits.arraySync() as number[][][])[0]!;
      }),
    );
  } finally {
    model.dispose();
  }
}

function maxDifference(a: number[][], b: number[][]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  a.forEach((row, t) => {
    expect(row.length).toBe(b[t]!.length);
    row.forEach((value, v) => (worst = Math.max(worst, Math.abs(value - b[t]![v]!))));
  });
  return worst;
}

/** The first index where two float arrays differ in their bits (NaN and −0 count), or −1. */
function firstDifferentBits(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const aBits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const bBits = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < aBits.length; i++) if (aBits[i] !== bBits[i]) return i;
  return -1;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('readGpt2Directory on a PyTorch-made GPT-2', () => {
  it('reads the config, the prefixed weights, and skips the mask buffers and the tied head', async () => {
    const asked: string[] = [];
    const read = await readGpt2Directory(reader(fixtureFiles(), asked), { directory: DIR });
    expect(asked).toEqual(['config.json', 'model.safetensors']);
    expect(read.config).toEqual({
      blockSize: 24,
      vocabSize: 50,
      nLayer: 2,
      nHead: 4,
      nEmbd: 32,
      dropout: 0,
      bias: true,
      activation: 'gelu_tanh',
    });
    expect(read.files).toEqual({
      config: `${DIR}/config.json`,
      weights: `${DIR}/model.safetensors`,
    });
    expect([read.nPositions, read.storedDtypes, read.bosTokenId, read.eosTokenId]).toEqual([
      24,
      ['F32'],
      49,
      49,
    ]);
    // Every weight is the file's tensor under its unprefixed name, bit for bit.
    const { tensors } = decodeSafetensors(fixtureFiles().get('model.safetensors')!, 'fixture', {
      skip: (name) => name === 'transformer.h.1.attn.bias',
    });
    expect(read.weights.size).toBe(2 + 2 * 12 + 2);
    for (const [name, weight] of read.weights) {
      const stored = tensors.get(`transformer.${name}`)!;
      expect(weight.shape).toEqual(stored.shape);
      expect(firstDifferentBits(weight.data, stored.data as Float32Array)).toBe(-1);
    }
  });

  it("gives PyTorch's logits within 1e-4, and only with GPT-2's tanh GELU", async () => {
    const { config, weights } = await readGpt2Directory(reader(fixtureFiles()));
    const ids = expected.inputs.map((input) => input.ids);
    const ours = logitsOf(config, weights, ids);
    ours.forEach((logits, i) => {
      expect(maxDifference(logits, expected.inputs[i]!.logits)).toBeLessThan(1e-4);
    });
    // The exact GELU is a different function: the check above can tell them apart.
    const erf = logitsOf({ ...config, activation: 'gelu' }, weights, ids);
    expect(maxDifference(erf[0]!, expected.inputs[0]!.logits)).toBeGreaterThan(1e-3);
  });

  it('crops wpe to a smaller blockSize, which keeps the logits of the first positions', async () => {
    const { config, weights } = await readGpt2Directory(reader(fixtureFiles()), { blockSize: 10 });
    expect(config.blockSize).toBe(10);
    expect(weights.get('wpe.weight')!.shape).toEqual([10, 32]);
    const [first] = expected.inputs;
    const [logits] = logitsOf(config, weights, [first!.ids.slice(0, 10)]);
    // Attention is causal: the first 10 rows do not depend on later tokens.
    expect(maxDifference(logits!, first!.logits.slice(0, 10))).toBeLessThan(1e-4);
  });

  it('takes dropout from the options, not from the file’s *_pdrop', async () => {
    const read = await readGpt2Directory(reader(fixtureFiles()), { dropout: 0.1 });
    expect(read.config.dropout).toBe(0.1);
  });

  it('reads names without the prefix, HF defaults for absent keys, and 1e-5 stored as float32', async () => {
    const files = withConfig((config) => {
      delete config['activation_function']; // GPT2Config's default: gelu_new
      delete config['n_ctx'];
      config['layer_norm_epsilon'] = Math.fround(1e-5);
    });
    const tensors = decodeSafetensors(files.get('model.safetensors')!, 'fixture', {
      skip: (name) => /\.attn\.(bias|masked_bias)$/.test(name),
    }).tensors;
    files.set(
      'model.safetensors',
      encodeSafetensors(
        [...tensors]
          .filter(([name]) => name !== 'lm_head.weight')
          .map(([name, t]) => [name.replace(/^transformer\./, ''), t] as const),
      ),
    );
    const read = await readGpt2Directory(reader(files));
    expect(read.config.activation).toBe('gelu_tanh');
    expect(read.weights.size).toBe(28);
  });
});

describe('gpt2DirectoryFiles', () => {
  it('writes a GPT-2 config.json and unprefixed float32 weights that read back bit-identical', async () => {
    const fixture = await readGpt2Directory(reader(fixtureFiles()));
    const files = gpt2DirectoryFiles(fixture.config, fixture.weights, {
      bosTokenId: 49,
      eosTokenId: 49,
    });
    expect([...files.keys()]).toEqual(['config.json', 'model.safetensors']);
    const hfConfig = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as unknown;
    expect(hfConfig).toEqual({
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: 50,
      n_positions: 24,
      n_ctx: 24,
      n_embd: 32,
      n_layer: 2,
      n_head: 4,
      n_inner: null,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
      resid_pdrop: 0,
      embd_pdrop: 0,
      attn_pdrop: 0,
      scale_attn_weights: true,
      tie_word_embeddings: true,
      bos_token_id: 49,
      eos_token_id: 49,
      torch_dtype: 'float32',
    });

    // Read independently by the safetensors reader: GPT-2's names, the format pt, F32.
    const written = decodeSafetensors(files.get('model.safetensors')!, 'written');
    expect(written.metadata).toEqual({ format: 'pt' });
    expect([...written.tensors.keys()]).toEqual([...fixture.weights.keys()]);
    for (const [name, tensor] of written.tensors) {
      expect(tensor.dtype).toBe('F32');
      expect(firstDifferentBits(tensor.data as Float32Array, fixture.weights.get(name)!.data)).toBe(
        -1,
      );
    }

    const back = await readGpt2Directory(reader(files));
    expect(back.config).toEqual(fixture.config);
    expect([back.bosTokenId, back.eosTokenId]).toEqual([49, 49]);
    for (const [name, weight] of fixture.weights) {
      expect(back.weights.get(name)!.shape).toEqual(weight.shape);
      expect(firstDifferentBits(back.weights.get(name)!.data, weight.data)).toBe(-1);
    }
  });

  it('writes a bias-free model with zero biases: the same logits, read back with bias true', async () => {
    const fixture = await readGpt2Directory(reader(fixtureFiles()));
    const config: GPTConfig = { ...fixture.config, bias: false, activation: 'gelu' };
    const weights = new Map([...fixture.weights].filter(([name]) => !name.endsWith('.bias')));
    const files = gpt2DirectoryFiles(config, weights);
    const hfConfig = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as Record<
      string,
      unknown
    >;
    expect(hfConfig['activation_function']).toBe('gelu');
    expect('bos_token_id' in hfConfig).toBe(false);

    const back = await readGpt2Directory(reader(files));
    expect(back.config).toEqual({ ...config, bias: true });
    expect(back.weights.size).toBe(fixture.weights.size);
    for (const [name, weight] of back.weights) {
      const original = weights.get(name);
      if (original) expect(firstDifferentBits(weight.data, original.data)).toBe(-1);
      else expect(weight.data.every((v) => Object.is(v, 0))).toBe(true);
    }
    const ids = [expected.inputs[0]!.ids];
    const [withZeros] = logitsOf(back.config, back.weights, ids);
    const [without] = logitsOf(config, weights, ids);
    expect(maxDifference(withZeros!, without!)).toBeLessThan(1e-6);
  });

  it('refuses weights that do not fit the config, and token ids outside the vocabulary', async () => {
    const fixture = await readGpt2Directory(reader(fixtureFiles()));
    const weights = new Map(fixture.weights);
    weights.delete('ln_f.bias');
    expect(() => gpt2DirectoryFiles(fixture.config, weights)).toThrow(
      /weights: missing weights "ln_f.bias"/,
    );
    expect(() => gpt2DirectoryFiles(fixture.config, fixture.weights, { eosTokenId: 50 })).toThrow(
      /eosTokenId must be a token id from 0 to 49, got 50/,
    );
  });
});

/** float16 bits → value by the IEEE 754 formula (independent of the reader's bit shifting). */
function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** bfloat16 bits → value: 8 exponent bits (bias 127), 7 fraction bits. */
function bfloat16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 7) & 0xff;
  const fraction = bits & 0x7f;
  if (exponent === 0xff) return fraction === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * fraction * 2 ** -133;
  return sign * (1 + fraction / 128) * 2 ** (exponent - 127);
}

/** A safetensors file of one 16-bit tensor holding `halves`. */
function halfFile(dtype: 'F16' | 'BF16', halves: Uint16Array, name = 'w'): Uint8Array {
  const header = JSON.stringify({
    [name]: { dtype, shape: [halves.length], data_offsets: [0, 2 * halves.length] },
  });
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + 2 * halves.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  halves.forEach((half, i) => view.setUint16(8 + json.length + 2 * i, half, true));
  return out;
}

describe('F16 and BF16 weights', () => {
  const every = Uint16Array.from({ length: 65_536 }, (_, i) => i);

  it.each([
    ['F16', float16Value],
    ['BF16', bfloat16Value],
  ] as const)('widens all 65,536 %s values exactly to float32', (dtype, formula) => {
    const tensor = decodeSafetensors(halfFile(dtype, every), 'half', {
      widenHalf: true,
    }).tensors.get('w')!;
    expect([tensor.dtype, tensor.storedAs, tensor.shape]).toEqual(['F32', dtype, [65_536]]);
    const wrong = [...every].filter((bits) => !Object.is(tensor.data[bits], formula(bits)));
    expect(wrong).toEqual([]);
    // Spot values, written out: 1, −2, the largest float16, its smallest subnormal, −0.
    if (dtype === 'F16') {
      expect([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000].map((b) => tensor.data[b])).toEqual([
        1,
        -2,
        65504,
        2 ** -24,
        -0,
      ]);
    }
  });

  it('are refused without widenHalf, as before', () => {
    expect(() => decodeSafetensors(halfFile('F16', every), 'half.safetensors')).toThrow(
      /half.safetensors: tensor "w": has dtype F16; this reader reads only F32 and I32 \[dtype\]/,
    );
  });

  it('read into a directory: F16 and BF16 files give the values they store', async () => {
    const fixture = await readGpt2Directory(reader(fixtureFiles()));
    const float16Bits = new Map<number, number>(); // value → its float16 bits (+0 for zero)
    for (const bits of every) {
      const value = float16Value(bits);
      if (!Number.isNaN(value) && !float16Bits.has(value)) float16Bits.set(value, bits);
    }
    for (const dtype of ['F16', 'BF16'] as const) {
      // Every weight cut to a value the dtype holds: BF16 keeps a float32's upper 16 bits;
      // F16 gets k/512 for small integers k (exact in float16).
      const toHalf = (value: number): number => {
        if (dtype === 'BF16') return new Uint32Array(new Float32Array([value]).buffer)[0]! >>> 16;
        const k = Math.max(-1024, Math.min(1024, Math.round(value * 512)));
        return float16Bits.get(k / 512)!;
      };
      const valueOf = dtype === 'F16' ? float16Value : bfloat16Value;
      const stored = new Map<string, number[]>();
      const header: Record<string, unknown> = {};
      const chunks: number[] = [];
      for (const [name, weight] of fixture.weights) {
        const halves = [...weight.data].map(toHalf);
        stored.set(name, halves);
        header[`transformer.${name}`] = {
          dtype,
          shape: weight.shape,
          data_offsets: [2 * chunks.length, 2 * (chunks.length + halves.length)],
        };
        chunks.push(...halves);
      }
      const files = fixtureFiles();
      files.set(
        'model.safetensors',
        (() => {
          const json = new TextEncoder().encode(JSON.stringify(header));
          const out = new Uint8Array(8 + json.length + 2 * chunks.length);
          const view = new DataView(out.buffer);
          view.setBigUint64(0, BigInt(json.length), true);
          out.set(json, 8);
          chunks.forEach((half, i) => view.setUint16(8 + json.length + 2 * i, half, true));
          return out;
        })(),
      );
      const read = await readGpt2Directory(reader(files));
      expect(read.storedDtypes).toEqual([dtype]);
      for (const [name, weight] of read.weights) {
        expect([...weight.data]).toEqual(stored.get(name)!.map(valueOf));
      }
    }
  });
});

describe('readGpt2Directory refuses, naming the file and the key or tensor', () => {
  it('a directory without model.safetensors (or config.json), listing the layout', async () => {
    const files = fixtureFiles();
    files.delete('model.safetensors');
    const error = await refusal(files);
    expect(error.message).toMatch(
      /^models\/gpt2-tiny\/model.safetensors: no such file \[missing-file\] — a GPT-2 directory in the Hugging Face layout holds config.json, model.safetensors, and tokenizer.json or vocab.json \+ merges.txt/,
    );
    expect(error.message).toContain(GPT2_DIRECTORY_LAYOUT);
    expect([error.file, error.rule]).toEqual([`${DIR}/model.safetensors`, 'missing-file']);
    expect((await refusal(new Map())).message).toMatch(
      /^models\/gpt2-tiny\/config.json: no such file \[missing-file\]/,
    );
  });

  it('a config.json of another model_type', async () => {
    const error = await refusal(withConfig((config) => (config['model_type'] = 'llama')));
    expect(error.message).toMatch(
      /^models\/gpt2-tiny\/config.json: "model_type" is "llama"; only GPT-2 models \("model_type": "gpt2"\) are read \[model-type\]/,
    );
  });

  it('a tensor of the wrong shape', async () => {
    const error = await refusal(
      withTensors((tensors) => {
        const fc = tensors.get('transformer.h.1.mlp.c_fc.weight')!;
        // (out, in): PyTorch's nn.Linear layout instead of Conv1D's (in, out).
        tensors.set('transformer.h.1.mlp.c_fc.weight', { ...fc, shape: [128, 32] });
      }),
    );
    expect(error.message).toMatch(
      /^models\/gpt2-tiny\/model.safetensors: weight "h.1.mlp.c_fc.weight" has shape \[128, 32\], the config needs \[32, 128\] \[weight-shape\]/,
    );
  });

  it('an unknown extra tensor', async () => {
    const error = await refusal(
      withTensors((tensors) =>
        tensors.set('transformer.h.0.attn.rotary.weight', {
          dtype: 'F32',
          shape: [2],
          data: new Float32Array(2),
        }),
      ),
    );
    expect(error.message).toMatch(
      /^models\/gpt2-tiny\/model.safetensors: unknown weights "h.0.attn.rotary.weight": .*\[unknown-weight\]/,
    );
  });

  it('an lm_head.weight that is not wte.weight', async () => {
    const error = await refusal(
      withTensors((tensors) => {
        const head = tensors.get('lm_head.weight')!;
        const data = Float32Array.from(head.data);
        data[77] = data[77]! + 2 ** -20;
        tensors.set('lm_head.weight', { ...head, data });
      }),
    );
    expect(error.message).toMatch(
      /^models\/gpt2-tiny\/model.safetensors: tensor "lm_head.weight" differs from "wte.weight" at index 77 .*\[lm-head\] — only GPT-2 models whose LM head is tied/,
    );
  });

  it('a truncated model.safetensors', async () => {
    const files = fixtureFiles();
    const bytes = files.get('model.safetensors')!;
    files.set('model.safetensors', bytes.subarray(0, bytes.length - 1000));
    const error = await refusal(files);
    expect(error.message).toMatch(
      /^models\/gpt2-tiny\/model.safetensors: tensor "[^"]+": has data_offsets \[\d+, ?\d+\], past the end of the data \(truncated\?\)/,
    );
    files.set('model.safetensors', bytes.subarray(0, 6));
    expect((await refusal(files)).message).toMatch(
      /^models\/gpt2-tiny\/model.safetensors: is 6 bytes; .* \[header-length\]/,
    );
  });

  it('a blockSize beyond n_positions (and one that is not a positive integer)', async () => {
    const error = await refusal(fixtureFiles(), { blockSize: 32 });
    expect(error.message).toMatch(
      /^models\/gpt2-tiny\/config.json: "n_positions" is 24, and the requested blockSize is 32; .* \[block-size\] — ask for a blockSize from 1 to 24/,
    );
    expect((await refusal(fixtureFiles(), { blockSize: 0 })).rule).toBe('block-size');
  });

  it.each([
    [
      'activation_function',
      'relu',
      /"activation_function" is "relu"; minigpt's MLP runs "gelu_new", "gelu_pytorch_tanh", "gelu" \[config-unsupported\]/,
    ],
    [
      'layer_norm_epsilon',
      1e-6,
      /"layer_norm_epsilon" is 0.000001; minigpt's LayerNorm uses epsilon 0.00001/,
    ],
    ['n_inner', 64, /"n_inner" is 64; minigpt's MLP is 4 × n_embd = 128 wide/],
    ['tie_word_embeddings', false, /"tie_word_embeddings" is false; .*\[config-unsupported\]/],
    ['scale_attn_weights', false, /"scale_attn_weights" is false/],
    ['scale_attn_by_inverse_layer_idx', true, /"scale_attn_by_inverse_layer_idx" is true/],
    ['reorder_and_upcast_attn', true, /"reorder_and_upcast_attn" is true/],
    ['n_ctx', 12, /"n_ctx" is 12 but "n_positions" is 24; they must agree \[config-value\]/],
    ['n_layer', 1e9, /"n_layer" is 1000000000, more than 1024/],
    ['n_layer', undefined, /"n_layer" is missing; it must be a positive integer/],
    ['vocab_size', '50', /"vocab_size" is "50"; it must be a positive integer/],
    ['n_head', 5, /"n_embd" \(32\) is not divisible by "n_head" \(5\)/],
    ['eos_token_id', 50, /"eos_token_id" is 50; it must be a token id from 0 to 49/],
  ])('config.json %s = %s', async (key, value, message) => {
    const asked: string[] = [];
    const files = withConfig((config) => {
      if (value === undefined) delete config[key];
      else config[key] = value;
    });
    await expect(readGpt2Directory(reader(files, asked), { directory: DIR })).rejects.toThrow(
      new RegExp(`^models/gpt2-tiny/config.json: ${message.source}`),
    );
    // Refused before the weights were asked for.
    expect(asked).toEqual(['config.json']);
  });

  it('a model too large to build, before reading its weights', async () => {
    const asked: string[] = [];
    const files = withConfig((config) => Object.assign(config, { n_layer: 1000, n_embd: 8192 }));
    await expect(readGpt2Directory(reader(files, asked))).rejects.toThrow(
      /^config.json: model config "parameters" .* must be ≤ 8589934592/,
    );
    expect(asked).toEqual(['config.json']);
  });

  it('a config.json that is not JSON, or too large', async () => {
    const files = fixtureFiles();
    files.set('config.json', new TextEncoder().encode('{"model_type": "gpt2",'));
    expect((await refusal(files)).message).toMatch(
      /^models\/gpt2-tiny\/config.json: is not valid UTF-8 JSON .*\[config-json\]/,
    );
    files.set('config.json', new Uint8Array(2 ** 20 + 1));
    expect((await refusal(files)).message).toMatch(
      /^models\/gpt2-tiny\/config.json: is 1048577 bytes, more than the 1048576 it can hold \[file-size\]/,
    );
  });

  it('a model.safetensors larger than the config’s model can be, without decoding it', async () => {
    const files = fixtureFiles();
    files.set('model.safetensors', new Uint8Array(2 ** 27));
    expect((await refusal(files)).message).toMatch(
      /^models\/gpt2-tiny\/model.safetensors: is 134217728 bytes, more than the \d+ it can hold for the model config.json describes \[file-size\]/,
    );
  });

  it('a weight stored twice, with and without the prefix', async () => {
    const error = await refusal(
      withTensors((tensors) => tensors.set('wte.weight', tensors.get('transformer.wte.weight')!)),
    );
    expect(error.message).toMatch(
      /^models\/gpt2-tiny\/model.safetensors: tensors "transformer.wte.weight" and "wte.weight" are both "wte.weight" .*\[tensor-name\]/,
    );
  });
});
