// runner-web (Node, onnxruntime-web's wasm) on a GPT-2-shaped export: vocabulary 50257,
// GPT-2's own tokenizer, tanh GELU, biases. Its greedy ids are runner-node's, and each is the
// argmax of the tfjs model's logits by a clear margin. (runner-node's gpt2-export.slow.test.ts
// holds the same model to the tfjs model's own generate and to transformers.js.)
//
// GPT-2's tokenizer files are rebuilt from js-tiktoken's ranks by @minigpt/gpt2-reference
// (tooling/).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as reference from '@minigpt/gpt2-reference';
import { writeExport } from '@minigpt/export-onnx/node';
import { GPT, resolveGPTConfig, weightShapes, type WeightData } from '@minigpt/model';
import { Random } from '@minigpt/random';
import { loadModel as loadNodeModel, type LoadedModel } from '@minigpt/runner-node';
import { bpeFromHuggingFace, type BpeTokenizer } from '@minigpt/tokenizer';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type WebLoadedModel } from './index.js';

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
 * GPT-2-shaped weights from a seeded normal, std 0.4 (at GPT-2's init of 0.02 greedy decoding
 * repeats one id and any two runners agree trivially); biases and LayerNorm parameters drawn
 * too. The <|endoftext|> row of wte (the tied LM head) is zero, so its logit is exactly 0 and
 * never the argmax.
 */
function gpt2ShapedWeights(seed: number): Map<string, WeightData> {
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
  return weights;
}

const work = mkdtempSync(join(tmpdir(), 'minigpt-runner-web-gpt2-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('runner-web (wasm) on a GPT-2-shaped export (vocab 50257, tanh GELU)', () => {
  let tokenizer: BpeTokenizer;
  let tfjsModel: GPT;
  let web: WebLoadedModel;
  let node: LoadedModel;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    tokenizer = bpeFromHuggingFace(reference.gpt2Files().tokenizerJson, 'gpt2/tokenizer.json');
    const weights = gpt2ShapedWeights(14);
    const dir = join(work, 'gpt2');
    await writeExport({ config, weights, tokenizer: tokenizer.toJSON() }, { outDir: dir });
    tfjsModel = GPT.fromWeights(config, weights);
    const readJson = (file: string) =>
      JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
    // The files as a page holding them in memory passes them.
    web = await loadModel(
      {
        model: readFileSync(join(dir, 'onnx', 'model.onnx')),
        manifest: readJson('minigpt.json'),
        vocab: readJson('tokenizer.minigpt.json'),
      },
      { device: 'wasm' },
    );
    node = await loadNodeModel(dir, { dtype: 'fp32' });
  });
  afterAll(async () => {
    tfjsModel.dispose();
    await web.dispose();
    await node.dispose();
  });

  it.each(prompts)('writes runner-node’s greedy ids and text: %j', async (prompt) => {
    const settings = { maxNewTokens: NEW_TOKENS, temperature: 0 };
    const fromWeb = web.generate(prompt, settings);
    const fromNode = node.generate(prompt, settings);
    const text = await fromWeb.text();
    const nodeText = await fromNode.text();
    expect(fromWeb.stats.tokens).toEqual(fromNode.stats.tokens);
    expect(text).toBe(nodeText);
    expect(text).toBe(tokenizer.decode(fromWeb.stats.tokens));
    // Varied text, never <|endoftext|>: agreeing on it says something.
    expect(new Set(fromWeb.stats.tokens).size).toBeGreaterThan(15);
    expect(fromWeb.stats.tokens).not.toContain(END_OF_TEXT);

    // The tfjs model, over prompt + new ids at once (causal attention, all within
    // blockSize): each new id is its step's argmax, ahead of the next by far more than
    // float32 differences between implementations.
    const promptIds = tokenizer.encode(prompt);
    const all = [...promptIds, ...fromWeb.stats.tokens];
    expect(all.length).toBeLessThanOrEqual(config.blockSize);
    const logits = tf.tidy(() => {
      const out = tfjsModel.forward(tf.tensor2d([all], [1, all.length], 'int32')); // (1, T, V)
      return tf.slice(out, [0, promptIds.length - 1, 0], [1, NEW_TOKENS, -1]); // (1, 40, V)
    });
    const rows = logits.dataSync();
    logits.dispose();
    fromWeb.stats.tokens.forEach((chosen, step) => {
      const row = rows.subarray(step * config.vocabSize, (step + 1) * config.vocabSize);
      let runnerUp = -Infinity;
      row.forEach((value, id) => {
        if (id !== chosen) runnerUp = Math.max(runnerUp, value);
      });
      expect(row[chosen]! - runnerUp, `step ${step}`).toBeGreaterThan(1e-3);
    });
  });
});
