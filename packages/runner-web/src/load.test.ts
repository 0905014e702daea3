// runner-web in Node, on onnxruntime-web's wasm backend (the browser test of the demo covers
// WebGPU): same text as runner-node, files over HTTP or in memory, clear errors.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportModel } from '@minigpt/export-onnx';
import { GPT, resolveGPTConfig } from '@minigpt/model';
import { Random } from '@minigpt/random';
import { loadModel as loadNodeModel } from '@minigpt/runner-node';
import { CharTokenizer } from '@minigpt/tokenizer';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebRunnerError, hasWebGpuAdapter, loadModel } from './index.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-runner-web-test-'));
const tokenizer = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz .,\n');
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = GPT.create(resolveGPTConfig({ vocabSize: tokenizer.vocabSize }, 'nano'), {
    log: null,
    random: new Random(5),
  });
  const { onnx, manifest } = exportModel(model.config, await model.weightData(), 'char');
  model.dispose();
  const dir = join(work, 'export');
  mkdirSync(dir);
  writeFileSync(join(dir, 'model.onnx'), onnx);
  writeFileSync(join(dir, 'minigpt.json'), JSON.stringify(manifest));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(tokenizer.toJSON()));
  server = createServer((request, response) => {
    try {
      response.end(readFileSync(join(work, decodeURIComponent(request.url ?? '/'))));
    } catch {
      response.statusCode = 404;
      response.end('not found');
    }
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((closed) => server.close(() => closed()));
  rmSync(work, { recursive: true, force: true });
});

describe('runner-web (Node, wasm)', () => {
  it('loads from a base URL and writes the same text as runner-node for the same seed', async () => {
    const web = await loadModel(`${baseUrl}/export`, { device: 'auto' });
    expect(web.device).toBe((await hasWebGpuAdapter()) ? 'webgpu' : 'wasm');
    const node = await loadNodeModel(join(work, 'export'));
    for (const options of [
      { temperature: 0 },
      { temperature: 0.9, seed: 11 },
      { temperature: 1, topK: 5, seed: 12 },
    ]) {
      const settings = { maxNewTokens: 40, ...options };
      expect(await web.generate('the cat', settings).text()).toBe(
        await node.generate('the cat', settings).text(),
      );
    }
    await web.dispose();
    await node.dispose();
  });

  it('loads from in-memory files', async () => {
    const dir = join(work, 'export');
    const web = await loadModel(
      {
        model: readFileSync(join(dir, 'model.onnx')),
        manifest: JSON.parse(readFileSync(join(dir, 'minigpt.json'), 'utf8')),
        vocab: JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')),
      },
      { device: 'wasm' },
    );
    expect(await web.generate('a', { maxNewTokens: 10, temperature: 0 }).text()).toHaveLength(10);
    await web.dispose();
  });

  it('runs an export made before new_key_values existed (present fed back) to the same text', async () => {
    const dir = join(work, 'export');
    const manifest = JSON.parse(readFileSync(join(dir, 'minigpt.json'), 'utf8'));
    expect(manifest.outputs.newKey).toBe('new_key_values.{i}.key');
    const olderOutputs = { ...manifest.outputs };
    delete olderOutputs.newKey;
    delete olderOutputs.newValue;
    const files = {
      model: readFileSync(join(dir, 'model.onnx')),
      vocab: tokenizer.toJSON(),
    };
    const current = await loadModel({ ...files, manifest }, { device: 'wasm' });
    const older = await loadModel(
      { ...files, manifest: { ...manifest, outputs: olderOutputs } },
      { device: 'wasm' },
    );
    // Past blockSize (16 for nano) too, so the cache is rebuilt on the way.
    const settings = { maxNewTokens: 150, temperature: 0.8, seed: 3 };
    const text = await current.generate('the dog', settings).text();
    expect(text).toHaveLength(150);
    expect(await older.generate('the dog', settings).text()).toBe(text);
    await current.dispose();
    await older.dispose();
  });

  it('rejects a thread count that is not a positive integer', async () => {
    await expect(loadModel(`${baseUrl}/export`, { device: 'wasm', threads: 0 })).rejects.toThrow(
      /threads must be a positive integer, got 0/,
    );
  });

  it('explains a missing export, another manifest version and a mismatched vocab', async () => {
    await expect(loadModel(`${baseUrl}/nowhere`, { device: 'wasm' })).rejects.toThrow(
      /nowhere\/minigpt\.json: HTTP 404 .* is the export served at this URL\?/,
    );
    const manifest = JSON.parse(readFileSync(join(work, 'export', 'minigpt.json'), 'utf8'));
    const files = {
      model: readFileSync(join(work, 'export', 'model.onnx')),
      vocab: tokenizer.toJSON(),
    };
    await expect(
      loadModel({ ...files, manifest: { ...manifest, formatVersion: 2 } }, { device: 'wasm' }),
    ).rejects.toThrow(/format version 2, but this runner reads version 1/);
    const error = await loadModel(
      { ...files, manifest, vocab: CharTokenizer.fromText('xyz').toJSON() },
      { device: 'wasm' },
    ).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WebRunnerError);
    expect((error as Error).message).toMatch(
      /the tokenizer has 3 tokens but the model \(minigpt\.json\) has 30/,
    );
    await expect(
      loadModel({ ...files, manifest, model: files.model.subarray(0, 4000) }, { device: 'wasm' }),
    ).rejects.toThrow(/cannot load it on wasm \(4000 bytes\) — truncated or damaged/);
  });
});
