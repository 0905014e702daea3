// runner-web in Node, on onnxruntime-web's wasm backend (the browser test of the demo covers
// WebGPU): same text as runner-node, files over HTTP or in memory, clear errors, and
// manifests from elsewhere that name files outside the base URL or contradict the graph.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportModel } from '@minigpt/export-onnx';
import { GPT, resolveGPTConfig } from '@minigpt/model';
import { Random } from '@minigpt/random';
import { loadModel as loadNodeModel } from '@minigpt/runner-node';
import { MinigptError } from '@minigpt/errors';
import { ManifestError } from '@minigpt/runtime';
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

describe('runner-web on exports from elsewhere', () => {
  type Json = Record<string, Record<string, unknown>>;
  const exported = () =>
    JSON.parse(readFileSync(join(work, 'export', 'minigpt.json'), 'utf8')) as Json;

  /** Serves `manifest` beside the export's files under /<name>/, as a host would. */
  function host(name: string, manifest: Json): string {
    const dir = join(work, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'minigpt.json'), JSON.stringify(manifest));
    for (const file of ['model.onnx', 'vocab.json'])
      writeFileSync(join(dir, file), readFileSync(join(work, 'export', file)));
    return `${baseUrl}/${name}`;
  }

  /** The global fetch, recording each URL asked for. */
  function recordingFetch(): { fetch: typeof fetch; urls: string[] } {
    const urls: string[] = [];
    return {
      urls,
      fetch: (input, init) => {
        urls.push(String(input));
        return fetch(input, init);
      },
    };
  }

  it('fetches the model and vocab beside minigpt.json, by the names it lists', async () => {
    const base = host('plain-names', exported());
    const { fetch, urls } = recordingFetch();
    const web = await loadModel(base, { device: 'wasm', fetch });
    expect(urls).toEqual([`${base}/minigpt.json`, `${base}/vocab.json`, `${base}/model.onnx`]);
    await web.dispose();
  });

  it('refuses file names that would leave the base URL, fetching nothing but minigpt.json', async () => {
    // The export is also served at /export/: a name reaching it would load.
    const names: Array<[string, string, string]> = [
      ['model', '../export/model.onnx', 'is a path'],
      ['model', '/export/model.onnx', 'is a path'],
      ['vocab', `${baseUrl}/export/vocab.json`, 'is a path'],
      ['vocab', '//evil.example/vocab.json', 'is a path'],
      ['model', 'http:model.onnx', 'is a URL or drive path'],
      ['model', '%2e%2e', 'has characters other than'],
      ['vocab', '..', "contains '\\.\\.'"],
      ['model', 'model.onnx?x=../../export/model.onnx', 'is a path'],
      ['model', 'model.onnx#', 'has characters other than'],
    ];
    for (const [index, [key, name, reason]] of names.entries()) {
      const manifest = exported();
      manifest['files']![key] = name;
      const base = host(`escape-${index}`, manifest);
      const { fetch, urls } = recordingFetch();
      const error = await loadModel(base, { device: 'wasm', fetch }).catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(ManifestError);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^${base}/minigpt\\.json: "files\\.${key}": must be a plain file name inside the export directory, but it ${reason}`,
        ),
      );
      expect(urls).toEqual([`${base}/minigpt.json`]);
    }
  });

  it('refuses a manifest the graph contradicts (layers, width, heads, names) before running', async () => {
    const files = {
      model: readFileSync(join(work, 'export', 'model.onnx')),
      vocab: tokenizer.toJSON(),
    };
    const lies: Array<[(manifest: Json) => void, RegExp]> = [
      [
        (manifest) => (manifest['model']!['nLayer'] = 3),
        /the graph has no input "past_key_values\.2\.key" \(layer 2; minigpt\.json says model\.nLayer = 3\)/,
      ],
      [
        (manifest) => (manifest['model']!['nLayer'] = 1),
        /the graph has input "past_key_values\.1\.key" for layer 1, but minigpt\.json says model\.nLayer = 1/,
      ],
      [
        (manifest) => (manifest['model']!['nEmbd'] = 64),
        /dim 3 of input "past_key_values\.0\.key" .* is 16, but minigpt\.json says the head size, model\.nEmbd \/ model\.nHead = 64 \/ 2 = 32/,
      ],
      [
        (manifest) => (manifest['model']!['nHead'] = 4),
        /dim 1 of input "past_key_values\.0\.key" .* is 2, but minigpt\.json says model\.nHead = 4/,
      ],
      [
        (manifest) => (manifest['outputs']!['newValue'] = 'rows.{i}.value'),
        /the graph has no output "rows\.0\.value"/,
      ],
    ];
    for (const [edit, want] of lies) {
      const manifest = exported();
      edit(manifest);
      const error = await loadModel({ ...files, manifest }, { device: 'wasm' }).catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(WebRunnerError);
      expect(error).toBeInstanceOf(MinigptError);
      expect((error as WebRunnerError).rule).toBe('graph');
      expect((error as Error).message).toMatch(/^model\.onnx: /);
      expect((error as Error).message).toMatch(want);
      expect((error as Error).message).toMatch(/re-export the checkpoint with `minigpt export`$/);
    }
  });
});
