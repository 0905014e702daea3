// runner-node on real exports of tiny GPTs: the tfjs model's text, batches against single
// prompts, the sliding window, the int8 graph, concurrency, CUDA fallback, and export
// directories from elsewhere — format 1, damaged, escaping the directory through names or
// symlinks, or with a manifest the graph contradicts.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  mkdirSync,
  renameSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MinigptError } from '@minigpt/errors';
import { GPT } from '@minigpt/model';
import { ManifestError } from '@minigpt/runtime';
import { CharTokenizer } from '@minigpt/tokenizer';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SPIN_MICROSECONDS, RunnerError, loadModel } from './index.js';
import { exportGPT, variedGPT, type TestModel } from './test-exports.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-runner-test-'));
afterAll(() => {
  tfjsModel?.dispose();
  rmSync(work, { recursive: true, force: true });
});
const tokenizer = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz .,\n');
/** nano: blockSize 16, 2 layers, 2 heads, nEmbd 32, vocab 30; and the same in tfjs. */
let model: TestModel;
let tfjsModel: GPT;
let exportDir: string;
/** The same shape with blockSize 128, so 40-token prompts and 50 new tokens never slide. */
let wideModel: TestModel;
let wideDir: string;

/** Writes an export of the nano `model` into a fresh directory, as `minigpt export` does. */
function writeExport(name: string, quantize?: 'int8'): Promise<string> {
  return exportGPT(model, tokenizer, join(work, name), quantize);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  model = variedGPT(tokenizer, {}, 8);
  tfjsModel = GPT.fromWeights(model.config, model.weights);
  exportDir = await writeExport('good');
  wideModel = variedGPT(tokenizer, { blockSize: 128 }, 9);
  wideDir = await exportGPT(wideModel, tokenizer, join(work, 'wide'), 'int8');
});

/** Prompts of 1 to 40 characters: a batch left-pads all but the longest. */
const prompts = [
  't',
  'the cat',
  'a quick brown fox, jumping',
  'the lazy dog sleeps. the quick fox runs\n',
];

