// End to end in a real browser: Debian's Chromium, driven by playwright-core, loads the built
// page from `vite preview` on localhost (cross-origin isolated by its COOP/COEP headers) and
// trains in the page's worker with @minigpt/trainer:
// - nano with backend auto: wasm with SIMD and a thread per core (WebGPU's only adapter here
//   is software), losses falling, Pause / Resume, Sample; the longest main-thread task while
//   training (test-output/e2e.json, printed) and a screenshot;
// - nano on wasm, one thread: the step losses equal the Node trainer's (binarize +
//   startTraining, same text, seed and kernels); the ONNX export's zip runs in runner-node
//   with the page's greedy text; the checkpoint zip holds the Node run's bytes;
// - a reload mid-run: the page offers the OPFS run, resumes it, ends with the Node losses;
// - a Node checkpoint uploaded as a zip, or as its five files, with its text continues as
//   Node continues it;
// - Download the checkpoint mid-run saves the current iteration first and zips that one;
//   Discard deletes a stored run's OPFS folder, never one a tab trains;
// - WebGPU on SwiftShader within 1e-3 of wasm;
// - bad input (empty, too short, binary, a model too big) → a message.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { binarize } from '@minigpt/data/node';
import { loadModel } from '@minigpt/runner-node';
import { loadCheckpoint } from '@minigpt/trainer/node';
import { unzipSync, zipSync } from 'fflate';
import { startTraining } from '@minigpt/trainer/node';
import { launchChromium, servePage, type ServedPage } from '@minigpt/chromium';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageState } from '../src/page-state.js';

const example = fileURLToPath(new URL('..', import.meta.url));
const output = join(example, 'test-output');
let server: ServedPage;
let url: string;
let browser: Browser;
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'train-in-browser-'));
  server = await servePage(example);
  url = server.url;
  // WebGPU is on (as in the web demo's test), so `auto` meets Chromium's software adapter
  // and must skip it.
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/**
 * The Node trainer on `text` (binarize, then startTraining on the page's wasm kernels, one
 * thread, no native kernels): the step losses, and the run's directory.
 */
async function nodeRun(
  name: string,
  text: string,
  config: Record<string, unknown>,
): Promise<{
  losses: number[];
  evals: Array<{ iter: number; trainLoss: number; valLoss: number }>;
  outDir: string;
  dataDir: string;
}> {
  const input = join(scratch, `${name}.txt`);
  writeFileSync(input, text);
  const dataDir = join(scratch, `${name}-data`);
  await binarize({ input, outDir: dataDir });
  const outDir = join(scratch, `${name}-run`);
  const trainer = await startWithPageKernels({ dataDir, outDir, backend: 'wasm', config });
  const losses: number[] = [];
  const evals: Array<{ iter: number; trainLoss: number; valLoss: number }> = [];
  try {
    for await (const event of trainer.run()) {
      if (event.type === 'step') losses.push(event.loss);
      if (event.type === 'eval') evals.push(event);
    }
  } finally {
    trainer.dispose();
  }
  return { losses, evals, outDir, dataDir };
}

/**
 * The Node trainer on the page's kernels, @minigpt/wasm-kernels: MINIGPT_NATIVE=0 hides the
 * native addon, and startTraining falls back to them. Same kernels, same bits: the page's
 * checkpoint equals this run's byte for byte.
 */
async function startWithPageKernels(
  options: Parameters<typeof startTraining>[0],
): ReturnType<typeof startTraining> {
  process.env['MINIGPT_NATIVE'] = '0';
  try {
    return await startTraining({ ...options, nativeKernels: true });
  } finally {
    delete process.env['MINIGPT_NATIVE'];
  }
}

/** Clicks `button`, saves the zip the page offers through `link`, unpacks it into scratch. */
async function downloadZip(page: Page, button: string, link: string, into: string) {
  await page.click(testId(button));
  await page.waitForFunction(() => document.body.dataset['export'] === 'done', null, {
    timeout: 60_000,
    polling: 200,
  });
  const state = await pageState(page);
  expect(state.errors, state.log.join('\n')).toEqual([]);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(testId(link))]);
  const zipPath = join(scratch, download.suggestedFilename());
  await download.saveAs(zipPath);
  const entries = unzipSync(new Uint8Array(readFileSync(zipPath)));
  const folders = new Set(Object.keys(entries).map((path) => path.split('/')[0]!));
  expect(folders.size).toBe(1);
  for (const [path, bytes] of Object.entries(entries)) {
    mkdirSync(join(into, path, '..'), { recursive: true });
    writeFileSync(join(into, path), bytes);
  }
  return {
    dir: join(into, [...folders][0]!),
    paths: Object.keys(entries).sort(),
    name: download.suggestedFilename(),
  };
}

/** Waits until the worker says the run is done (or failed: then says why). */
async function waitForDone(page: Page, timeout = 60_000) {
  await page.waitForFunction(
    () =>
      window.trainInBrowser.state === 'done' ||
      window.trainInBrowser.state === 'failed' ||
      window.trainInBrowser.errors.length > 0,
    null,
    { timeout, polling: 200 },
  );
  const state = await pageState(page);
  expect(state.errors, state.log.join('\n')).toEqual([]);
  expect(state.state).toBe('done');
  return state;
}

