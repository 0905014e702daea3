// A GPT-2-shaped model (vocabulary 50257, GPT-2's own tokenizer, tanh GELU, biases) exported
// as `minigpt export` does: the greedy text of the tfjs model, runner-node and transformers.js
// is the same, token for token, for prose, emoji/CJK and code; transformers.js's logits are
// the tfjs model's (tanh GELU) within 1e-4, not the exact GELU's; and the exported
// tokenizer.json reads, in @huggingface/tokenizers and in transformers.js, to our ids.
// (runner-web on wasm: runner-web's gpt2-export.test.ts, against runner-node.)
//
// GPT-2's tokenizer files are rebuilt from js-tiktoken's ranks by @minigpt/gpt2-reference
// (tooling/).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import * as reference from '@minigpt/gpt2-reference';
import {
  AutoModelForCausalLM,
  AutoTokenizer,
  env,
  pipeline,
  Tensor,
  type PreTrainedModel,
  type PreTrainedTokenizer,
} from '@huggingface/transformers';
import { GPT, resolveGPTConfig, weightShapes, type WeightData } from '@minigpt/model';
import { Random } from '@minigpt/random';
import { bpeFromHuggingFace, type BpeTokenizer } from '@minigpt/tokenizer';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type LoadedModel } from './index.js';
import { exportGPT, type TestModel } from './test-exports.js';

const END_OF_TEXT = 50256;
const NEW_TOKENS = 40;
const config = resolveGPTConfig(
  { vocabSize: 50257, blockSize: 64, activation: 'gelu_tanh', bias: true },
  'nano', // 2 layers, 2 heads, 32 wide, biases
);
const prompts = [
  'The old lighthouse keeper climbed the stairs each evening, and the sea',
  'Café 東京 🚀 日本語 😀',
  'for (let i = 0; i < n; i++) {\n  sum +=',
];

/**
 * GPT-2-shaped weights from a seeded normal. At GPT-2's init (std 0.02) the logits are nearly
 * flat and greedy decoding repeats one id, so any two implementations agree trivially; at
 * std 0.4 the argmax follows the context. Biases and LayerNorm parameters are drawn too, so
 * that each is used where it belongs. The row of <|endoftext|> in wte (the tied LM head) is
 * zero: its logit is exactly 0, below the argmax, so greedy decoding never picks it
 * (transformers.js would end the text there; minigpt's runners go on).
 */
function gpt2ShapedModel(seed: number): TestModel {
  const random = new Random(seed);
  const weights = new Map<string, WeightData>();
  for (const [name, shape] of weightShapes(config)) {
    const data = new Float32Array(shape.reduce((size, dim) => size * dim, 1));
    const isNormScale = /(^|\.)ln_(1|2|f)\.weight$/.test(name);
    for (let i = 0; i < data.length; i++) {
      const noise = random.nextNormal();
      data[i] = isNormScale ? 1 + 0.1 * noise : name.endsWith('.bias') ? 0.1 * noise : 0.4 * noise;
    }
    if (name === 'wte.weight') {
      data.fill(0, END_OF_TEXT * config.nEmbd, (END_OF_TEXT + 1) * config.nEmbd); // row of (V, C)
    }
    weights.set(name, { shape, data });
  }
  return { config, weights };
}

