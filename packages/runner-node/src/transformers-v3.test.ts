// The same export files in transformers.js 3.x (npm alias `transformers-v3`), which brings its
// own onnxruntime-node (1.21): two onnxruntime-node builds cannot load in one process, so
// runner-node does not run in this one. The reference is the tfjs model the export was made
// from (whose greedy text runner-node reproduces: load.test.ts), and for the int8 graph
// runner-node in a child process. Greedy ids of one prompt, of a left-padded batch, the stop
// at the window, the int8 graph, and an unknown character.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PreTrainedModel, PreTrainedTokenizer, Tensor } from '@huggingface/transformers';
import { GPT } from '@minigpt/model';
import * as tf from '@tensorflow/tfjs';
import * as transformersV3 from 'transformers-v3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportGPT, variedGPT } from './test-exports.js';
import { BLOCK_SIZE, cases, charTokenizer } from './test-transformers.js';

// Typed as v4's API, which v3's calls here share.
const { AutoModelForCausalLM, AutoTokenizer, env, pipeline } =
  transformersV3 as unknown as typeof import('@huggingface/transformers');

const work = mkdtempSync(join(tmpdir(), 'minigpt-transformers-v3-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = work;

const reference = new Map<string, GPT>();
beforeAll(async () => {
  await tf.setBackend('cpu');
  for (const { name, tokenizer, seed, neverGreedy } of cases) {
    const model = variedGPT(tokenizer, { blockSize: BLOCK_SIZE }, seed, { neverGreedy });
    await exportGPT(model, tokenizer, join(work, name), 'int8');
    reference.set(name, GPT.fromWeights(model.config, model.weights));
  }
});
afterAll(() => {
  for (const model of reference.values()) model.dispose();
});

/**
 * runner-node's (built: dist/) greedy new ids for `prompt` on the int8 graph, in a child
 * process.
 */
function runnerNodeInt8GreedyIds(dir: string, prompt: string, maxNewTokens: number): number[] {
  const script = `
    const { loadModel } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
    const model = await loadModel(${JSON.stringify(dir)}, { dtype: 'q8' });
    const generation = model.generate(${JSON.stringify(prompt)}, { maxNewTokens: ${maxNewTokens}, temperature: 0 });
    await generation.text();
    process.stdout.write(JSON.stringify(generation.stats.tokens));
    await model.dispose();`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  return JSON.parse(out) as number[];
}

function rowsOf(tensor: Tensor): number[][] {
  return (tensor.tolist() as bigint[][]).map((row) => row.map(Number));
}

describe.each(cases)('transformers.js v3 on a $name export', (testCase) => {
  const { name, tokenizer, prompt, prompts } = testCase;
  let hfTokenizer: PreTrainedTokenizer;
  let hfModel: PreTrainedModel;
  /** The tfjs model's greedy continuation of `text`. */
  const greedy = (text: string, count: number) =>
    reference.get(name)!.generate(tokenizer.encode(text), count, { temperature: 0 });
  beforeAll(async () => {
    hfTokenizer = await AutoTokenizer.from_pretrained(name);
    hfModel = await AutoModelForCausalLM.from_pretrained(name, { device: 'cpu' });
  });
  afterAll(() => hfModel.dispose());

  it('pipeline and generate, greedy: the 100 new tokens are the model’s', async () => {
    const expected = greedy(prompt, 100);
    expect(new Set(expected).size).toBeGreaterThan(8);
    for (const text of [prompt, ...prompts])
      expect(hfTokenizer.encode(text)).toEqual(tokenizer.encode(text));
    const promptLength = tokenizer.encode(prompt).length;
    const output = (await hfModel.generate({
      ...hfTokenizer(prompt),
      max_new_tokens: 100,
      do_sample: false,
    })) as Tensor;
    expect(rowsOf(output)[0]!.slice(promptLength)).toEqual(expected);
    const generator = await pipeline('text-generation', name, { device: 'cpu' });
    const [piece] = (await generator(prompt, {
      max_new_tokens: 100,
      do_sample: false,
      return_full_text: false,
    })) as Array<{ generated_text: string }>;
    expect(piece!.generated_text).toBe(tokenizer.decode(expected));
    await generator.dispose();
  });

  it('a left-padded batch of 4 prompts: each row’s 50 new ids are the prompt’s alone', async () => {
    const inputs = hfTokenizer([...prompts], { padding: true });
    const width = inputs.input_ids.dims[1]!;
    const output = (await hfModel.generate({
      ...inputs,
      max_new_tokens: 50,
      do_sample: false,
    })) as Tensor;
    const rows = rowsOf(output);
    for (const [row, text] of prompts.entries())
      expect(rows[row]!.slice(width), `row ${row}`).toEqual(greedy(text, 50));
  });

  it('stops at the window (generation_config max_length)', async () => {
    const untilFull = (await hfModel.generate({
      ...hfTokenizer(prompt),
      do_sample: false,
    })) as Tensor;
    expect(untilFull.dims).toEqual([1, BLOCK_SIZE]);
  });

  it("dtype 'q8' runs onnx/model_quantized.onnx", async () => {
    const q8 = await AutoModelForCausalLM.from_pretrained(name, { device: 'cpu', dtype: 'q8' });
    const output = (await q8.generate({
      ...hfTokenizer(prompt),
      max_new_tokens: 40,
      do_sample: false,
    })) as Tensor;
    const ids = rowsOf(output)[0]!.slice(tokenizer.encode(prompt).length);
    // runner-node's greedy ids on the same file, from a child process (its onnxruntime-node
    // cannot load beside v3's): the int8 graph's own text, not the float model's, which int8
    // weights (logits moved by ~3e-2) leave at the first near tie.
    expect(ids).toEqual(runnerNodeInt8GreedyIds(join(work, name), prompt, 40));
    expect(new Set(ids).size).toBeGreaterThan(4);
    await q8.dispose();
  });
});

describe('transformers.js v3 on a char export, with characters the vocabulary lacks', () => {
  it('maps them to the fallback character, an id inside the embedding', async () => {
    const hfTokenizer = await AutoTokenizer.from_pretrained('char');
    const ids = hfTokenizer.encode('hello WORLD!');
    expect(ids).toEqual(charTokenizer.encode('hello       '));
  });
});