/** A text with a few regular patterns: a seeded generator picks the words, so every run gets the same text. */
function generatedText(characters: number): string {
  const subjects = ['the cat', 'a dog', 'the old man', 'my sister', 'the baker', 'a small bird'];
  const verbs = ['sees', 'finds', 'likes', 'carries', 'paints', 'follows'];
  const objects = ['the red ball', 'a green hat', 'the long road', 'some bread', 'the river'];
  let state = 42;
  const pick = (words: readonly string[]) => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return words[state % words.length]!;
  };
  let text = '';
  while (text.length < characters) {
    const sentence = `${pick(subjects)} ${pick(verbs)} ${pick(objects)}.`;
    text += sentence[0]!.toUpperCase() + sentence.slice(1) + (text.length % 3 === 0 ? '\n' : ' ');
  }
  return text;
}

const pageState = (page: Page): Promise<PageState> =>
  page.evaluate(() => JSON.parse(JSON.stringify(window.trainInBrowser)) as PageState);

/** Waits until the page has seen at least `steps` steps (or failed: then says why). */
async function waitForSteps(page: Page, steps: number) {
  await page.waitForFunction(
    (wanted) =>
      window.trainInBrowser.steps.length >= wanted ||
      window.trainInBrowser.state === 'failed' ||
      window.trainInBrowser.errors.length > 0,
    steps,
    // Polled on a timer, not every animation frame: the harness's own work on the main
    // thread stays small next to the page's, which is what the long-task record measures.
    { timeout: 60_000, polling: 200 },
  );
  const state = await pageState(page);
  expect(state.errors, state.log.join('\n')).toEqual([]);
  expect(state.steps.length).toBeGreaterThanOrEqual(steps);
}

const testId = (id: string) => `[data-testid="${id}"]`;

/** The five files of a checkpoint directory, sorted. */
const CHECKPOINT_FILE_NAMES = [
  'config.json',
  'model.safetensors',
  'optimizer.safetensors',
  'state.json',
  'tokenizer.json',
];

/** The run folders in the page's OPFS (`runs/`), read on the page's own thread. */
const runFolders = (page: Page): Promise<string[]> =>
  page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const runs = await root.getDirectoryHandle('runs', { create: true });
    const names: string[] = [];
    for await (const name of (runs as unknown as { keys(): AsyncIterable<string> }).keys())
      names.push(name);
    return names.sort();
  });

/** The bytes of run `runId`'s files in OPFS, summed here, apart from the worker's count. */
const runBytes = (page: Page, runId: string): Promise<number> =>
  page.evaluate(async (id) => {
    type Folder = { entries(): AsyncIterable<[string, FileSystemHandle]> };
    const sum = async (folder: Folder): Promise<number> => {
      let total = 0;
      for await (const [, handle] of folder.entries()) {
        total +=
          handle.kind === 'directory'
            ? await sum(handle as unknown as Folder)
            : (await (handle as FileSystemFileHandle).getFile()).size;
      }
      return total;
    };
    const root = await navigator.storage.getDirectory();
    const runs = await root.getDirectoryHandle('runs');
    return sum((await runs.getDirectoryHandle(id)) as unknown as Folder);
  }, runId);

/** Clicks Discard (the dialog accepted) and waits for the worker's answer: the runs left. */
async function discardOffered(page: Page) {
  await page.evaluate(() => {
    delete document.body.dataset['discard'];
    delete document.body.dataset['runsFound'];
  });
  page.once('dialog', (dialog) => void dialog.accept());
  await page.click(testId('discard-stored'));
  await page.waitForFunction(
    () =>
      document.body.dataset['discard'] === 'done' &&
      document.body.dataset['runsFound'] !== undefined,
    null,
    { timeout: 30_000, polling: 100 },
  );
}

