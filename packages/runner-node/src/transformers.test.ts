// Exports as transformers.js v4 (on onnxruntime-node's CPU) loads them, with no file added or
// changed (v3: transformers-v3.test.ts): its greedy text and token ids equal runner-node's for a char
// and a byte-level BPE model, one prompt or a left-padded batch, fp32 or the int8 graph; at
// the end of the window it stops or says why; a character the char vocabulary lacks still
// has an id.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AutoModelForCausalLM,
  AutoTokenizer,
  env,
  pipeline,
  type PreTrainedModel,
  type PreTrainedTokenizer,
  type Tensor,
} from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel, type LoadedModel } from './index.js';
import { exportGPT, variedGPT } from './test-exports.js';
import { BLOCK_SIZE, cases, charTokenizer } from './test-transformers.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-transformers-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
// Models by directory name under `work`; nothing is fetched from the Hub.
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = work;

beforeAll(async () => {
  for (const { name, tokenizer, seed, neverGreedy } of cases) {
    const model = variedGPT(tokenizer, { blockSize: BLOCK_SIZE }, seed, { neverGreedy });
    await exportGPT(model, tokenizer, join(work, name), 'int8');
    // The same weights in the fused graph (com.microsoft operators).
    await exportGPT(model, tokenizer, join(work, `${name}-fused`), undefined, { fused: true });
  }
});

/** Each row of a (B, L) int64 tensor, as numbers. */
function rowsOf(tensor: Tensor): number[][] {
  return (tensor.tolist() as bigint[][]).map((row) => row.map(Number));
}

