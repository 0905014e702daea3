// Benchmark: training tokens/s of the `baby` preset (4 layers, 128 wide, blockSize 64,
// batch 12: 768 tokens a step) in headless Chromium, through the page: the built page from
// `vite preview`, training in its worker on wasm (SIMD; 1 thread, then one per core), on the
// bundled story, char tokenizer. Each run: `--steps` measured steps after `--warmup` steps;
// a step's time is the wall time between two step events in the worker (the step, its loss
// read-back and the worker's return to its event loop). Prints the median and the range,
// the longest main-thread task meanwhile, the machine, its load and the date. Then, as the
// reference, the Node trainer (`startTraining`, the same text, preset and steps) on wasm with
// tfjs's own kernels, with @minigpt/wasm-kernels (the page's kernels, one thread) and with
// @minigpt/native-kernels (what `minigpt train` uses), each step's msPerIter as the trainer
// reports it.
// Usage: node bench/browser-train.bench.mjs [--preset=baby] [--threads=1,2] [--steps=30]
//        [--warmup=5] [--backend=wasm] [--node=false]
// The functions given to page.evaluate / waitForFunction run in the page.
/* global window */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launchChromium, servePage } from '@minigpt/chromium';

// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: {
    preset: { type: 'string' },
    threads: { type: 'string' },
    steps: { type: 'string' },
    warmup: { type: 'string' },
    backend: { type: 'string' },
    node: { type: 'string' },
  },
});
const positive = (name, fallback) => {
  const value = args[name] ?? String(fallback);
  if (!/^[1-9]\d*$/.test(value))
    throw new Error(`--${name} must be a positive integer, got ${value}`);
  return Number(value);
};
const preset = args.preset ?? 'baby';
if (!['nano', 'baby', 'seed'].includes(preset))
  throw new Error(`--preset must be nano, baby or seed, got ${preset}`);
const backend = args.backend ?? 'wasm';
if (!['wasm', 'webgpu', 'cpu'].includes(backend))
  throw new Error(`--backend must be wasm, webgpu or cpu, got ${backend}`);
