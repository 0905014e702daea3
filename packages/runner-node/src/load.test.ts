import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportModel } from '@minigpt/export-onnx';
import { GPT, resolveGPTConfig } from '@minigpt/model';
import { Random } from '@minigpt/random';
import { CharTokenizer } from '@minigpt/tokenizer';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerError, loadModel } from './index.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-runner-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const tokenizer = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz .,\n');
let model: GPT;
let exportDir: string;

/** Writes an export of `model` into a fresh directory, as `minigpt export` lays it out. */
async function writeExport(name: string): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir);
  const { onnx, manifest } = exportModel(model.config, await model.weightData(), 'char');
  writeFileSync(join(dir, 'model.onnx'), onnx);
  writeFileSync(join(dir, 'minigpt.json'), JSON.stringify(manifest));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(tokenizer.toJSON()));
  return dir;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  model = GPT.create(resolveGPTConfig({ vocabSize: tokenizer.vocabSize }, 'nano'), {
    log: null,
    random: new Random(8),
  });
  exportDir = await writeExport('good');
});

describe('runner-node', () => {
  it('generates the tfjs model text: greedy, and sampled with the same seed', async () => {
    const loaded = await loadModel(exportDir);
    expect(loaded.device).toBe('cpu');
    const prompt = 'the cat';
    const blockSize = loaded.manifest.model.blockSize;
    for (const options of [
      { temperature: 0 },
      { temperature: 0.9, topK: 10, seed: 3 },
      { temperature: 1.1, topP: 0.9, seed: 4 },
    ]) {
      const reference = tokenizer.decode(model.generate(tokenizer.encode(prompt), 40, options));
      // refill = blockSize: the exact sliding window, as the tfjs model crops its context.
      const text = await loaded
        .generate(prompt, { maxNewTokens: 40, refill: blockSize, ...options })
        .text();
      expect(text).toBe(reference);
    }
    await loaded.dispose();
  });

  it('runs concurrent generations on one model without mixing their caches', async () => {
    const loaded = await loadModel(exportDir);
    const options = (seed: number) => ({ maxNewTokens: 40, seed, temperature: 1 });
    const sequential = [
      await loaded.generate('the', options(1)).text(),
      await loaded.generate('a cat', options(2)).text(),
    ];
    const concurrent = await Promise.all([
      loaded.generate('the', options(1)).text(),
      loaded.generate('a cat', options(2)).text(),
    ]);
    expect(concurrent).toEqual(sequential);
    await loaded.dispose();
  });

  it('reports stats and honours stop strings', async () => {
    const loaded = await loadModel(exportDir);
    const all = await loaded.generate('a', { maxNewTokens: 30, seed: 1 }).text();
    const stop = all.slice(10, 12);
    const generation = loaded.generate('a', { maxNewTokens: 30, seed: 1, stop: [stop] });
    expect(await generation.text()).toBe(all.slice(0, all.indexOf(stop)));
    expect(generation.stats.stopReason).toBe('stop');
    expect(generation.stats.tokensPerSec).toBeGreaterThan(0);
    await loaded.dispose();
  });

  it('falls back from CUDA to CPU with a warning when onnxruntime-node has no CUDA files', async () => {
    const warnings: string[] = [];
    const loaded = await loadModel(exportDir, {
      device: 'cuda',
      onWarning: (w) => warnings.push(w),
    });
    expect(loaded.device).toBe('cpu');
    expect(warnings[0]).toMatch(
      /CUDA is not available .*running on CPU.*--onnxruntime-node-install=cuda12/,
    );
    await loaded.dispose();
  });

  it('explains bad exports: missing or truncated model.onnx, another manifest version, a mismatched vocab', async () => {
    const missing = await writeExport('missing');
    rmSync(join(missing, 'model.onnx'));
    await expect(loadModel(missing)).rejects.toThrow(
      /model\.onnx: not found\. Export the checkpoint again/,
    );

    const truncated = await writeExport('truncated');
    truncateSync(join(truncated, 'model.onnx'), 5000);
    const error = await loadModel(truncated).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RunnerError);
    expect((error as Error).message).toMatch(
      /model\.onnx: onnxruntime cannot load it \(5000 bytes\) — truncated or damaged\?/,
    );

    const newer = await writeExport('newer');
    const manifest = JSON.parse(readFileSync(join(newer, 'minigpt.json'), 'utf8'));
    writeFileSync(join(newer, 'minigpt.json'), JSON.stringify({ ...manifest, formatVersion: 2 }));
    await expect(loadModel(newer)).rejects.toThrow(
      /minigpt\.json: format version 2, but this runner reads version 1/,
    );

    const mismatched = await writeExport('mismatched');
    writeFileSync(
      join(mismatched, 'vocab.json'),
      JSON.stringify(CharTokenizer.fromText('xyz').toJSON()),
    );
    await expect(loadModel(mismatched)).rejects.toThrow(
      /vocab\.json: the tokenizer has 3 tokens but the model \(minigpt\.json\) has 30/,
    );

    await expect(loadModel(join(work, 'nowhere'))).rejects.toThrow(
      /nowhere\/minigpt\.json: not found/,
    );
  });

  it('explains bad prompts and settings', async () => {
    const loaded = await loadModel(exportDir);
    expect(() => loaded.generate('hello WORLD')).toThrow(/"W" \(U\+0057\) at position 6/);
    expect(() => loaded.generate('hi', { maxNewTokens: 0 })).toThrow(
      /maxNewTokens must be a positive integer/,
    );
    expect(() => loaded.generate('hi', { maxNewTokens: -3 })).toThrow(
      /maxNewTokens must be a positive integer/,
    );
    await loaded.dispose();
  });
});