describe('runner-node', () => {
  it('generates the tfjs model text: greedy, and sampled with the same seed', async () => {
    const loaded = await loadModel(exportDir);
    expect(loaded.device).toBe('cpu');
    expect(loaded.dtype).toBe('fp32');
    const prompt = 'the cat';
    const blockSize = loaded.manifest.model.blockSize;
    for (const options of [
      { temperature: 0 },
      { temperature: 0.9, topK: 10, seed: 3 },
      { temperature: 1.1, topP: 0.9, seed: 4 },
    ]) {
      const referenceIds = tfjsModel.generate(tokenizer.encode(prompt), 40, options);
      // Several distinct ids: a text that repeats one token would agree trivially.
      expect(new Set(referenceIds).size).toBeGreaterThan(4);
      // refill = blockSize: the exact sliding window, as the tfjs model crops its context.
      const generation = loaded.generate(prompt, {
        maxNewTokens: 40,
        refill: blockSize,
        ...options,
      });
      expect(await generation.text()).toBe(tokenizer.decode(referenceIds));
      expect(generation.stats.tokens).toEqual(referenceIds);
      // 7 + 40 tokens through a 16-token window.
      expect(generation.stats.refills).toBeGreaterThan(0);
    }
    await loaded.dispose();
  });

  it('generates a batch of left-padded prompts as it generates each alone, greedy', async () => {
    const loaded = await loadModel(wideDir);
    expect(prompts.map((prompt) => prompt.length)).toEqual([1, 7, 26, 40]);
    const batch = loaded.generateBatch(prompts, { maxNewTokens: 50, temperature: 0 });
    const texts = await batch.texts();
    for (const [index, prompt] of prompts.entries()) {
      const alone = loaded.generate(prompt, { maxNewTokens: 50, temperature: 0 });
      expect(texts[index]).toBe(await alone.text());
      const row = batch.rows[index]!.stats;
      expect(row.tokens).toEqual(alone.stats.tokens);
      expect(row.tokens).toHaveLength(50);
      expect(new Set(row.tokens).size).toBeGreaterThan(4);
      // 40 + 50 < 128: the cache never slid, so padding is all that differs.
      expect(row.refills).toBe(0);
    }
    // The rows differ from each other: each row reads its own prompt, not row 0's.
    expect(new Set(texts).size).toBe(prompts.length);
    await loaded.dispose();
  });

  it('samples a batch as it samples each prompt alone, with per-row seeds', async () => {
    const loaded = await loadModel(wideDir);
    const seeds = [11, 22, 33, 44];
    const options = { maxNewTokens: 50, temperature: 0.8 };
    const texts = await loaded
      .generateBatch(prompts, { ...options, rows: seeds.map((seed) => ({ seed })) })
      .texts();
    for (const [index, prompt] of prompts.entries()) {
      expect(texts[index]).toBe(
        await loaded.generate(prompt, { ...options, seed: seeds[index]! }).text(),
      );
    }
    // Another seed samples another text: the seeds reach the rows.
    expect(await loaded.generate(prompts[0]!, { ...options, seed: 12 }).text()).not.toBe(texts[0]);
    await loaded.dispose();
  });

  it('slides the window past blockSize: 200 tokens from a 16-token model', async () => {
    const loaded = await loadModel(exportDir);
    const generation = loaded.generate('the cat', { maxNewTokens: 200, temperature: 0 });
    const text = await generation.text();
    expect(text).toHaveLength(200); // one character per token
    expect(generation.stats.newTokens).toBe(200);
    expect(generation.stats.stopReason).toBe('length');
    // Default refill 8: every 8 tokens past the first 16 rebuild the cache.
    expect(generation.stats.refills).toBeGreaterThan(20);
    await loaded.dispose();
  });

  it("loads the int8 graph for dtype 'q8' and generates close to the float graph", async () => {
    // Without onnx/model.onnx, a load can only succeed from onnx/model_quantized.onnx.
    const dir = await exportGPT(wideModel, tokenizer, join(work, 'q8-only'), 'int8');
    rmSync(join(dir, 'onnx', 'model.onnx'));
    const q8 = await loadModel(dir, { dtype: 'q8' });
    const fp32 = await loadModel(wideDir);
    expect(q8.dtype).toBe('q8');
    const q8Generation = q8.generate('the cat', { maxNewTokens: 50, temperature: 0 });
    expect(await q8Generation.text()).toHaveLength(50);
    expect(new Set(q8Generation.stats.tokens).size).toBeGreaterThan(4);
    // One step of each graph: int8 weights move the logits, but by little.
    const ids = tokenizer.encode('the quick fox');
    const step = { batch: 1, ids, mask: ids.map(() => 1), positions: ids.map((_, i) => i) };
    const q8Step = await q8.session.forward(step, null);
    const fp32Step = await fp32.session.forward(step, null);
    const q8Logits = q8Step.logits; // (1, V)
    const fp32Logits = fp32Step.logits; // (1, V)
    const spread = Math.max(...fp32Logits) - Math.min(...fp32Logits);
    let largestDifference = 0;
    for (let i = 0; i < fp32Logits.length; i++) {
      largestDifference = Math.max(largestDifference, Math.abs(q8Logits[i]! - fp32Logits[i]!));
    }
    expect(largestDifference).toBeGreaterThan(0);
    expect(largestDifference).toBeLessThan(0.1 * spread);
    q8.session.release(q8Step.state);
    fp32.session.release(fp32Step.state);
    await q8.dispose();
    await fp32.dispose();

    const error = await loadModel(exportDir, { dtype: 'q8' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RunnerError);
    expect((error as Error).message).toBe(
      `${join(exportDir, 'minigpt.json')}: this export has no int8 model (no files.modelQuantized). Export it with \`minigpt export --quantize int8\`, or load dtype 'fp32'`,
    );
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
    const createSession = (model: Uint8Array, options: ort.InferenceSession.SessionOptions) => {
      const providers = (options.executionProviders ?? []) as string[];
      requested.push(providers);
      if (providers.includes('cuda')) {
        return Promise.reject(new Error('Failed to load libonnxruntime_providers_cuda.so'));
      }
      return ort.InferenceSession.create(model, options);
    };
    const warnings: string[] = [];
    const loaded = await loadModel(exportDir, {
      device: 'cuda',
      onWarning: (w) => warnings.push(w),
      createSession,
    });
    expect(loaded.device).toBe('cpu');
    // CUDA with the cache rows declared, CUDA with the graph as published (a failure there too
    // tells a missing provider from a manifest the graph contradicts), then CPU.
    expect(requested).toEqual([['cuda'], ['cuda'], ['cpu']]);
    expect(warnings).toEqual([
      'CUDA is not available (Failed to load libonnxruntime_providers_cuda.so); running on CPU. For CUDA, install onnxruntime-node with its CUDA files: npm i onnxruntime-node --onnxruntime-node-install=cuda12',
    ]);
    expect(await loaded.generate('a', { maxNewTokens: 5, seed: 1 }).text()).toHaveLength(5);
    await loaded.dispose();
  });

  it("bounds onnxruntime's thread spinning by default, and takes a bound, false or true", async () => {
    const seen: ort.InferenceSession.SessionOptions[] = [];
    const createSession = (model: Uint8Array, options: ort.InferenceSession.SessionOptions) => {
      seen.push(options);
      return ort.InferenceSession.create(model, options);
    };
    const models = [
      await loadModel(exportDir, { createSession }),
      await loadModel(exportDir, { createSession, spinning: false }),
      await loadModel(exportDir, { createSession, spinning: true }),
      await loadModel(exportDir, { createSession, spinning: 400 }),
    ];
    expect(DEFAULT_SPIN_MICROSECONDS).toBe(25);
    // Each load opens the pool and, with 2 cores or more, its one-thread twin ('adaptive').
    const sessionsPerLoad = models[0]!.intraOpThreads === 'adaptive' ? 2 : 1;
    expect(seen.map((options) => options.extra)).toEqual(
      [
        { session: { intra_op: { spin_duration_us: '25' } } },
        { session: { intra_op: { allow_spinning: '0' } } },
        undefined,
        { session: { intra_op: { spin_duration_us: '400' } } },
      ].flatMap((extra) => Array(sessionsPerLoad).fill(extra)),
    );
    // The same tokens every way: spinning changes only how idle threads wait.
    const settings = { maxNewTokens: 20, seed: 3 };
    const texts = await Promise.all(models.map((model) => model.generate('a', settings).text()));
    expect(new Set(texts).size).toBe(1);
    expect(texts[0]).toHaveLength(20);
    await Promise.all(models.map((model) => model.dispose()));
    for (const spinning of [0, -5, 2.5, 1_000_001, Number.NaN])
      await expect(loadModel(exportDir, { createSession, spinning })).rejects.toThrow(
        `spinning must be true, false or whole microseconds from 1 to 1000000, not ${spinning}`,
      );
    expect(seen).toHaveLength(4 * sessionsPerLoad);
  });

  it("runs each step on the pool or on one thread, as measured ('adaptive', the default), with the same tokens as either alone", async () => {
    const seen: (number | undefined)[] = [];
    let released = 0;
    const createSession = async (
      model: Uint8Array,
      options: ort.InferenceSession.SessionOptions,
    ) => {
      seen.push(options.intraOpNumThreads);
      const session = await ort.InferenceSession.create(model, options);
      const release = session.release.bind(session);
      session.release = () => (released++, release());
      return session;
    };
    const adaptive = await loadModel(wideDir, { createSession });
    // Adaptive wherever the machine has 2 cores or more: a pool (a thread per core, or
    // onnxruntime's own where the kernel does not say), then the same graph on one thread.
    const twoSessions = adaptive.intraOpThreads === 'adaptive';
    if (availableParallelism() < 2) expect(twoSessions).toBe(false);
    if (twoSessions) {
      expect(seen).toHaveLength(2);
      expect(seen[0]).not.toBe(1);
      expect(seen[1]).toBe(1);
    } else expect(seen).toHaveLength(1);
    const pool = await loadModel(wideDir, { createSession, intraOpThreads: 'default' });
    const single = await loadModel(wideDir, { createSession, intraOpThreads: 1 });
    const two = await loadModel(wideDir, { createSession, intraOpThreads: 2 });
    expect(seen.slice(twoSessions ? 2 : 1)).toEqual([undefined, 1, 2]);
    expect([pool, single, two].map((model) => model.intraOpThreads)).toEqual(['default', 1, 2]);
    expect(pool.threadSteps()).toBeUndefined();

    // A pool of two threads and one thread give the same logits, to the bit: a prefill of
    // 4 rows × 40 tokens and 20 decode steps, whose products onnxruntime splits across both.
    const T = 40;
    const batch = 4;
    let input = {
      batch,
      ids: Array.from({ length: batch * T }, (_, i) => (i * 7 + 3) % 30),
      mask: Array<number>(batch * T).fill(1),
      positions: Array.from({ length: batch * T }, (_, i) => i % T),
    };
    let twoState = null;
    let singleState = null;
    for (let step = 0; step < 21; step++) {
      const twoStep = await two.session.forward(input, twoState);
      const singleStep = await single.session.forward(input, singleState);
      expect(Buffer.from(twoStep.logits.buffer).equals(Buffer.from(singleStep.logits.buffer))).toBe(
        true,
      );
      twoState = twoStep.state;
      singleState = singleStep.state;
      const past = T + step + 1;
      input = {
        batch,
        ids: Array.from({ length: batch }, (_, row) => (step * 13 + row) % 30),
        mask: Array<number>(batch * past).fill(1),
        positions: Array<number>(batch).fill(past - 1),
      };
    }
    two.session.release(twoState!);
    single.session.release(singleState!);

    // So sampled text, which any differing logit would change sooner or later, is the same
    // 80 tokens a row at batch 1 and 4, whichever session ran which step.
    const settings = { maxNewTokens: 80, temperature: 1, seed: 9 };
    for (const rows of [prompts.slice(0, 1), prompts]) {
      const texts = await Promise.all(
        [adaptive, pool, single, two].map((model) => model.generateBatch(rows, settings).texts()),
      );
      for (const text of texts.slice(1)) expect(text).toEqual(texts[0]);
    }
    if (twoSessions) {
      // 2 prefills (on the pool) and 2 × 79 decode steps; the first measurement ran 3 decode
      // steps on one thread at each batch size, so both sessions ran some.
      const steps = adaptive.threadSteps()!;
      expect(steps.wide + steps.narrow).toBe(2 + 2 * 79);
      expect(Math.min(steps.wide, steps.narrow)).toBeGreaterThanOrEqual(3);
    }
    await Promise.all([adaptive, pool, single, two].map((model) => model.dispose()));
    expect(released).toBe(seen.length);

    for (const bad of [0, -1, 2.5, 2000, 'auto'])
      await expect(
        loadModel(wideDir, { createSession, intraOpThreads: bad as number }),
      ).rejects.toThrow(
        `intraOpThreads must be 'adaptive', 'default' or a whole number of threads from 1 to 1024, not ${bad}`,
      );
  });

  it('runs on the pool alone, with a warning, when the one-thread session cannot be made', async () => {
    const probe = await loadModel(exportDir);
    await probe.dispose();
    if (probe.intraOpThreads !== 'adaptive') return; // one core: no second session is made
    const warnings: string[] = [];
    const loaded = await loadModel(exportDir, {
      onWarning: (warning) => warnings.push(warning),
      createSession: (model, options) =>
        options.intraOpNumThreads === 1
          ? Promise.reject(new Error('std::bad_alloc'))
          : ort.InferenceSession.create(model, options),
    });
    expect(loaded.intraOpThreads).not.toBe('adaptive');
    expect(loaded.threadSteps()).toBeUndefined();
    expect(warnings).toEqual([
      expect.stringMatching(
        /onnx\/model\.onnx could not be created \(std::bad_alloc\); every step runs on the pool$/,
      ),
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
      createSession: (model, options) =>
        ort.InferenceSession.create(model, { ...options, executionProviders: ['cpu'] }),
    });
    expect(loaded.device).toBe('cuda');
    expect(loaded.intraOpThreads).toBe('default');
    expect(warnings).toEqual([]);
    await loaded.dispose();
    // Adaptive threading is the CPU's: asked for on CUDA, it says so and runs one session.
    const asked = await loadModel(exportDir, {
      device: 'cuda',
      intraOpThreads: 'adaptive',
      onWarning: (w) => warnings.push(w),
      createSession: (model, options) =>
        ort.InferenceSession.create(model, { ...options, executionProviders: ['cpu'] }),
    });
    expect(asked.intraOpThreads).toBe('default');
    expect(warnings).toEqual([
      "intraOpThreads 'adaptive' is for the CPU; on cuda onnxruntime's own threading runs",
    ]);
    await asked.dispose();
  });

  it('explains bad exports: missing or truncated model, another manifest version, a mismatched vocab', async () => {
    const missing = await writeExport('missing');
    rmSync(join(missing, 'onnx', 'model.onnx'));
    await expect(loadModel(missing)).rejects.toThrow(
      /onnx\/model\.onnx: not found\. Export the checkpoint again/,
    );

    const truncated = await writeExport('truncated');
    truncateSync(join(truncated, 'onnx', 'model.onnx'), 5000);
    const error = await loadModel(truncated).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RunnerError);
    expect((error as Error).message).toMatch(
      /onnx\/model\.onnx: onnxruntime cannot load it \(5000 bytes\) — truncated or damaged\?/,
    );

    const newer = await writeExport('newer');
    const manifest = JSON.parse(readFileSync(join(newer, 'minigpt.json'), 'utf8'));
    writeFileSync(join(newer, 'minigpt.json'), JSON.stringify({ ...manifest, formatVersion: 3 }));
    await expect(loadModel(newer)).rejects.toThrow(
      /minigpt\.json: format version 3, but this runner reads version 2\. Upgrade @minigpt\/runtime and the runner\./,
    );

    const mismatched = await writeExport('mismatched');
    writeFileSync(
      join(mismatched, 'tokenizer.minigpt.json'),
      JSON.stringify(CharTokenizer.fromText('xyz').toJSON()),
    );
    await expect(loadModel(mismatched)).rejects.toThrow(
      /tokenizer\.minigpt\.json: the tokenizer has 3 tokens but the model \(minigpt\.json\) has 30/,
    );

    await expect(loadModel(join(work, 'nowhere'))).rejects.toThrow(
      /nowhere\/minigpt\.json: not found/,
    );
  });

  it('refuses a format-1 export (model.onnx and vocab.json at the root) with a message to re-export', async () => {
    // The layout and manifest the version-1 exporter wrote: a graph without attention mask or
    // position ids, which no runner of version 2 can feed.
    const dir = join(work, 'format-1');
    mkdirSync(dir);
    const current = await writeExport('format-2');
    copyFileSync(join(current, 'onnx', 'model.onnx'), join(dir, 'model.onnx'));
    copyFileSync(join(current, 'tokenizer.minigpt.json'), join(dir, 'vocab.json'));
    const formatOne = {
      format: 'minigpt-onnx',
      formatVersion: 1,
      opset: 17,
      irVersion: 8,
      model: model.config,
      inputs: {
        inputIds: 'input_ids',
        pastKey: 'past_key_values.{i}.key',
        pastValue: 'past_key_values.{i}.value',
      },
      outputs: {
        logits: 'logits',
        presentKey: 'present.{i}.key',
        presentValue: 'present.{i}.value',
        newKey: 'new_key_values.{i}.key',
        newValue: 'new_key_values.{i}.value',
      },
      dtypes: { inputIds: 'int64', cache: 'float32', logits: 'float32' },
      files: { model: 'model.onnx', vocab: 'vocab.json' },
      tokenizer: 'char',
    };
    writeFileSync(join(dir, 'minigpt.json'), JSON.stringify(formatOne));
    const error = await loadError(dir);
    expect(error).toBeInstanceOf(ManifestError);
    expect(error.rule).toBe('format-version');
    expect(error.message).toBe(
      `${join(dir, 'minigpt.json')}: format version 1, but this runner reads version 2. Re-export the checkpoint with \`minigpt export\`.`,
    );
  });

  it('refuses a character the vocabulary lacks, naming it and its position, before running the graph', async () => {
    let graphRuns = 0;
    const loaded = await loadModel(exportDir, {
      createSession: async (model, options) => {
        const session = await ort.InferenceSession.create(model, options);
        const run = session.run.bind(session);
        session.run = ((...args: Parameters<typeof run>) => {
          graphRuns++;
          return run(...args);
        }) as typeof session.run;
        return session;
      },
    });
    expect(() => loaded.generate('hello WORLD')).toThrow(/"W" \(U\+0057\) at position 6/);
    // In a batch, the message names the prompt too.
    expect(() => loaded.generateBatch(['the cat', 'a dog!'])).toThrow(
      /^prompt 2: .*"!" \(U\+0021\) at position 5/,
    );
    expect(graphRuns).toBe(0);
    // The model is unharmed: the next prompt runs.
    expect(await loaded.generate('hello world', { maxNewTokens: 3 }).text()).toHaveLength(3);
    expect(graphRuns).toBe(3);
    await loaded.dispose();
  });

  it('explains bad settings', async () => {
    const loaded = await loadModel(exportDir);
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
    const dotDot = `has a part "\\.\\." that contains '\\.\\.'`;
    const cases: Array<[string, string, string]> = [
      ['model', '../../outside/onnx/model.onnx', 'has more than 4 levels'],
      ['model', 'onnx/../model.onnx', dotDot],
      ['model', join(work, 'outside', 'onnx', 'model.onnx'), 'has more than 4 levels'],
      ['model', '/etc/passwd', 'has a part "" that is empty'],
      ['vocab', '../../outside/tokenizer.minigpt.json', dotDot],
      ['vocab', '..', "contains '\\.\\.'"],
      ['model', 'file:model.onnx', "is a URL or drive path \\(contains ':'\\)"],
      [
        'modelQuantized',
        'onnx\\..\\..\\model.onnx',
        "contains '\\\\' \\(paths are '/'-separated\\)",
      ],
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
          `^${join(dir, 'minigpt.json')}: "files\\.${key}": must be a path of plain names inside the export directory, but it ${reason}`,
        ),
      );
    }
  });

  it('refuses a symlink that leads out of the directory: each file, and the onnx/ folder', async () => {
    for (const file of ['onnx/model.onnx', 'tokenizer.minigpt.json', 'minigpt.json']) {
      const dir = await writeExport(`symlink-${file.replace('/', '-')}`);
      rmSync(join(dir, file));
      symlinkSync(join(outside, file), join(dir, file));
      const error = await loadError(dir);
      expect(error).toBeInstanceOf(RunnerError);
      expect(error.rule).toBe('outside-directory');
      expect(error.message).toBe(
        `${join(dir, file)}: leads outside the export directory (to ${join(outside, file)}) — a symlink out? Nothing outside ${dir} is read because its files say so. Copy the file into the directory in place of the link`,
      );
    }
    // The folder holding the graphs, linked out: the file's own name is plain, its path is not.
    const linkedFolder = await writeExport('symlink-onnx-folder', 'int8');
    rmSync(join(linkedFolder, 'onnx'), { recursive: true });
    symlinkSync(join(outside, 'onnx'), join(linkedFolder, 'onnx'));
    const folderError = await loadError(linkedFolder);
    expect(folderError.rule).toBe('outside-directory');
    expect(folderError.message).toMatch(
      new RegExp(
        `^${join(linkedFolder, 'onnx', 'model.onnx')}: leads outside the export directory \\(to ${join(outside, 'onnx', 'model.onnx')}\\)`,
      ),
    );
    // A relative link climbing out is the same escape.
    const dir = await writeExport('symlink-relative');
    rmSync(join(dir, 'onnx', 'model.onnx'));
    symlinkSync('../../outside/onnx/model.onnx', join(dir, 'onnx', 'model.onnx'));
    expect((await loadError(dir)).rule).toBe('outside-directory');
  });

  it('follows links that stay inside, and an export directory that is itself a link', async () => {
    const dir = await writeExport('symlink-inside');
    mkdirSync(join(dir, 'weights'));
    renameSync(join(dir, 'onnx', 'model.onnx'), join(dir, 'weights', 'model.onnx'));
    symlinkSync(join('..', 'weights', 'model.onnx'), join(dir, 'onnx', 'model.onnx'));
    // onnx/ itself a link to a folder inside.
    const folderDir = await writeExport('symlink-inside-folder');
    renameSync(join(folderDir, 'onnx'), join(folderDir, 'graphs'));
    symlinkSync('graphs', join(folderDir, 'onnx'));
    const linkedDir = join(work, 'linked-export');
    symlinkSync(dir, linkedDir);
    for (const path of [dir, folderDir, linkedDir]) {
      const loaded = await loadModel(path);
      expect(await loaded.generate('a', { maxNewTokens: 3, temperature: 0 }).text()).toHaveLength(
        3,
      );
      await loaded.dispose();
    }
  });

  it.runIf(process.platform === 'linux')(
    'refuses a FIFO or directory in place of a file, and oversized JSON, without reading them',
    async () => {
      const fifo = await writeExport('fifo');
      rmSync(join(fifo, 'tokenizer.minigpt.json'));
      execFileSync('mkfifo', [join(fifo, 'tokenizer.minigpt.json')]); // reading it would block forever
      const error = await loadError(fifo);
      expect(error.message).toBe(
        `${join(fifo, 'tokenizer.minigpt.json')}: not a regular file (a device, FIFO or socket). Export the checkpoint again with \`minigpt export\``,
      );
      const directory = await writeExport('directory');
      rmSync(join(directory, 'onnx', 'model.onnx'));
      mkdirSync(join(directory, 'onnx', 'model.onnx'));
      expect((await loadError(directory)).message).toMatch(
        /onnx\/model\.onnx: not a regular file \(a directory\)/,
      );
      const huge = await writeExport('huge-manifest');
      writeFileSync(join(huge, 'minigpt.json'), ' '.repeat(2 << 20));
      expect((await loadError(huge)).message).toMatch(
        /minigpt\.json: 2097152 bytes, but a minigpt\.json is about a kilobyte: over 1048576 bytes it is not one/,
      );
      // A sparse 129 MiB tokenizer file: refused by its size, before a byte of it is read.
      const hugeVocab = await writeExport('huge-vocab');
      truncateSync(join(hugeVocab, 'tokenizer.minigpt.json'), 129 * 1024 * 1024);
      const vocabError = await loadError(hugeVocab);
      expect(vocabError.rule).toBe('too-large');
      expect(vocabError.message).toBe(
        `${join(hugeVocab, 'tokenizer.minigpt.json')}: 135266304 bytes, but a tokenizer file is at most tens of megabytes: over 134217728 bytes it is not one. Export the checkpoint again with \`minigpt export\``,
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
      /dim 3 of input "past_key_values\.0\.key" \["batch_size", 2, "past_sequence_length", 16\] is 16, but minigpt\.json says the head size, model\.nEmbd \/ model\.nHead = 64 \/ 2 = 32/,
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
      'other mask input name',
      (manifest) => (manifest['inputs']!['attentionMask'] = 'mask'),
      /the graph has no input "mask"/,
    ],
    [
      'other logits name',
      (manifest) => (manifest['outputs']!['logits'] = 'lm_head'),
      /the graph has no output "lm_head"/,
    ],
  ];
  it.each(lies)('refuses a manifest claiming %s, naming the model file', async (_, edit, want) => {
    const dir = await exportWithManifest(`lie-${_.replace(/\W+/g, '-')}`, edit);
    const modelPath = join(dir, 'onnx', 'model.onnx');
    const error = await loadError(dir);
    expect(error).toBeInstanceOf(RunnerError);
    expect(error.rule).toBe('graph');
    expect(error.file).toBe(modelPath);
    expect(error.message.startsWith(`${modelPath}: `)).toBe(true);
    expect(error.message).toMatch(want);
    expect(error.message).toMatch(
      /The model and its minigpt\.json are not from the same export: re-export the checkpoint with `minigpt export`$/,
    );
  });

  it('refuses a vocabSize the logits contradict, even with a tokenizer of that size', async () => {
    const dir = await exportWithManifest('lie-vocab', (manifest) => {
      manifest['model']!['vocabSize'] = 31;
    });
    // A tokenizer of 31 tokens, so the tokenizer check passes and the graph's is the one.
    writeFileSync(
      join(dir, 'tokenizer.minigpt.json'),
      JSON.stringify(CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz .,\n!').toJSON()),
    );
    const error = await loadError(dir);
    expect(error).toBeInstanceOf(RunnerError);
    expect(error.message).toMatch(
      /onnx\/model\.onnx: dim 2 of output "logits" \["batch_size", "sequence_length", 30\] is 30, but minigpt\.json says model\.vocabSize = 31/,
    );
  });

  it('runs a manifest without newKey/newValue on the same graph', async () => {
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