describe.each(cases)('transformers.js on a $name export', (testCase) => {
  const { name, tokenizer, prompt, prompts } = testCase;
  let runner: LoadedModel;
  let hfTokenizer: PreTrainedTokenizer;
  let hfModel: PreTrainedModel;
  beforeAll(async () => {
    runner = await loadModel(join(work, name));
    hfTokenizer = await AutoTokenizer.from_pretrained(name);
    hfModel = await AutoModelForCausalLM.from_pretrained(name, {
      device: 'cpu',
      // The run past the window fails on purpose: onnxruntime's own log would print it too.
      session_options: { logSeverityLevel: 4 },
    });
  });
  afterAll(async () => {
    await runner.dispose();
    await hfModel.dispose();
  });

  /** runner-node's greedy continuation of `text`: the new text and token ids. */
  async function greedy(text: string, maxNewTokens: number, model = runner) {
    const generation = model.generate(text, { maxNewTokens, temperature: 0 });
    return { text: await generation.text(), tokens: generation.stats.tokens };
  }

  it("tokenizes as minigpt's tokenizer does", () => {
    for (const text of [prompt, ...prompts]) {
      expect(hfTokenizer.encode(text)).toEqual(tokenizer.encode(text));
    }
  });

  it('pipeline text-generation, greedy: the new text is runner-node’s', async () => {
    const expected = await greedy(prompt, 100);
    // A varied continuation, so that agreeing on it says something.
    expect(new Set(expected.tokens).size).toBeGreaterThan(8);
    // Never the end-of-text id, at which transformers.js would stop early.
    for (const id of testCase.neverGreedy) expect(expected.tokens).not.toContain(id);
    const generator = await pipeline('text-generation', name, { device: 'cpu' });
    const output = (await generator(prompt, {
      max_new_tokens: 100,
      do_sample: false,
      return_full_text: false,
    })) as Array<{ generated_text: string }>;
    expect(output).toHaveLength(1);
    expect(output[0]!.generated_text).toBe(expected.text);
    await generator.dispose();
  });

  it('AutoModelForCausalLM.generate, greedy: the 100 new token ids are runner-node’s', async () => {
    const expected = await greedy(prompt, 100);
    const inputs = hfTokenizer(prompt);
    const promptLength = tokenizer.encode(prompt).length;
    const output = (await hfModel.generate({
      ...inputs,
      max_new_tokens: 100,
      do_sample: false,
    })) as Tensor;
    expect(output.dims).toEqual([1, promptLength + 100]);
    expect(rowsOf(output)[0]!.slice(promptLength)).toEqual(expected.tokens);
  });

  it('the fused graph (export --fused), greedy: the 100 new token ids are runner-node’s on the standard graph', async () => {
    const expected = await greedy(prompt, 100);
    const fused = await AutoModelForCausalLM.from_pretrained(`${name}-fused`, { device: 'cpu' });
    const promptLength = tokenizer.encode(prompt).length;
    const output = (await fused.generate({
      ...hfTokenizer(prompt),
      max_new_tokens: 100,
      do_sample: false,
    })) as Tensor;
    expect(rowsOf(output)[0]!.slice(promptLength)).toEqual(expected.tokens);
    await fused.dispose();
  });

  it('a left-padded batch of 4 prompts: each row’s 50 new ids are the prompt’s alone', async () => {
    expect(prompts.map((text) => text.length)).toEqual(
      name === 'char' ? [1, 7, 26, 40] : [1, 10, 20, 40],
    );
    const inputs = hfTokenizer([...prompts], { padding: true });
    const [batch, width] = inputs.input_ids.dims as [number, number];
    expect(batch).toBe(4);
    // Left padding, from tokenizer_config.json: each row's tokens end at the last column.
    const masks = rowsOf(inputs.attention_mask);
    prompts.forEach((text, row) => {
      const length = tokenizer.encode(text).length;
      expect(masks[row]).toEqual([...Array(width - length).fill(0), ...Array(length).fill(1)]);
    });
    const output = (await hfModel.generate({
      ...inputs,
      max_new_tokens: 50,
      do_sample: false,
    })) as Tensor;
    expect(output.dims).toEqual([4, width + 50]);
    const rows = rowsOf(output);
    for (const [row, text] of prompts.entries()) {
      const alone = await greedy(text, 50);
      expect(new Set(alone.tokens).size).toBeGreaterThan(4);
      expect(rows[row]!.slice(width)).toEqual(alone.tokens);
    }
  });

  it('stops at the window (generation_config max_length), or throws past it', async () => {
    const inputs = hfTokenizer(prompt);
    const promptLength = tokenizer.encode(prompt).length;
    // No max_new_tokens: generation_config.json's max_length = blockSize ends it.
    const untilFull = (await hfModel.generate({ ...inputs, do_sample: false })) as Tensor;
    expect(untilFull.dims).toEqual([1, BLOCK_SIZE]);
    const expected = await greedy(prompt, BLOCK_SIZE - promptLength);
    expect(rowsOf(untilFull)[0]!.slice(promptLength)).toEqual(expected.tokens);
    // Asked for more: position blockSize has no embedding, and the graph's Gather says so.
    // transformers.js logs the failed run with its inputs (all the cache) before throwing.
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      await expect(
        hfModel.generate({ ...inputs, max_new_tokens: 200, do_sample: false }),
      ).rejects.toThrow(/position_ids must be below n_positions 128: the context window is full/);
      expect(String(logged.mock.calls[0]?.[0])).toMatch(/position_ids must be below n_positions/);
    } finally {
      logged.mockRestore();
    }
    // runner-node slides its window instead.
    const sliding = runner.generate(prompt, { maxNewTokens: 200, temperature: 0 });
    await sliding.text();
    expect(sliding.stats.tokens).toHaveLength(200);
    expect(sliding.stats.refills).toBeGreaterThan(0);
  });

  it("dtype 'q8' loads onnx/model_quantized.onnx: runner-node's q8 text", async () => {
    // A copy without onnx/model.onnx: only the int8 graph can load.
    const q8Name = `${name}-q8-only`;
    cpSync(join(work, name), join(work, q8Name), { recursive: true });
    rmSync(join(work, q8Name, 'onnx', 'model.onnx'));
    const runnerQ8 = await loadModel(join(work, q8Name), { dtype: 'q8' });
    const expected = await greedy(prompt, 100, runnerQ8);
    expect(new Set(expected.tokens).size).toBeGreaterThan(8);
    const q8 = await AutoModelForCausalLM.from_pretrained(q8Name, { device: 'cpu', dtype: 'q8' });
    const output = (await q8.generate({
      ...hfTokenizer(prompt),
      max_new_tokens: 100,
      do_sample: false,
    })) as Tensor;
    const promptLength = tokenizer.encode(prompt).length;
    const ids = rowsOf(output)[0]!.slice(promptLength);
    expect(ids).toEqual(expected.tokens);
    expect(hfTokenizer.decode(ids)).toBe(expected.text);
    await q8.dispose();
    await runnerQ8.dispose();
  });
});

describe('transformers.js on a char export, with characters the vocabulary lacks', () => {
  it('maps them to the fallback character and generates', async () => {
    const hfTokenizer = await AutoTokenizer.from_pretrained('char');
    const hfModel = await AutoModelForCausalLM.from_pretrained('char', { device: 'cpu' });
    // The vocabulary has no U+FFFD and no '?': an unknown character becomes ' '.
    const ids = hfTokenizer.encode('hello WORLD!');
    expect(ids).toEqual(charTokenizer.encode('hello       '));
    expect(Math.max(...ids)).toBeLessThan(charTokenizer.vocabSize);
    const output = (await hfModel.generate({
      ...hfTokenizer('hello WORLD!'),
      max_new_tokens: 20,
      do_sample: false,
    })) as Tensor;
    // minigpt's tokenizer refuses the prompt; with the fallback spelled out it agrees.
    const runner = await loadModel(join(work, 'char'));
    expect(() => runner.generate('hello WORLD!')).toThrow(/"W" \(U\+0057\) at position 6/);
    const alone = runner.generate('hello       ', { maxNewTokens: 20, temperature: 0 });
    await alone.text();
    expect(rowsOf(output)[0]!.slice(ids.length)).toEqual(alone.stats.tokens);
    await runner.dispose();
    await hfModel.dispose();
  });
});
