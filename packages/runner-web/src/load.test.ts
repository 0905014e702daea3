// runner-web in Node, on onnxruntime-web's wasm backend (the browser test of the demo covers
// WebGPU): same text as runner-node (float32 and int8 graphs), a batch equal to its prompts
// alone, files over HTTP or in memory, clear errors, and manifests from elsewhere that name
// files outside the base URL or contradict the graph.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Weight } from '@minigpt/export-onnx';
import { writeExport } from '@minigpt/export-onnx/node';
import { GPT, resolveGPTConfig, type GPTConfig } from '@minigpt/model';
import { Random } from '@minigpt/random';
import { loadModel as loadNodeModel } from '@minigpt/runner-node';
import { MinigptError } from '@minigpt/errors';
import { ManifestError } from '@minigpt/runtime';
import { CharTokenizer } from '@minigpt/tokenizer';
import * as tf from '@tensorflow/tfjs';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebRunnerError, hasWebGpuAdapter, loadModel } from './index.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-runner-web-test-'));
const tokenizer = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz .,\n');
const WIDE = resolveGPTConfig(
  { vocabSize: tokenizer.vocabSize, blockSize: 128, nLayer: 2, nHead: 4, nEmbd: 64 },
  'nano',
);
let server: Server;
let baseUrl: string;

