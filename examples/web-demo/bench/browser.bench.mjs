// Benchmark: tokens/s of the seed-size model (6 layers, 256 wide, vocab 65; random weights)
// in headless Chromium on onnxruntime-web's wasm backend, through the demo page: 500 new
// tokens, median of 5 after a warm-up. Target (issue #5): ≥ 1,000 tokens/s.
// Usage: node bench/browser.bench.mjs [--device=wasm|webgpu] [--threads=N]
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { build, preview } from 'vite';

// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: {
    'write-export': { type: 'string' },
    device: { type: 'string' },
    threads: { type: 'string' },
  },
});
const demo = fileURLToPath(new URL('..', import.meta.url));
const modelDir = join(demo, 'public', 'bench-model');

if (args['write-export']) {
  // Child process: build and export the model (TensorFlow.js stays out of the parent).
  const tf = await import('@tensorflow/tfjs');
  const { exportModel } = await import('@minigpt/export-onnx');
  const { GPT, resolveGPTConfig } = await import('@minigpt/model');
  const { CharTokenizer } = await import('@minigpt/tokenizer');
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const tokenizer = CharTokenizer.fromText(
    "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
  );
  const config = resolveGPTConfig({ vocabSize: tokenizer.vocabSize }, 'seed');
  const model = GPT.create(config, { log: null });
  const { onnx, manifest } = exportModel(config, await model.weightData(), 'char');
  mkdirSync(modelDir, { recursive: true });
  writeFileSync(join(modelDir, 'model.onnx'), onnx);
  writeFileSync(join(modelDir, 'minigpt.json'), JSON.stringify(manifest));
  writeFileSync(join(modelDir, 'vocab.json'), JSON.stringify(tokenizer.toJSON()));
  process.exit(0);
}

const device = args.device ?? 'wasm';
if (!['wasm', 'webgpu'].includes(device)) {
  throw new Error(`--device must be wasm or webgpu, got ${device}`);
}
if (args.threads !== undefined && !/^[1-9]\d*$/.test(args.threads)) {
  throw new Error(`--threads must be a positive integer, got ${args.threads}`);
}
execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--write-export=1'], {
  stdio: 'inherit',
});
try {
  await build({ root: demo, logLevel: 'error' });
  const server = await preview({
    root: demo,
    preview: { port: 0, host: '127.0.0.1' },
    logLevel: 'error',
  });
  const browser = await chromium.launch({
    executablePath: process.env.MINIGPT_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--enable-unsafe-webgpu',
    ],
  });
  try {
    const page = await browser.newPage();
    await page.goto(
      `${server.resolvedUrls.local[0]}?device=${device}&model=bench-model${args.threads ? `&threads=${args.threads}` : ''}`,
    );
    await page.waitForFunction(
      () =>
        !document.getElementById('generate').disabled || document.body.dataset.state === 'error',
      null,
      { timeout: 120_000 },
    );
    const isolated = await page.evaluate(() => globalThis.crossOriginIsolated);
    await page.fill('#max-tokens', '500');
    await page.fill('#temperature', '1');
    const rates = [];
    const firsts = [];
    for (let run = 0; run < 6; run++) {
      await page.click('#generate');
      await page.waitForFunction(
        () =>
          document.body.dataset.state === 'done' &&
          document.getElementById('stats').dataset.tokensPerSec,
        null,
        { timeout: 300_000 },
      );
      const stats = await page.textContent('#stats');
      if (run > 0) {
        rates.push(
          Number(await page.evaluate(() => document.getElementById('stats').dataset.tokensPerSec)),
        );
        firsts.push(Number(/first token ([\d.]+) ms/.exec(stats)[1]));
      }
      await page.evaluate(() => delete document.getElementById('stats').dataset.tokensPerSec);
    }
    const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
    const rate = median(rates);
    const version = browser.version();
    console.log(
      `browser benchmark — ${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} cores, Chromium ${version}, ${device}, cross-origin isolated: ${isolated}`,
    );
    const threads = await page.evaluate(() => document.body.dataset.threads ?? '?');
    console.log(
      `seed-size model, 500 new tokens, ${threads} wasm thread(s): ${rate.toFixed(0)} tokens/s (median of ${rates.length}, ${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)}), first token ${median(firsts).toFixed(1)} ms  [target ≥ 1,000 tokens/s: ${rate >= 1000 ? 'met' : 'MISSED'}]`,
    );
  } finally {
    await browser.close();
    await server.close();
  }
} finally {
  rmSync(modelDir, { recursive: true, force: true });
}
