// runner-node on real exports of a tiny GPT: the tfjs model's text, concurrency, CUDA
// fallback, and export directories from elsewhere — damaged, escaping the directory through
// names or symlinks, or with a manifest the graph contradicts.
import { execFileSync } from 'node:child_process';
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  mkdirSync,
  renameSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MinigptError } from '@minigpt/errors';
import { exportModel } from '@minigpt/export-onnx';
import { GPT, resolveGPTConfig } from '@minigpt/model';
import { Random } from '@minigpt/random';
import { ManifestError } from '@minigpt/runtime';
import { CharTokenizer } from '@minigpt/tokenizer';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
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
  mkdirSync(dir, { recursive: true });
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
    // A machine without CUDA, whatever this one has: the CUDA provider fails to start.
    const requested: string[][] = [];
    const createSession = (path: string, options: ort.InferenceSession.SessionOptions) => {
      const providers = (options.executionProviders ?? []) as string[];
      requested.push(providers);
      if (providers.includes('cuda')) {
        return Promise.reject(new Error('Failed to load libonnxruntime_providers_cuda.so'));
      }
      return ort.InferenceSession.create(path, options);
    };
    const warnings: string[] = [];
    const loaded = await loadModel(exportDir, {
      device: 'cuda',
      onWarning: (w) => warnings.push(w),
      createSession,
    });
    expect(loaded.device).toBe('cpu');
    expect(requested).toEqual([['cuda'], ['cpu']]);
    expect(warnings).toEqual([
      'CUDA is not available (Failed to load libonnxruntime_providers_cuda.so); running on CPU. For CUDA, install onnxruntime-node with its CUDA files: npm i onnxruntime-node --onnxruntime-node-install=cuda12',
    ]);
    expect(await loaded.generate('a', { maxNewTokens: 5, seed: 1 }).text()).toHaveLength(5);
    await loaded.dispose();
  });

  it('runs on CUDA when the provider starts, without a warning', async () => {
    // A machine with CUDA: the provider accepts the session (here it is the CPU one inside).
    const warnings: string[] = [];
    const loaded = await loadModel(exportDir, {
      device: 'cuda',
      onWarning: (w) => warnings.push(w),
      createSession: (path, options) =>
        ort.InferenceSession.create(path, { ...options, executionProviders: ['cpu'] }),
    });
    expect(loaded.device).toBe('cuda');
    expect(warnings).toEqual([]);
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

type Json = Record<string, Record<string, unknown>>;

/** A fresh export whose minigpt.json is changed by `edit`. */
async function exportWithManifest(name: string, edit: (manifest: Json) => void): Promise<string> {
  const dir = await writeExport(name);
  const manifest = JSON.parse(readFileSync(join(dir, 'minigpt.json'), 'utf8')) as Json;
  edit(manifest);
  writeFileSync(join(dir, 'minigpt.json'), JSON.stringify(manifest));
  return dir;
}

/** The error loadModel rejects with. */
async function loadError(dir: string): Promise<MinigptError> {
  const error = await loadModel(dir).then(
    (loaded) => {
      void loaded.dispose();
      throw new Error(`${dir} loaded`);
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(MinigptError);
  return error as MinigptError;
}

describe('runner-node on export directories from elsewhere', () => {
  // A complete, valid export outside the directories under test: were any of its files read,
  // the load would succeed (or fail later, with another message) instead of being refused.
  let outside: string;
  beforeAll(async () => {
    outside = await writeExport('outside');
  });

  it('refuses manifest file names that leave the directory, reading nothing there', async () => {
    const cases: Array<[string, string, string]> = [
      ['model', '../../outside/model.onnx', 'is a path'],
      ['model', join(work, 'outside', 'model.onnx'), 'is a path'],
      ['vocab', '../../outside/vocab.json', 'is a path'],
      ['vocab', '..', "contains '\\.\\.'"],
      ['model', 'file:model.onnx', 'is a URL or drive path'],
    ];
    for (const [index, [key, name, reason]] of cases.entries()) {
      // dirs/<n>/ is two levels below work/, so ../../outside is the valid export.
      const dir = await exportWithManifest(join('dirs', String(index)), (manifest) => {
        manifest['files']![key] = name;
      });
      const error = await loadError(dir);
      expect(error).toBeInstanceOf(ManifestError);
      expect(error.file).toBe(join(dir, 'minigpt.json'));
      expect(error.message).toMatch(
        new RegExp(
          `^${join(dir, 'minigpt.json')}: "files\\.${key}": must be a plain file name inside the export directory, but it ${reason}`,
        ),
      );
    }
  });

  it('refuses a symlink that leads out of the directory, for each of its three files', async () => {
    for (const file of ['model.onnx', 'vocab.json', 'minigpt.json']) {
      const dir = await writeExport(`symlink-${file}`);
      rmSync(join(dir, file));
      symlinkSync(join(outside, file), join(dir, file));
      const error = await loadError(dir);
      expect(error).toBeInstanceOf(RunnerError);
      expect(error.rule).toBe('outside-directory');
      expect(error.message).toBe(
        `${join(dir, file)}: leads outside the export directory (to ${join(outside, file)}) — a symlink out? Nothing outside ${dir} is read because its files say so. Copy the file into the directory in place of the link`,
      );
    }
    // A relative link climbing out is the same escape.
    const dir = await writeExport('symlink-relative');
    rmSync(join(dir, 'model.onnx'));
    symlinkSync('../outside/model.onnx', join(dir, 'model.onnx'));
    expect((await loadError(dir)).rule).toBe('outside-directory');
  });

  it('follows links that stay inside, and an export directory that is itself a link', async () => {
    const dir = await writeExport('symlink-inside');
    mkdirSync(join(dir, 'weights'));
    renameSync(join(dir, 'model.onnx'), join(dir, 'weights', 'model.onnx'));
    symlinkSync(join('weights', 'model.onnx'), join(dir, 'model.onnx'));
    const linkedDir = join(work, 'linked-export');
    symlinkSync(dir, linkedDir);
    for (const path of [dir, linkedDir]) {
      const loaded = await loadModel(path);
      expect(await loaded.generate('a', { maxNewTokens: 3, temperature: 0 }).text()).toHaveLength(
        3,
      );
      await loaded.dispose();
    }
  });

  it.runIf(process.platform === 'linux')(
    'refuses a FIFO or directory in place of a file, and an oversized minigpt.json, without reading them',
    async () => {
      const fifo = await writeExport('fifo');
      rmSync(join(fifo, 'vocab.json'));
      execFileSync('mkfifo', [join(fifo, 'vocab.json')]); // reading it would block forever
      const error = await loadError(fifo);
      expect(error.message).toBe(
        `${join(fifo, 'vocab.json')}: not a regular file (a device, FIFO or socket). Export the checkpoint again with \`minigpt export\``,
      );
      const directory = await writeExport('directory');
      rmSync(join(directory, 'model.onnx'));
      mkdirSync(join(directory, 'model.onnx'));
      expect((await loadError(directory)).message).toMatch(
        /model\.onnx: not a regular file \(a directory\)/,
      );
      const huge = await writeExport('huge-manifest');
      writeFileSync(join(huge, 'minigpt.json'), ' '.repeat(2 << 20));
      expect((await loadError(huge)).message).toMatch(
        /minigpt\.json: 2097152 bytes, but a minigpt\.json is about a kilobyte: over 1048576 bytes it is not one/,
      );
      // A sparse 129 MiB vocab.json: refused by its size, before a byte of it is read.
      const hugeVocab = await writeExport('huge-vocab');
      truncateSync(join(hugeVocab, 'vocab.json'), 129 * 1024 * 1024);
      const vocabError = await loadError(hugeVocab);
      expect(vocabError.rule).toBe('too-large');
      expect(vocabError.message).toBe(
        `${join(hugeVocab, 'vocab.json')}: 135266304 bytes, but a tokenizer file is at most tens of megabytes: over 134217728 bytes it is not one. Export the checkpoint again with \`minigpt export\``,
      );
    },
  );

  // Each lie is refused when loadModel checks the graph: loadModel rejects, so no
  // DecoderSession exists and not one cache buffer (sized from these numbers) is allocated.
  const lies: Array<[string, (manifest: Json) => void, RegExp]> = [
    [
      'more layers than the graph',
      (manifest) => (manifest['model']!['nLayer'] = 3),
      /the graph has no input "past_key_values\.2\.key" \(layer 2; minigpt\.json says model\.nLayer = 3\)/,
    ],
    [
      'fewer layers than the graph',
      (manifest) => (manifest['model']!['nLayer'] = 1),
      /the graph has input "past_key_values\.1\.key" for layer 1, but minigpt\.json says model\.nLayer = 1/,
    ],
    [
      'a wider model (nEmbd)',
      (manifest) => (manifest['model']!['nEmbd'] = 64),
      /dim 3 of input "past_key_values\.0\.key" \["batch", 2, "past_sequence", 16\] is 16, but minigpt\.json says the head size, model\.nEmbd \/ model\.nHead = 64 \/ 2 = 32/,
    ],
    [
      'more heads (nHead)',
      (manifest) => (manifest['model']!['nHead'] = 4),
      /dim 1 of input "past_key_values\.0\.key" .* is 2, but minigpt\.json says model\.nHead = 4/,
    ],
    [
      'other cache input names',
      (manifest) => (manifest['inputs']!['pastKey'] = 'past.{i}.key'),
      /the graph has no input "past\.0\.key"/,
    ],
    [
      'other logits name',
      (manifest) => (manifest['outputs']!['logits'] = 'lm_head'),
      /the graph has no output "lm_head"/,
    ],
    [
      "other names for this step's rows",
      (manifest) => {
        manifest['outputs']!['newKey'] = 'added.{i}.key';
        manifest['outputs']!['newValue'] = 'added.{i}.value';
      },
      /the graph has no output "added\.0\.key" \(layer 0; minigpt\.json says model\.nLayer = 2\)/,
    ],
  ];
  it.each(lies)('refuses a manifest claiming %s, naming the model file', async (_, edit, want) => {
    const dir = await exportWithManifest(`lie-${_.replace(/\W+/g, '-')}`, edit);
    const error = await loadError(dir);
    expect(error).toBeInstanceOf(RunnerError);
    expect(error.rule).toBe('graph');
    expect(error.file).toBe(join(dir, 'model.onnx'));
    expect(error.message.startsWith(`${join(dir, 'model.onnx')}: `)).toBe(true);
    expect(error.message).toMatch(want);
    expect(error.message).toMatch(
      /The model and its minigpt\.json are not from the same export: re-export the checkpoint with `minigpt export`$/,
    );
  });

  it('refuses a vocabSize the logits contradict, even with a vocab.json of that size', async () => {
    const dir = await exportWithManifest('lie-vocab', (manifest) => {
      manifest['model']!['vocabSize'] = 31;
    });
    // A tokenizer of 31 tokens, so the vocab.json check passes and the graph's is the one.
    writeFileSync(
      join(dir, 'vocab.json'),
      JSON.stringify(CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz .,\n!').toJSON()),
    );
    const error = await loadError(dir);
    expect(error).toBeInstanceOf(RunnerError);
    expect(error.message).toMatch(
      /model\.onnx: dim 2 of output "logits" \["batch", "sequence", 30\] is 30, but minigpt\.json says model\.vocabSize = 31/,
    );
  });

  it('runs an older manifest without newKey/newValue on the same graph', async () => {
    const dir = await exportWithManifest('older-manifest', (manifest) => {
      delete manifest['outputs']!['newKey'];
      delete manifest['outputs']!['newValue'];
    });
    const older = await loadModel(dir);
    const current = await loadModel(exportDir);
    const settings = { maxNewTokens: 20, temperature: 0 };
    expect(await older.generate('the', settings).text()).toBe(
      await current.generate('the', settings).text(),
    );
    await older.dispose();
    await current.dispose();
  });
});