/** Writes an export of a randomly initialised GPT into work/<name>, as `minigpt export` does. */
async function exportRandomModel(
  name: string,
  config: GPTConfig,
  options: { seed: number; weightScale?: number; quantize?: 'int8'; fused?: boolean },
): Promise<void> {
  const model = GPT.create(config, { log: null, random: new Random(options.seed) });
  const weights = new Map<string, Weight>();
  for (const [weightName, weight] of await model.weightData()) {
    // GPT-2's init (std 0.02) gives nearly uniform logits, so greedy text repeats one
    // character; larger weights give a model whose next token depends on its context.
    const scale = options.weightScale ?? 1;
    weights.set(weightName, { shape: weight.shape, data: weight.data.map((x) => x * scale) });
  }
  model.dispose();
  await writeExport(
    { config, weights, tokenizer: tokenizer.toJSON() },
    {
      outDir: join(work, name),
      ...(options.quantize ? { quantize: options.quantize } : {}),
      ...(options.fused ? { fused: true } : {}),
    },
  );
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  // nano: blockSize 16, so generations pass it and the cache is rebuilt on the way.
  await exportRandomModel('export', resolveGPTConfig({ vocabSize: tokenizer.vocabSize }, 'nano'), {
    seed: 5,
  });
  // Long enough for a batch of 40-token prompts plus what they generate, with an int8 graph.
  await exportRandomModel(
    'wide',
    resolveGPTConfig(
      { vocabSize: tokenizer.vocabSize, blockSize: 128, nLayer: 2, nHead: 4, nEmbd: 64 },
      'nano',
    ),
    { seed: 7, weightScale: 8, quantize: 'int8' },
  );
  // The same weights (same seed) as 'wide', in the fused graph (com.microsoft operators).
  await exportRandomModel('wide-fused', WIDE, {
    seed: 7,
    weightScale: 8,
    quantize: 'int8',
    fused: true,
  });
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

/** The export's files, read from work/<name>, as a page holding them in memory passes them. */
function inMemoryFiles(name: string) {
  const dir = join(work, name);
  return {
    model: readFileSync(join(dir, 'onnx', 'model.onnx')),
    manifest: JSON.parse(readFileSync(join(dir, 'minigpt.json'), 'utf8')) as Record<
      string,
      unknown
    >,
    vocab: JSON.parse(readFileSync(join(dir, 'tokenizer.minigpt.json'), 'utf8')) as object,
  };
}

describe('runner-web (Node, wasm)', () => {
  it('loads from a base URL and writes the same text as runner-node for the same seed', async () => {
    const web = await loadModel(`${baseUrl}/export`, { device: 'auto' });
    expect(web.device).toBe((await hasWebGpuAdapter()) ? 'webgpu' : 'wasm');
    expect(web.dtype).toBe('fp32');
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

  it("writes runner-node's greedy text for a model whose text depends on its context", async () => {
    const web = await loadModel(`${baseUrl}/wide`, { device: 'wasm' });
    const node = await loadNodeModel(join(work, 'wide'));
    const settings = { maxNewTokens: 80, temperature: 0 };
    const generation = web.generate('the quick brown fox', settings);
    const text = await generation.text();
    expect(text).toBe(await node.generate('the quick brown fox', settings).text());
    // Not one character over and over: the comparison above would then prove little.
    expect(new Set(generation.stats.tokens).size).toBeGreaterThanOrEqual(5);
    await web.dispose();
    await node.dispose();
  });

  it('generates a batch of prompts of different lengths as each prompt alone', async () => {
    const web = await loadModel(`${baseUrl}/wide`, { device: 'wasm' });
    const random = new Random(21);
    const letters = 'abcdefghijklmnopqrstuvwxyz ';
    const prompts = [1, 9, 26, 40].map((length) =>
      Array.from({ length }, () => letters[random.nextInt(letters.length)]).join(''),
    );
    // 40 prompt + 60 new tokens stay within blockSize 128: no rebuild of the shared cache.
    const settings = { maxNewTokens: 60, temperature: 0 };
    const batch = web.generateBatch(prompts, settings);
    const texts = await batch.texts();
    for (const [index, prompt] of prompts.entries()) {
      expect(texts[index]).toBe(await web.generate(prompt, settings).text());
      expect(new Set(batch.rows[index]!.stats.tokens).size).toBeGreaterThanOrEqual(4);
    }
    // Sampled: row i draws from seed + i, as the prompt alone does with that seed.
    const sampled = { maxNewTokens: 60, temperature: 1, seed: 40 };
    const sampledTexts = await web.generateBatch(prompts, sampled).texts();
    for (const [index, prompt] of prompts.entries()) {
      expect(sampledTexts[index]).toBe(
        await web.generate(prompt, { ...sampled, seed: 40 + index }).text(),
      );
    }
    await web.dispose();
  });

  it("loads the int8 graph for dtype 'q8' and writes runner-node's q8 text", async () => {
    const { fetch, urls } = recordingFetch();
    const web = await loadModel(`${baseUrl}/wide`, { device: 'wasm', dtype: 'q8', fetch });
    expect(web.dtype).toBe('q8');
    expect(urls).toEqual([
      `${baseUrl}/wide/minigpt.json`,
      `${baseUrl}/wide/tokenizer.minigpt.json`,
      `${baseUrl}/wide/onnx/model_quantized.onnx`,
    ]);
    const node = await loadNodeModel(join(work, 'wide'), { dtype: 'q8' });
    const float = await loadModel(`${baseUrl}/wide`, { device: 'wasm' });
    const settings = { maxNewTokens: 80, temperature: 0 };
    const text = await web.generate('the quick brown fox', settings).text();
    expect(text).toBe(await node.generate('the quick brown fox', settings).text());
    // The int8 graph is its own model: a q8 load that ran the float graph would fail here.
    expect(text).not.toBe(await float.generate('the quick brown fox', settings).text());
    await Promise.all([web.dispose(), node.dispose(), float.dispose()]);
  });

  it("runs the fused graph (com.microsoft operators) to runner-node's text and the standard graph's", async () => {
    const settings = { maxNewTokens: 80, temperature: 0 };
    const prompts = ['the quick brown fox', 'a'];
    const web = await loadModel(`${baseUrl}/wide-fused`, { device: 'wasm' });
    const node = await loadNodeModel(join(work, 'wide-fused'));
    const standard = await loadNodeModel(join(work, 'wide'));
    const texts = await web.generateBatch(prompts, settings).texts();
    for (const [index, prompt] of prompts.entries()) {
      expect(texts[index], prompt).toBe(await node.generate(prompt, settings).text());
      expect(texts[index], prompt).toBe(await standard.generate(prompt, settings).text());
    }
    await Promise.all([web.dispose(), node.dispose(), standard.dispose()]);
  });

  it("runs the fused int8 graph to runner-node's logits, prefill and cached decode", async () => {
    // Greedy text is no test here: int8 quantizes each step's activations, so last-bit
    // differences between two builds of onnxruntime move some values across a rounding
    // boundary and a near tie can flip. Logits are compared instead.
    const model = readFileSync(join(work, 'wide-fused', 'onnx', 'model_quantized.onnx'));
    const web = await ortWeb.InferenceSession.create(model);
    const node = await ortNode.InferenceSession.create(model);
    const { nLayer, nHead, nEmbd } = WIDE;
    type Runtime = typeof ortWeb | typeof ortNode;
    const feeds = (ort: Runtime, ids: number[], past: number, cache?: Record<string, unknown>) => {
      const int64 = (values: number[]) =>
        new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [1, values.length]);
      const result: Record<string, unknown> = {
        input_ids: int64(ids),
        attention_mask: int64(new Array<number>(past + ids.length).fill(1)),
        position_ids: int64(ids.map((_, t) => past + t)),
      };
      for (let layer = 0; layer < nLayer; layer++)
        for (const kind of ['key', 'value'])
          result[`past_key_values.${layer}.${kind}`] =
            cache?.[`present.${layer}.${kind}`] ??
            new ort.Tensor('float32', new Float32Array(0), [1, nHead, 0, nEmbd / nHead]);
      return result as never;
    };
    const ids = Array.from(tokenizer.encode('the quick brown fox'));
    let [webOut, nodeOut] = await Promise.all([
      web.run(feeds(ortWeb, ids, 0)),
      node.run(feeds(ortNode, ids, 0)),
    ]);
    for (let step = 0; step < 4; step++) {
      const webLogits = webOut['logits']!.data as Float32Array;
      const nodeLogits = nodeOut['logits']!.data as Float32Array;
      let maxDiff = 0;
      for (let i = 0; i < nodeLogits.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs(webLogits[i]! - nodeLogits[i]!));
      console.log(`fused int8, step ${step}: max |Δlogit| web vs node ${maxDiff.toExponential(2)}`);
      expect(maxDiff, `step ${step}`).toBeLessThanOrEqual(1e-3);
      const next = [step + 3];
      const past = ids.length + step;
      [webOut, nodeOut] = await Promise.all([
        web.run(feeds(ortWeb, next, past, webOut)),
        node.run(feeds(ortNode, next, past, nodeOut)),
      ]);
    }
    await Promise.all([web.release(), node.release()]);
  });

  it("refuses dtype 'q8' for an export without an int8 graph, before fetching a model", async () => {
    const { fetch, urls } = recordingFetch();
    const error = await loadModel(`${baseUrl}/export`, {
      device: 'wasm',
      dtype: 'q8',
      fetch,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WebRunnerError);
    expect((error as Error).message).toMatch(
      /export\/minigpt\.json: this export has no int8 model .*minigpt export --quantize int8/,
    );
    expect(urls).toEqual([
      `${baseUrl}/export/minigpt.json`,
      `${baseUrl}/export/tokenizer.minigpt.json`,
    ]);
  });

  it('loads from in-memory files', async () => {
    const web = await loadModel(inMemoryFiles('export'), { device: 'wasm' });
    expect(await web.generate('a', { maxNewTokens: 10, temperature: 0 }).text()).toHaveLength(10);
    await web.dispose();
  });

  it('runs a manifest without newKey/newValue (present fed back) to the same text', async () => {
    const files = inMemoryFiles('export');
    const outputs = files.manifest['outputs'] as Record<string, string>;
    expect(outputs['newKey']).toBe('new_key_values.{i}.key');
    const presentOnly = { ...outputs };
    delete presentOnly['newKey'];
    delete presentOnly['newValue'];
    const current = await loadModel(files, { device: 'wasm' });
    const older = await loadModel(
      { ...files, manifest: { ...files.manifest, outputs: presentOnly } },
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
    const files = inMemoryFiles('export');
    await expect(
      loadModel(
        { ...files, manifest: { ...files.manifest, formatVersion: 3 } },
        { device: 'wasm' },
      ),
    ).rejects.toThrow(/format version 3, but this runner reads version 2\. Upgrade/);
    const error = await loadModel(
      { ...files, vocab: CharTokenizer.fromText('xyz').toJSON() },
      { device: 'wasm' },
    ).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WebRunnerError);
    expect((error as Error).message).toMatch(
      /^tokenizer\.minigpt\.json: the tokenizer has 3 tokens but the model \(minigpt\.json\) has 30/,
    );
    await expect(
      loadModel({ ...files, model: files.model.subarray(0, 4000) }, { device: 'wasm' }),
    ).rejects.toThrow(/cannot load it on wasm \(4000 bytes\) — truncated or damaged/);
  });
});

describe('runner-web on exports from elsewhere', () => {
  type Json = Record<string, Record<string, unknown>>;
  const exported = () =>
    JSON.parse(readFileSync(join(work, 'export', 'minigpt.json'), 'utf8')) as Json;

  /** Serves `manifest` beside a copy of the export's files under /<name>/, as a host would. */
  function host(name: string, manifest: object): string {
    const dir = join(work, name);
    cpSync(join(work, 'export'), dir, { recursive: true });
    writeFileSync(join(dir, 'minigpt.json'), JSON.stringify(manifest));
    return `${baseUrl}/${name}`;
  }

  it('fetches the model and tokenizer under the base URL, by the paths minigpt.json lists', async () => {
    const base = host('plain-names', exported());
    const { fetch, urls } = recordingFetch();
    const web = await loadModel(base, { device: 'wasm', fetch });
    expect(urls).toEqual([
      `${base}/minigpt.json`,
      `${base}/tokenizer.minigpt.json`,
      `${base}/onnx/model.onnx`,
    ]);
    await web.dispose();
  });

  it('refuses a format-1 export (minigpt.json, model.onnx, vocab.json) with a message to re-export', async () => {
    // A version-1 manifest as minigpt wrote it before the Hugging Face layout.
    const manifest = exported();
    const formatOne = {
      ...manifest,
      formatVersion: 1,
      inputs: {
        inputIds: 'input_ids',
        pastKey: 'past_key_values.{i}.key',
        pastValue: 'past_key_values.{i}.value',
      },
      files: { model: 'model.onnx', vocab: 'vocab.json' },
    };
    const base = host('format-one', formatOne);
    const { fetch, urls } = recordingFetch();
    const error = await loadModel(base, { device: 'wasm', fetch }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as Error).message).toBe(
      `${base}/minigpt.json: format version 1, but this runner reads version 2. Re-export the checkpoint with \`minigpt export\`.`,
    );
    expect(urls).toEqual([`${base}/minigpt.json`]);
  });

  it('refuses file paths that would leave the base URL, fetching nothing but minigpt.json', async () => {
    // The export is also served at /export/: a path reaching it would load.
    const names: Array<[string, string, string]> = [
      ['model', '../export/onnx/model.onnx', `has a part ".." that contains '\\.\\.'`],
      ['model', 'onnx/../../model.onnx', `has a part ".." that contains '\\.\\.'`],
      ['model', '/export/onnx/model.onnx', 'has a part "" that is empty'],
      ['vocab', `${baseUrl}/export/tokenizer.minigpt.json`, 'has more than 4 levels'],
      ['vocab', '//evil.example/vocab.json', 'has a part "" that is empty'],
      ['model', 'http:model.onnx', "is a URL or drive path \\(contains ':'\\)"],
      ['model', '%2e%2e/onnx/model.onnx', 'has a part "%2e%2e" that has characters other than'],
      ['vocab', '..', "contains '\\.\\.'"],
      [
        'model',
        'onnx/model.onnx?x=1',
        'has a part "model.onnx\\?x=1" that has characters other than',
      ],
      ['model', 'onnx/model.onnx#', 'has a part "model.onnx#" that has characters other than'],
      // Refused even when the float graph is the one loaded: the manifest is refused whole.
      ['modelQuantized', '../export/onnx/model.onnx', `has a part ".." that contains '\\.\\.'`],
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
          `^${base}/minigpt\\.json: "files\\.${key}": must be a path of plain names inside the export directory, but it ${reason}`,
        ),
      );
      expect(urls).toEqual([`${base}/minigpt.json`]);
    }
  });

  it('refuses a manifest the graph contradicts (layers, width, heads, names) before running', async () => {
    const files = inMemoryFiles('export');
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
        (manifest) => (manifest['inputs']!['positionIds'] = 'positions'),
        /the graph has no input "positions"/,
      ],
      [
        (manifest) => (manifest['outputs']!['newValue'] = 'rows.{i}.value'),
        /the graph computes no values named as minigpt\.json's outputs\.newKey "new_key_values\.\{i\}\.key" and outputs\.newValue "rows\.\{i\}\.value" say/,
      ],
    ];
    for (const [edit, want] of lies) {
      const manifest = structuredClone(files.manifest) as Json;
      edit(manifest);
      const error = await loadModel({ ...files, manifest }, { device: 'wasm' }).catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(WebRunnerError);
      expect(error).toBeInstanceOf(MinigptError);
      expect((error as WebRunnerError).rule).toBe('graph');
      expect((error as Error).message).toMatch(/^onnx\/model\.onnx: /);
      expect((error as Error).message).toMatch(want);
      expect((error as Error).message).toMatch(/re-export the checkpoint with `minigpt export`$/);
    }
  });
});