const work = mkdtempSync(join(tmpdir(), 'minigpt-gpt2-export-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = work;

describe('a GPT-2-shaped model (vocab 50257, tanh GELU) exported with GPT-2’s tokenizer', () => {
  let tokenizer: BpeTokenizer;
  let tfjsModel: GPT;
  let runner: LoadedModel;
  let hfTokenizer: PreTrainedTokenizer;
  let hfModel: PreTrainedModel;
  const greedyIds = new Map<string, { ids: number[]; smallestMargin: number }>();

  /**
   * The tfjs model's greedy continuation of `prompt` (GPT.generate, temperature 0), the
   * reference the others must equal; and the smallest margin by which each new id led its
   * step's logits. Computed once per prompt (the tfjs cpu backend takes seconds).
   */
  function tfjsGreedy(prompt: string): { ids: number[]; smallestMargin: number } {
    const known = greedyIds.get(prompt);
    if (known) return known;
    const promptIds = tokenizer.encode(prompt);
    const ids = tfjsModel.generate(promptIds, NEW_TOKENS, { temperature: 0 });
    // One pass over the whole text gives each step's logits again (causal attention, all
    // within blockSize).
    const rows = stepLogits(tfjsModel, [...promptIds, ...ids], promptIds.length - 1); // (40, V)
    let smallestMargin = Infinity;
    ids.forEach((chosen, step) => {
      const row = rows.subarray(step * config.vocabSize, (step + 1) * config.vocabSize);
      let runnerUp = -Infinity;
      row.forEach((value, id) => {
        if (id !== chosen) runnerUp = Math.max(runnerUp, value);
      });
      smallestMargin = Math.min(smallestMargin, row[chosen]! - runnerUp);
    });
    const result = { ids, smallestMargin };
    greedyIds.set(prompt, result);
    return result;
  }

  beforeAll(async () => {
    await tf.setBackend('cpu');
    tokenizer = bpeFromHuggingFace(reference.gpt2Files().tokenizerJson, 'gpt2/tokenizer.json');
    const model = gpt2ShapedModel(14);
    await exportGPT(model, tokenizer, join(work, 'gpt2'));
    tfjsModel = GPT.fromWeights(config, model.weights);
    runner = await loadModel(join(work, 'gpt2'), { dtype: 'fp32' });
    hfTokenizer = await AutoTokenizer.from_pretrained('gpt2');
    hfModel = await AutoModelForCausalLM.from_pretrained('gpt2', { device: 'cpu' });
  });
  afterAll(async () => {
    tfjsModel.dispose();
    await runner.dispose();
    await hfModel.dispose();
  });

  it('says vocab_size 50257 and gelu_new in config.json', () => {
    const hfConfig = JSON.parse(readFileSync(join(work, 'gpt2', 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(hfConfig).toMatchObject({
      model_type: 'gpt2',
      vocab_size: 50257,
      activation_function: 'gelu_new',
      n_positions: 64,
      n_layer: 2,
      n_head: 2,
      n_embd: 32,
    });
    expect(tokenizer.vocabSize).toBe(50257);
  });

  it.each(prompts)('tfjs (cpu): varied greedy ids, each a clear argmax: %j', (prompt) => {
    expect(tokenizer.encode(prompt).length + NEW_TOKENS).toBeLessThanOrEqual(config.blockSize);
    const { ids, smallestMargin } = tfjsGreedy(prompt);
    expect(ids).toHaveLength(NEW_TOKENS);
    // Varied text, never <|endoftext|>: agreeing on it says something.
    expect(new Set(ids).size).toBeGreaterThan(15);
    expect(ids).not.toContain(END_OF_TEXT);
    // Each new id leads by far more than float32 differences between implementations, so
    // the runners below must pick the same ids on any machine.
    expect(smallestMargin).toBeGreaterThan(1e-3);
  });

  it.each(prompts)('runner-node (fp32) writes the same ids and text: %j', async (prompt) => {
    const { ids } = tfjsGreedy(prompt);
    const generation = runner.generate(prompt, { maxNewTokens: NEW_TOKENS, temperature: 0 });
    const text = await generation.text();
    expect(generation.stats.tokens).toEqual(ids);
    expect(text).toBe(tokenizer.decode(ids));
  });

  it("transformers.js's logits are the tanh GELU model's (≤ 1e-4), not the exact GELU's", async () => {
    // Greedy ids alone do not tell the two GELUs apart here: the same weights exported with
    // the exact GELU write the same 120 ids (the GELUs differ by < 5e-4 at any input, the
    // logits by up to ~5e-3). The logits over a prompt and its continuation do.
    const prompt = prompts[0]!;
    const all = [...tokenizer.encode(prompt), ...tfjsGreedy(prompt).ids];
    const tanh = stepLogits(tfjsModel, all, 0); // (T, V)
    const exactModel = GPT.fromWeights(
      { ...config, activation: 'gelu' },
      gpt2ShapedModel(14).weights,
    );
    const exact = stepLogits(exactModel, all, 0);
    exactModel.dispose();
    const ids = new Tensor('int64', BigInt64Array.from(all, BigInt), [1, all.length]);
    const mask = new Tensor('int64', new BigInt64Array(all.length).fill(1n), [1, all.length]);
    const { logits } = (await hfModel({ input_ids: ids, attention_mask: mask })) as {
      logits: Tensor;
    };
    expect(logits.dims).toEqual([1, all.length, config.vocabSize]);
    const onnx = logits.data as Float32Array;
    expect(maxAbsDifference(onnx, tanh)).toBeLessThan(1e-4);
    expect(maxAbsDifference(onnx, exact)).toBeGreaterThan(1e-3);
  });

  it.each(prompts)('transformers.js generate writes the same ids and text: %j', async (prompt) => {
    const { ids } = tfjsGreedy(prompt);
    const promptIds = tokenizer.encode(prompt);
    const inputs = hfTokenizer(prompt);
    expect(rowOf(inputs.input_ids)).toEqual(promptIds);
    const output = (await hfModel.generate({
      ...inputs,
      max_new_tokens: NEW_TOKENS,
      do_sample: false,
    })) as Tensor;
    const newIds = rowOf(output).slice(promptIds.length);
    expect(newIds).toEqual(ids);
    expect(hfTokenizer.decode(newIds)).toBe(tokenizer.decode(ids));
  });

  it('pipeline text-generation, greedy: the same text', async () => {
    const prompt = prompts[0]!;
    const generator = await pipeline('text-generation', 'gpt2', { device: 'cpu' });
    const output = (await generator(prompt, {
      max_new_tokens: NEW_TOKENS,
      do_sample: false,
      return_full_text: false,
    })) as Array<{ generated_text: string }>;
    expect(output.map((row) => row.generated_text)).toEqual([
      tokenizer.decode(tfjsGreedy(prompt).ids),
    ]);
    await generator.dispose();
  });

  it('its tokenizer.json gives our ids in @huggingface/tokenizers and transformers.js', () => {
    // Prose, code, emoji, CJK, whitespace runs and <|endoftext|> between documents.
    const text = reference.variedText(300_000, 41);
    const ids = tokenizer.encode(text, { allowedSpecial: 'all' });
    expect(ids).toContain(END_OF_TEXT);
    const read = (file: string) =>
      JSON.parse(readFileSync(join(work, 'gpt2', file), 'utf8')) as object;
    const hf = new HfTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
    expect(hf.encode(text).ids).toEqual(ids);
    expect(hfTokenizer.encode(text)).toEqual(ids);
    expect(hfTokenizer.decode(ids)).toBe(text);
  });
});

/** The tfjs model's logits at positions `first`… of `ids` (one sequence): (T - first, V). */
function stepLogits(model: GPT, ids: readonly number[], first: number): Float32Array {
  const logits = tf.tidy(() => {
    const all = model.forward(tf.tensor2d([[...ids]], [1, ids.length], 'int32')); // (1, T, V)
    return tf.slice(all, [0, first, 0], [1, ids.length - first, -1]);
  });
  // Read outside tidy, which would walk a returned array entry by entry.
  const rows = logits.dataSync() as Float32Array;
  logits.dispose();
  return rows;
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let largest = 0;
  for (let i = 0; i < a.length; i++) largest = Math.max(largest, Math.abs(a[i]! - b[i]!));
  return largest;
}

/** Row 0 of a (1, L) int64 tensor, as numbers. */
function rowOf(tensor: Tensor): number[] {
  return (tensor.tolist() as bigint[][])[0]!.map(Number);
}