const steps = positive('steps', 30);
const warmup = positive('warmup', 5);
const cores = cpus().length;
const threadCounts = (args.threads ?? (cores > 1 ? `1,${cores}` : '1')).split(',').map((value) => {
  if (!/^[1-9]\d*$/.test(value)) throw new Error(`--threads: ${value} is not a positive integer`);
  return Number(value);
});
const root = fileURLToPath(new URL('..', import.meta.url));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const loadBefore = loadavg()[0];
const server = await servePage(root);
const browser = await launchChromium();
const results = [];
try {
  for (const threads of backend === 'wasm' ? threadCounts : [undefined]) {
    const page = await browser.newPage();
    await page.goto(`${server.url}${threads ? `?threads=${threads}` : ''}`);
    await page.selectOption('[data-testid="sample"]', 'lighthouse');
    await page.selectOption('[data-testid="preset"]', preset);
    await page.fill('[data-testid="max-iters"]', String(warmup + steps + 1));
    await page.selectOption('[data-testid="backend"]', backend);
    // Compiles the harness's polling code before the long-task record starts on Start.
    await page.waitForFunction(() => window.trainInBrowser.state === 'idle', null, {
      polling: 500,
    });
    const load = loadavg()[0];
    await page.click('[data-testid="start"]');
    await page.waitForFunction(
      (wanted) =>
        window.trainInBrowser.steps.length >= wanted ||
        window.trainInBrowser.state === 'failed' ||
        window.trainInBrowser.errors.length > 0,
      warmup + steps + 1,
      // Polled on a timer, not every frame: the harness stays off the main thread.
      { timeout: 1_800_000, polling: 500 },
    );
    const state = await page.evaluate(() => JSON.parse(JSON.stringify(window.trainInBrowser)));
    if (state.errors.length > 0) throw new Error(`the page failed: ${state.errors.join('; ')}`);
    // Step k's time: elapsed at step k minus elapsed at step k − 1 (step 1 also carries the
    // evaluation at iteration 0, so the warm-up starts there).
    const times = state.steps
      .slice(warmup + 1, warmup + steps + 1)
      .map((step, index) => step.elapsedMs - state.steps[warmup + index].elapsedMs);
    const tokens = state.run.batchSize * state.run.blockSize;
    const rates = times.map((ms) => (tokens * 1000) / ms);
    results.push({
      threads,
      backendLine: state.backendLine,
      ms: median(times),
      rate: median(rates),
      low: Math.min(...rates),
      high: Math.max(...rates),
      longestTaskMs: state.responsiveness.longestTaskMs,
      maxTimerLagMs: state.responsiveness.maxTimerLagMs,
      load,
      run: state.run,
    });
    console.log(
      `  ${state.backendLine}: ${median(rates).toFixed(0)} tokens/s (median step ${median(times).toFixed(0)} ms)`,
    );
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
}

// The reference: the Node trainer on the same machine, text, preset and steps. Imported here
// (the packages' built dist/), not at the top: the browser part needs no build of them.
if ((args.node ?? 'true') !== 'false') {
  const { binarize } = await import('@minigpt/data/node');
  const { startTraining } = await import('@minigpt/trainer/node');
  const scratch = mkdtempSync(join(tmpdir(), 'train-in-browser-bench-'));
  try {
    const input = join(scratch, 'lighthouse.txt');
    writeFileSync(input, readFileSync(join(root, 'src', 'samples', 'lighthouse.txt')));
    await binarize({ input, outDir: join(scratch, 'data') });
    // tfjs's own kernels; the page's (@minigpt/wasm-kernels: MINIGPT_NATIVE=0 hides the
    // addon, and startTraining falls back to them); the native addon.
    for (const kernelSet of ['tfjs', 'wasm', 'native']) {
      const load = loadavg()[0];
      if (kernelSet === 'wasm') process.env.MINIGPT_NATIVE = '0';
      const trainer = await startTraining({
        dataDir: join(scratch, 'data'),
        outDir: join(scratch, `run-${kernelSet}`),
        backend: 'wasm',
        nativeKernels: kernelSet !== 'tfjs',
        estimate: false,
        config: { preset, maxIters: warmup + steps + 1 },
      });
      delete process.env.MINIGPT_NATIVE;
      const times = [];
      let detail = '';
      try {
        for await (const event of trainer.run()) {
          if (event.type === 'start') {
            const kernels = event.nativeKernels;
            detail = !kernels?.installed
              ? `tfjs kernels, 1 thread${kernelSet !== 'tfjs' && kernels?.reason ? ` (${kernels.reason})` : ''}`
              : kernels.kind === 'wasm'
                ? 'WebAssembly kernels, 1 thread'
                : `native kernels, ${kernels.threads} threads`;
          }
          if (event.type === 'step' && event.iter > warmup && event.iter <= warmup + steps)
            times.push(event.msPerIter);
        }
      } finally {
        trainer.dispose();
      }
      const tokens = results[0].run.batchSize * results[0].run.blockSize;
      const rates = times.map((ms) => (tokens * 1000) / ms);
      results.push({
        backendLine: `Node trainer, wasm (${detail})`,
        ms: median(times),
        rate: median(rates),
        low: Math.min(...rates),
        high: Math.max(...rates),
        longestTaskMs: Number.NaN,
        load,
        run: results[0].run,
      });
      console.log(
        `  Node trainer, wasm (${detail}): ${median(rates).toFixed(0)} tokens/s (median step ${median(times).toFixed(0)} ms)`,
      );
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const cpu = cpus()[0]?.model?.trim() ?? 'CPU';
const { run } = results[0];
console.log(
  `\nbrowser training benchmark — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpu}, ${cores} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Chromium ${browser.version()}; 1-minute load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after`,
);
console.log(
  `${preset} preset (${run.nLayer} layers, ${run.nEmbd} wide, ${(run.parameters / 1e6).toFixed(2)} M parameters, vocab ${run.vocabSize}), batch ${run.batchSize} × ${run.blockSize} tokens; median of ${steps} steps after ${warmup} warm-up steps\n`,
);
const header = [
  'backend',
  'tokens/s (median)',
  'range',
  'ms/step',
  'longest main-thread task',
  'load',
];
const rows = results.map((result) => [
  result.backendLine.split(' — ')[0],
  result.rate.toFixed(0),
  `${result.low.toFixed(0)}–${result.high.toFixed(0)}`,
  result.ms.toFixed(0),
  Number.isNaN(result.longestTaskMs)
    ? '—'
    : result.longestTaskMs > 0
      ? `${result.longestTaskMs.toFixed(0)} ms`
      : 'none ≥ 50 ms',
  result.load.toFixed(1),
]);
const widths = header.map((title, column) =>
  Math.max(title.length, ...rows.map((row) => row[column].length)),
);
const line = (cells) =>
  `| ${cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join(' | ')} |`;
console.log(line(header));
console.log(`| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`);
for (const row of rows) console.log(line(row));
const best = Math.max(
  ...results
    .filter((result) => !result.backendLine.startsWith('Node'))
    .map((result) => result.rate),
);
if (preset === 'baby' && backend === 'wasm') {
  console.log(
    `\nbest: ${best.toFixed(0)} tokens/s [issue #13's goal, baby on wasm with threads: ≥ 3,000 tokens/s: ${best >= 3000 ? 'met' : 'MISSED'}]`,
  );
}