describe('train in the browser, in Chromium', () => {
  it('trains nano in a worker on wasm with threads; pauses, resumes, samples; the page stays responsive', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(url);
    const { isolated, cores } = await page.evaluate(() => ({
      isolated: globalThis.crossOriginIsolated,
      cores: navigator.hardwareConcurrency,
    }));
    expect(isolated).toBe(true);
    // Compiles the harness's polling code now, before the long-task record starts on Start.
    await page.waitForFunction(() => window.trainInBrowser.state === 'idle', null, {
      polling: 200,
    });

    await page.fill(testId('text'), generatedText(20_000));
    await page.selectOption(testId('preset'), 'nano');
    // Far more iterations than the test runs: it must pause a run in progress.
    await page.fill(testId('max-iters'), '100000');
    await page.selectOption(testId('backend'), 'auto');
    await page.click(testId('start'));
    await waitForSteps(page, 20);

    // auto on a machine without a GPU: WebGPU's only adapter is SwiftShader (software), so
    // wasm runs, with SIMD and a thread per core, and the page says why WebGPU was skipped.
    const started = await pageState(page);
    const backend = started.backend!;
    expect(backend.name).toBe('wasm');
    expect(backend.tfjsBackend).toBe('wasm');
    expect(backend.crossOriginIsolated).toBe(true);
    expect(backend.sharedArrayBuffer).toBe(true);
    expect(backend.wasm).toEqual({
      simd: true,
      threadsSupported: true,
      threads: cores,
      kernels: { installed: true },
    });
    expect(backend.skipped.map((entry) => entry.name)).toEqual(['webgpu']);
    const backendLine = await page.textContent(testId('backend-line'));
    expect(backendLine).toBe(started.backendLine);
    expect(backendLine).toMatch(
      new RegExp(
        `^wasm \\(threads: ${cores}, SIMD, minigpt kernels\\) — webgpu skipped: (only a software adapter .*|no WebGPU adapter .*|this browser has no WebGPU .*)$`,
      ),
    );
    expect(started.run).toMatchObject({
      nLayer: 2,
      nHead: 2,
      nEmbd: 32,
      blockSize: 16,
      batchSize: 4,
    });

    // The losses: finite, and falling — the 20th below the first (a uniform guess scores
    // ln(vocab); the generated text's patterns are learnt within a few steps).
    const losses = started.steps.map((step) => step.loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[0]!).toBeGreaterThan(0.9 * Math.log(started.run!.vocabSize));
    expect(losses[19]!).toBeLessThan(losses[0]!);
    expect(started.evals[0]).toMatchObject({ type: 'eval', iteration: 0 });
    expect(started.steps.map((step) => step.iteration).slice(0, 20)).toEqual(
      Array.from({ length: 20 }, (_, index) => index + 1),
    );

    // Pause: the worker stops between two steps and says so; no step comes while paused.
    await page.click(testId('pause'));
    await page.waitForFunction(() => document.body.dataset['state'] === 'paused', null, {
      polling: 200,
    });
    const paused = await pageState(page);
    await page.waitForTimeout(1_500);
    const stillPaused = await pageState(page);
    expect(stillPaused.state).toBe('paused');
    expect(stillPaused.steps.length).toBe(paused.steps.length);
    expect(await page.isDisabled(testId('pause'))).toBe(true);
    expect(await page.isEnabled(testId('resume'))).toBe(true);

    // Resume: steps continue from the next iteration.
    await page.click(testId('resume'));
    await waitForSteps(page, paused.steps.length + 10);
    const resumed = await pageState(page);
    expect(resumed.state).toBe('training');
    expect(resumed.steps[paused.steps.length]!.iteration).toBe(paused.iteration + 1);

    // Sample while it trains: the worker runs it between two steps, from the current weights.
    await page.fill(testId('sample-prompt'), 'The cat ');
    await page.fill(testId('sample-tokens'), '100');
    await page.click(testId('sample-button'));
    await page.waitForFunction(() => document.body.dataset['sample'] === 'done', null, {
      timeout: 60_000,
      polling: 200,
    });
    const sampled = (await page.textContent(testId('sample-output')))!;
    expect(await page.getAttribute(testId('sample-output'), 'data-new-tokens')).toBe('100');
    expect(sampled.startsWith('The cat ')).toBe(true);
    expect(sampled.length).toBe('The cat '.length + 100);

    // The chart drew every step, and the numbers are shown.
    await page.waitForTimeout(600);
    const final = await pageState(page);
    expect(final.errors).toEqual([]);
    expect(
      Number(await page.getAttribute(testId('train-line'), 'data-points')),
    ).toBeGreaterThanOrEqual(resumed.steps.length);
    expect(await page.textContent(testId('tokens-per-sec'))).toMatch(/^[\d,]+$/);
    expect(await page.textContent(testId('eta'))).toMatch(/\d+ (s|min|h)/);
    expect(final.responsiveness.longTasksSupported).toBe(true);
    expect(pageErrors).toEqual([]);

    mkdirSync(output, { recursive: true });
    await page.screenshot({ path: join(output, 'training.png'), fullPage: true });
    const record = {
      date: new Date().toISOString(),
      backendLine,
      steps: final.steps.length,
      firstLoss: losses[0],
      lastLoss: final.steps.at(-1)!.loss,
      tokensPerSec: Math.round(final.steps.at(-1)!.tokensPerSec),
      longestTaskMs: final.responsiveness.longestTaskMs,
      longTasks: final.responsiveness.longTasks,
      maxTimerLagMs: Math.round(final.responsiveness.maxTimerLagMs),
    };
    writeFileSync(join(output, 'e2e.json'), `${JSON.stringify(record, null, 2)}\n`);
    console.log(
      `train-in-browser e2e: ${backendLine}; ${record.steps} nano steps, loss ${record.firstLoss!.toFixed(3)} → ${record.lastLoss.toFixed(3)}, ` +
        `${record.tokensPerSec} tokens/s; longest main-thread task while training: ` +
        `${record.longestTaskMs > 0 ? `${record.longestTaskMs} ms (${record.longTasks} tasks ≥ 50 ms)` : 'none ≥ 50 ms'}, timer lag ≤ ${record.maxTimerLagMs} ms`,
    );
    await page.close();
  }, 120_000);

  it("trains nano on wasm in the page with the Node trainer's losses (30 steps, within 1e-4)", async () => {
    const text = generatedText(20_000);
    const node = await nodeRun('equal', text, { preset: 'nano', maxIters: 30 });
    expect(node.losses).toHaveLength(30);

    // One wasm thread in the page, as in Node: XNNPACK's threads split the sums differently.
    const page = await browser.newPage();
    await page.goto(`${url}?threads=1`);
    await page.fill(testId('text'), text);
    await page.selectOption(testId('preset'), 'nano');
    await page.fill(testId('max-iters'), '30');
    await page.selectOption(testId('backend'), 'wasm');
    await page.click(testId('start'));
    const done = await waitForDone(page);
    expect(done.backend!.wasm).toEqual({
      simd: true,
      threadsSupported: true,
      threads: 1,
      kernels: { installed: true },
    });
    const losses = done.steps.map((step) => step.loss);
    expect(losses).toHaveLength(30);
    const worst = Math.max(...losses.map((loss, index) => Math.abs(loss - node.losses[index]!)));
    console.log(
      `page vs Node trainer, 30 nano steps on wasm: largest loss difference ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-4);
    // The trainer's checkpoints went to the run's OPFS folder (nano: every 25, and the last).
    expect(done.checkpoints.map((entry) => entry.iteration)).toEqual([25, 30]);
    expect(done.checkpoints[0]!.location).toMatch(
      /^opfs:runs\/run-.*\/checkpoints\/ckpt-000000025$/,
    );

    // Export: the zip of the export directory, run in the page with runner-web (greedy), and
    // unpacked here it runs in runner-node with the same text.
    const prompt = 'The cat ';
    await page.fill(testId('sample-prompt'), prompt);
    await page.fill(testId('sample-tokens'), '60');
    const exported = await downloadZip(page, 'export', 'export-link', join(scratch, 'export'));
    expect(exported.name).toBe('minigpt-export-iter-000030.zip');
    expect(exported.paths).toEqual(
      [
        'config.json',
        'generation_config.json',
        'minigpt.json',
        'onnx/model.onnx',
        'tokenizer.json',
        'tokenizer.minigpt.json',
        'tokenizer_config.json',
      ].map((path) => `minigpt-export-iter-000030/${path}`),
    );
    const pageText = (await page.textContent(testId('export-output')))!;
    expect(pageText.length).toBe(prompt.length + 60);
    const runner = await loadModel(exported.dir);
    try {
      const nodeText = await runner.generate(prompt, { maxNewTokens: 60, temperature: 0 }).text();
      expect(prompt + nodeText).toBe(pageText);
      // Sampled with the page's seed: the same text too (a 30-step model's greedy text is
      // mostly its commonest character; sampling tells more of the logits apart).
      const sampled = await runner
        .generate(prompt, { maxNewTokens: 60, temperature: 0.8, seed: 1337 })
        .text();
      expect(sampled.trim().length).toBeGreaterThan(20);
      expect(await page.getAttribute(testId('export-sampled'), 'data-text')).toBe(prompt + sampled);
    } finally {
      await runner.dispose();
    }
    // The tfjs model in the worker, greedy, writes the same text.
    await page.fill(testId('sample-temperature'), '0');
    await page.click(testId('sample-button'));
    await page.waitForFunction(() => document.body.dataset['sample'] === 'done', null, {
      polling: 200,
    });
    expect(await page.textContent(testId('sample-output'))).toBe(pageText);

    // The checkpoint: a checkpoint directory, byte for byte the Node run's at iteration 30
    // (the weights and moments; config.json and tokenizer.json name the data's source).
    const checkpoint = await downloadZip(
      page,
      'download-checkpoint',
      'checkpoint-link',
      join(scratch, 'checkpoint'),
    );
    expect(checkpoint.paths).toEqual(
      [
        'config.json',
        'model.safetensors',
        'optimizer.safetensors',
        'state.json',
        'tokenizer.json',
      ].map((path) => `ckpt-000000030/${path}`),
    );
    for (const file of ['model.safetensors', 'optimizer.safetensors', 'tokenizer.json']) {
      expect(
        Buffer.compare(
          readFileSync(join(checkpoint.dir, file)),
          readFileSync(join(node.outDir, 'checkpoints', 'ckpt-000000030', file)),
        ),
        file,
      ).toBe(0);
    }
    mkdirSync(output, { recursive: true });
    await page.screenshot({ path: join(output, 'export.png'), fullPage: true });
    const loaded = await loadCheckpoint(checkpoint.dir);
    try {
      expect(
        loaded.model.generate(loaded.tokenizer.encode(prompt), 60, { temperature: 0 }).length,
      ).toBe(60);
      expect(
        prompt +
          loaded.tokenizer.decode(
            loaded.model.generate(loaded.tokenizer.encode(prompt), 60, { temperature: 0 }),
          ),
      ).toBe(pageText);
    } finally {
      loaded.model.dispose();
    }
    await page.close();
  }, 90_000);

  it('checkpoints to OPFS; after a reload mid-run it offers Resume, and the resumed run ends with the uninterrupted losses', async () => {
    const text = generatedText(20_000);
    const config = { preset: 'nano', maxIters: 60, checkpointInterval: 10 };
    const node = await nodeRun('resume', text, config);

    const page = await browser.newPage();
    await page.goto(`${url}?threads=1`);
    await page.fill(testId('text'), text);
    await page.selectOption(testId('preset'), 'nano');
    await page.fill(testId('max-iters'), '60');
    await page.fill(testId('checkpoint-interval'), '10');
    await page.selectOption(testId('backend'), 'wasm');
    await page.click(testId('start'));
    await waitForSteps(page, 25);
    await page.click(testId('pause'));
    await page.waitForFunction(() => document.body.dataset['state'] === 'paused', null, {
      polling: 200,
    });
    const before = await pageState(page);
    const saved = before.checkpoints.at(-1)!.iteration;
    expect(saved).toBeGreaterThanOrEqual(20);
    expect(saved).toBeLessThan(60);

    // The reload ends the worker mid-run; the page finds the run in OPFS and offers it.
    await page.reload();
    await page.waitForFunction(() => document.body.dataset['runsFound'] !== undefined, null, {
      polling: 200,
    });
    expect(await page.isVisible(testId('resume-stored'))).toBe(true);
    expect(await page.textContent(testId('stored-run-line'))).toContain(
      `nano preset, checkpoint at iteration ${saved}`,
    );
    mkdirSync(output, { recursive: true });
    await page.screenshot({ path: join(output, 'resume-offer.png') });
    // A start that fails (a text shorter than a block) loses nothing: the run is offered again.
    await page.fill(testId('text'), 'Hello world!');
    await page.selectOption(testId('preset'), 'nano');
    await page.click(testId('start'));
    await page.waitForFunction(
      () =>
        document.body.dataset['state'] === 'failed' &&
        !document.querySelector('[data-testid="stored-run"]')!.hasAttribute('hidden'),
      null,
      { polling: 200 },
    );
    await page.evaluate(() => (window.trainInBrowser.errors = []));
    await page.click(testId('resume-stored'));
    const done = await waitForDone(page);
    expect(done.run!.startIteration).toBe(saved);
    expect(done.steps.map((step) => step.iteration)).toEqual(
      Array.from({ length: 60 - saved }, (_, index) => saved + 1 + index),
    );
    const worst = Math.max(
      ...done.steps.map((step) => Math.abs(step.loss - node.losses[step.iteration - 1]!)),
    );
    expect(worst).toBeLessThan(1e-4);
    const finalEval = done.evals.at(-1)!;
    const nodeFinal = node.evals.at(-1)!;
    expect(finalEval.iteration).toBe(60);
    expect(nodeFinal.iter).toBe(60);
    expect(Math.abs(finalEval.trainLoss - nodeFinal.trainLoss)).toBeLessThan(1e-4);
    expect(Math.abs(finalEval.valLoss - nodeFinal.valLoss)).toBeLessThan(1e-4);
    console.log(
      `resumed at ${saved} after a reload: steps ${saved + 1}–60 within ${worst.toExponential(2)} of an uninterrupted run; final val loss ${finalEval.valLoss.toFixed(4)}`,
    );
    await page.close();
  }, 90_000);

  it('continues a checkpoint trained in Node (uploaded as a zip, or as its five files, with its text) as Node continues it', async () => {
    const text = generatedText(20_000);
    const first = await nodeRun('continue', text, {
      preset: 'nano',
      maxIters: 20,
      checkpointInterval: 10,
    });
    const folder = join(first.outDir, 'checkpoints', 'ckpt-000000020');
    // The loose files' copy: Node's resume below prunes ckpt-000000020 from its run.
    const looseFolder = join(scratch, 'loose', 'ckpt-000000020');
    mkdirSync(looseFolder, { recursive: true });
    for (const file of readdirSync(folder)) {
      writeFileSync(join(looseFolder, file), readFileSync(join(folder, file)));
    }
    const zip = zipSync(
      Object.fromEntries(
        readdirSync(folder).map((file) => [
          `ckpt-000000020/${file}`,
          new Uint8Array(readFileSync(join(folder, file))),
        ]),
      ),
    );
    // The reference: the Node trainer resuming the same checkpoint, to 40.
    const trainer = await startWithPageKernels({
      dataDir: first.dataDir,
      outDir: first.outDir,
      resume: true,
      backend: 'wasm',
      config: { maxIters: 40 },
    });
    const nodeLosses = new Map<number, number>();
    try {
      for await (const event of trainer.run())
        if (event.type === 'step') nodeLosses.set(event.iter, event.loss);
    } finally {
      trainer.dispose();
    }
    expect([...nodeLosses.keys()]).toEqual(Array.from({ length: 20 }, (_, index) => 21 + index));

    const page = await browser.newPage();
    await page.goto(`${url}?threads=1`);
    await page.fill(testId('text'), text);
    await page.fill(testId('max-iters'), '40');
    await page.selectOption(testId('backend'), 'wasm');
    await page.setInputFiles(testId('checkpoint-files'), {
      name: 'ckpt-000000020.zip',
      mimeType: 'application/zip',
      buffer: Buffer.from(zip),
    });
    await page.click(testId('continue-checkpoint'));
    const done = await waitForDone(page);
    expect(done.run).toMatchObject({ startIteration: 20, maxIters: 40, nLayer: 2, nEmbd: 32 });
    expect(done.steps.map((step) => step.iteration)).toEqual([...nodeLosses.keys()]);
    const worst = Math.max(
      ...done.steps.map((step) => Math.abs(step.loss - nodeLosses.get(step.iteration)!)),
    );
    console.log(
      `a Node checkpoint continued in the page: steps 21–40 within ${worst.toExponential(2)} of Node's`,
    );
    expect(worst).toBeLessThan(1e-4);

    // The five files chosen one by one (no zip): the same checkpoint, the same run on.
    expect(readdirSync(looseFolder).sort()).toEqual(CHECKPOINT_FILE_NAMES);
    const loose = await browser.newPage();
    await loose.goto(`${url}?threads=1`);
    await loose.fill(testId('text'), text);
    await loose.fill(testId('max-iters'), '40');
    await loose.selectOption(testId('backend'), 'wasm');
    await loose.setInputFiles(
      testId('checkpoint-files'),
      CHECKPOINT_FILE_NAMES.map((file) => join(looseFolder, file)),
    );
    await loose.click(testId('continue-checkpoint'));
    const looseDone = await waitForDone(loose);
    expect(looseDone.run).toMatchObject({ startIteration: 20, maxIters: 40, nLayer: 2, nEmbd: 32 });
    expect(looseDone.steps.map((step) => step.iteration)).toEqual([...nodeLosses.keys()]);
    const looseWorst = Math.max(
      ...looseDone.steps.map((step) => Math.abs(step.loss - nodeLosses.get(step.iteration)!)),
    );
    console.log(
      `the same checkpoint as five loose files: steps 21–40 within ${looseWorst.toExponential(2)} of Node's`,
    );
    expect(looseWorst).toBeLessThan(1e-4);
    await loose.close();

    // Another text: the trainer refuses it (the data's sha256 differs), and says so.
    const other = await browser.newPage();
    await other.goto(`${url}?threads=1`);
    // The same characters in another order: the tokenizer fits, the data is not the same.
    await other.fill(testId('text'), text.split('\n').reverse().join('\n'));
    await other.setInputFiles(testId('checkpoint-files'), {
      name: 'ckpt-000000020.zip',
      mimeType: 'application/zip',
      buffer: Buffer.from(zip),
    });
    await other.click(testId('continue-checkpoint'));
    await other.waitForFunction(
      () =>
        document.body.dataset['state'] === 'failed' || document.body.dataset['state'] === 'done',
      null,
      { polling: 200 },
    );
    expect(await other.textContent(testId('error'))).toMatch(
      /^could not start: .*cannot resume — it was trained on data with sha256 /,
    );
    await other.close();
    await page.close();
  }, 150_000);

  it('downloads the current iteration mid-run as a checkpoint; Discard deletes stored runs, never one a tab trains', async () => {
    const text = generatedText(20_000);
    // Two tabs of one browser context share OPFS and Web Locks, as two tabs of a site do.
    const context = await browser.newContext();
    try {
      const training = await context.newPage();
      await training.goto(`${url}?threads=1`);
      await training.fill(testId('text'), text);
      await training.selectOption(testId('preset'), 'nano');
      await training.selectOption(testId('backend'), 'wasm');
      // An older run, done: checkpoints at 5 and 10.
      await training.fill(testId('max-iters'), '10');
      await training.fill(testId('checkpoint-interval'), '5');
      await training.click(testId('start'));
      await waitForDone(training);
      // The newer run: its first interval checkpoint would be at 1,000, far past the pause.
      await training.fill(testId('max-iters'), '100000');
      await training.fill(testId('checkpoint-interval'), '1000');
      await training.click(testId('start'));
      await waitForSteps(training, 20);
      const pause = async () => {
        await training.click(testId('pause'));
        await training.waitForFunction(() => document.body.dataset['state'] === 'paused', null, {
          polling: 200,
        });
        return pageState(training);
      };
      // Paused where no checkpoint is saved yet: an evaluation's new best saves one (nano
      // evaluates every 25), and a pause can come right after it; then a few steps more.
      let paused = await pause();
      while (paused.checkpoints.at(-1)?.iteration === paused.iteration) {
        await training.click(testId('resume'));
        await waitForSteps(training, paused.steps.length + 3);
        paused = await pause();
      }
      const at = paused.iteration;
      expect(at).toBeGreaterThanOrEqual(20);
      expect(at).toBeLessThan(1000);

      // The current weights, greedy, in the worker…
      const prompt = 'The cat ';
      await training.fill(testId('sample-prompt'), prompt);
      await training.fill(testId('sample-tokens'), '40');
      await training.fill(testId('sample-temperature'), '0');
      await training.click(testId('sample-button'));
      await training.waitForFunction(() => document.body.dataset['sample'] === 'done', null, {
        polling: 200,
      });
      const greedy = (await training.textContent(testId('sample-output')))!;
      expect((await pageState(training)).iteration).toBe(at);
      expect(greedy.length).toBe(prompt.length + 40);
      // …and the checkpoint downloaded now: saved at the paused iteration, not an older one,
      // and it writes the same text.
      const name = `ckpt-${String(at).padStart(9, '0')}`;
      const checkpoint = await downloadZip(
        training,
        'download-checkpoint',
        'checkpoint-link',
        join(scratch, 'mid-run'),
      );
      expect(checkpoint.name).toBe(`minigpt-${name}.zip`);
      expect(checkpoint.paths).toEqual(CHECKPOINT_FILE_NAMES.map((file) => `${name}/${file}`));
      const savedState = JSON.parse(readFileSync(join(checkpoint.dir, 'state.json'), 'utf8')) as {
        iteration: number;
      };
      expect(savedState.iteration).toBe(at);
      const loaded = await loadCheckpoint(checkpoint.dir);
      try {
        const ids = loaded.model.generate(loaded.tokenizer.encode(prompt), 40, { temperature: 0 });
        expect(prompt + loaded.tokenizer.decode(ids)).toBe(greedy);
      } finally {
        loaded.model.dispose();
      }
      // Training goes on after it; paused again, the tab keeps the run open (and locked).
      await training.click(testId('resume'));
      await waitForSteps(training, paused.steps.length + 5);
      await training.click(testId('pause'));
      await training.waitForFunction(() => document.body.dataset['state'] === 'paused', null, {
        polling: 200,
      });
      // Those steps may have crossed an evaluation with a new best, which saves a checkpoint
      // of its own: the run's newest is then that one.
      const newest = Math.max(
        at,
        ...(await pageState(training)).checkpoints.map((saved) => saved.iteration),
      );

      // A second tab finds both runs and offers the newer, with what they take in OPFS.
      const other = await context.newPage();
      await other.goto(url);
      await other.waitForFunction(() => document.body.dataset['runsFound'] !== undefined, null, {
        polling: 200,
      });
      expect(await other.textContent(testId('stored-run-line'))).toContain(
        `nano preset, checkpoint at iteration ${newest} `,
      );
      const found = (await pageState(other)).storedRuns;
      expect(found.map((run) => run.iteration)).toEqual([newest, 10]);
      const folders = await runFolders(other);
      expect(folders).toEqual(found.map((run) => run.runId).sort());
      const sizes = await Promise.all(found.map((run) => runBytes(other, run.runId)));
      expect(found.map((run) => run.bytes)).toEqual(sizes);
      // The older run holds two checkpoints, each with the weights and AdamW's moments.
      expect(sizes[1]!).toBeGreaterThan(
        2 * readFileSync(join(checkpoint.dir, 'model.safetensors')).length,
      );
      // As the page writes sizes: KiB under a MiB, else MiB with one decimal.
      const kib = (n: number) =>
        n < 1024 ** 2 ? `${(n / 1024).toFixed(0)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;
      expect(await other.textContent(testId('stored-run-size'))).toMatch(
        new RegExp(
          `^It takes ${kib(sizes[0]!)} of this browser's storage; all 2 stored runs take ${kib(sizes[0]! + sizes[1]!)} \\(this site uses [\\d.]+ [KMG]?i?B of its [\\d.]+ [KMG]?i?B quota\\)\\.$`,
        ),
      );

      // Dismissing the confirmation deletes nothing.
      let question = '';
      other.once('dialog', (dialog) => {
        question = dialog.message();
        void dialog.dismiss();
      });
      await other.click(testId('discard-stored'));
      expect(question).toMatch(
        new RegExp(`^Discard the stored run \\(.*, checkpoint at iteration ${newest}\\)\\?`),
      );
      expect(await other.evaluate(() => document.body.dataset['discard'])).toBeUndefined();
      expect(await runFolders(other)).toEqual(folders);

      // The run is open in the first tab: its lock refuses the discard, nothing is deleted.
      await discardOffered(other);
      expect(await other.textContent(testId('error'))).toMatch(
        /^could not discard the stored run: opfs:runs\/run-[^:]+: in use by /,
      );
      expect(await runFolders(other)).toEqual(folders);
      expect(await other.isVisible(testId('discard-stored'))).toBe(true);

      // The first tab closed, its run is free: Discard deletes it, then offers the older one.
      await training.close();
      await other.reload();
      await other.waitForFunction(() => document.body.dataset['runsFound'] === '2', null, {
        polling: 200,
      });
      await discardOffered(other);
      expect(await other.textContent(testId('error'))).toBe('');
      expect(await runFolders(other)).toEqual([found[1]!.runId]);
      expect(await other.textContent(testId('stored-run-line'))).toContain(
        'checkpoint at iteration 10 ',
      );
      expect(await other.textContent(testId('stored-run-size'))).toMatch(
        new RegExp(
          `^It takes ${kib(sizes[1]!)} of this browser's storage; it is the only stored run`,
        ),
      );
      await discardOffered(other);
      expect(await runFolders(other)).toEqual([]);
      expect(await other.isVisible(testId('stored-run'))).toBe(false);
      // A reload finds nothing to offer.
      await other.reload();
      await other.waitForFunction(() => document.body.dataset['runsFound'] !== undefined, null, {
        polling: 200,
      });
      expect(await other.evaluate(() => document.body.dataset['runsFound'])).toBe('0');
      expect(await other.isVisible(testId('stored-run'))).toBe(false);
      expect((await pageState(other)).errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000);

  it('trains nano on WebGPU (SwiftShader, the software adapter) within 1e-3 of wasm', async () => {
    const text = generatedText(20_000);
    const wasm = await nodeRun('webgpu-reference', text, { preset: 'nano', maxIters: 10 });
    const page = await browser.newPage();
    await page.goto(url);
    await page.fill(testId('text'), text);
    await page.selectOption(testId('preset'), 'nano');
    await page.fill(testId('max-iters'), '10');
    // Requested by name, WebGPU takes the software adapter that `auto` skips.
    await page.selectOption(testId('backend'), 'webgpu');
    await page.click(testId('start'));
    const done = await waitForDone(page, 80_000);
    expect(done.backend).toMatchObject({ name: 'webgpu', tfjsBackend: 'webgpu' });
    expect(done.backendLine).toMatch(/^webgpu \(.*swiftshader.*; software\)$/i);
    const losses = done.steps.map((step) => step.loss);
    expect(losses).toHaveLength(10);
    const worst = Math.max(...losses.map((loss, index) => Math.abs(loss - wasm.losses[index]!)));
    console.log(
      `WebGPU (${done.backendLine}) vs wasm, 10 nano steps: largest loss difference ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-3);
    await page.close();
  }, 120_000);

  it('says what is wrong with an empty text, one shorter than a block, a binary file, a model too big; offers the samples', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.click(testId('start'));
    expect(await page.textContent(testId('error'))).toBe(
      'the text is empty: paste a text, drop a .txt file or pick a sample',
    );
    expect(await page.evaluate(() => document.body.dataset['state'])).toBe('idle');

    // nano's block is 16 tokens: a 12-character text has 10 train tokens.
    await page.fill(testId('text'), 'Hello world!');
    await page.selectOption(testId('preset'), 'nano');
    await page.selectOption(testId('backend'), 'cpu');
    await page.click(testId('start'));
    await page.waitForFunction(() => document.body.dataset['state'] === 'failed');
    expect(await page.textContent(testId('error'))).toBe(
      'could not start: pasted text (train split): the train split has 10 tokens, fewer than blockSize + 1 = 17. Use a smaller blockSize, or more text (or a smaller validation fraction).',
    );
    expect(await page.isEnabled(testId('start'))).toBe(true);

    // A binary file: refused in the page, the text stays as it was.
    await page.setInputFiles(testId('file'), {
      name: 'weights.bin',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from([0x4d, 0x5a, 0x00, 0x01, 0x02, 0x00, 0x41]),
    });
    await page.waitForFunction(
      () => document.querySelector('[data-testid="error"]')!.textContent !== '',
      null,
      { polling: 100 },
    );
    expect(await page.textContent(testId('error'))).toBe(
      'weights.bin looks binary (it holds NUL bytes), not a text file',
    );
    expect(await page.inputValue(testId('text'))).toBe('Hello world!');

    // A model too big for the backend's memory: refused before anything is allocated.
    await page.fill(testId('text'), generatedText(2_000));
    await page.selectOption(testId('preset'), 'seed');
    await page.fill(testId('n-layer'), '48');
    await page.fill(testId('n-embd'), '2048');
    await page.selectOption(testId('backend'), 'wasm');
    await page.click(testId('start'));
    await page.waitForFunction(() => document.body.dataset['state'] === 'failed', null, {
      polling: 200,
    });
    expect(await page.textContent(testId('error'))).toMatch(
      /^could not start: the model has [\d.]+M parameters: weights, gradients and Adam moments need [\d.]+ GiB, more than the wasm backend's 4 GiB heap holds\./,
    );
    expect(await page.isEnabled(testId('start'))).toBe(true);

    // Files that are not a checkpoint: the missing ones are named.
    await page.setInputFiles(testId('checkpoint-files'), {
      name: 'config.json',
      mimeType: 'application/json',
      buffer: Buffer.from('{}'),
    });
    await page.click(testId('continue-checkpoint'));
    await page.waitForFunction(
      () => document.querySelector('[data-testid="error"]')!.textContent!.includes('checkpoint'),
      null,
      { polling: 100 },
    );
    expect(await page.textContent(testId('error'))).toBe(
      'could not start: config.json: not a checkpoint — model.safetensors, optimizer.safetensors, tokenizer.json, state.json missing (a checkpoint has model.safetensors, optimizer.safetensors, config.json, tokenizer.json, state.json)',
    );
    expect(await page.isEnabled(testId('start'))).toBe(true);

    // A bundled sample fills the text and names itself as the source.
    const options = await page.$$eval(`${testId('sample')} option`, (nodes) =>
      nodes.map((node) => (node as HTMLOptionElement).value),
    );
    expect(options).toEqual(['', 'lighthouse', 'bottles']);
    await page.selectOption(testId('sample'), 'lighthouse');
    const text = await page.inputValue(testId('text'));
    expect(text.startsWith('THE KEEPER OF THE NORTH LIGHT')).toBe(true);
    expect(await page.textContent(testId('text-info'))).toBe(
      `${text.length.toLocaleString('en-US')} characters`,
    );
    await page.close();
  }, 60_000);

  it('bundles nothing from node:* into the page or its worker', () => {
    // Vite would replace a node:* import with an empty module that fails when called: the
    // trainer and data packages' root entries must stay browser-safe.
    const assets = join(example, 'dist', 'assets');
    const scripts = readdirSync(assets).filter((name) => name.endsWith('.js'));
    expect(scripts.some((name) => name.startsWith('training.worker'))).toBe(true);
    for (const name of scripts) {
      const specifiers = [
        ...readFileSync(join(assets, name), 'utf8').matchAll(/["'`](node:[a-z_/]+)["'`]/g),
      ].map((match) => match[1]);
      // onnxruntime-web (runner-web's runtime) reads node:os for its thread count only where
      // there is no navigator (`typeof navigator > "u" ? require("node:os")…`): never in a page.
      expect(specifiers, name).toEqual(
        name.startsWith('ort.') ? specifiers.filter((specifier) => specifier === 'node:os') : [],
      );
    }
  });
});
