// End to end in a real browser: Debian's Chromium, driven by playwright-core, loads the built
// demo from `vite preview` on localhost and generates 100 tokens — on wasm, and on WebGPU
// (Chromium's SwiftShader adapter, no GPU needed): one row, a batch of rows, and the int8
// graph. The text must be what @minigpt/runner-node writes for the same model, prompt and
// settings. Screenshots go to test-output/.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '@minigpt/runner-node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const demo = fileURLToPath(new URL('..', import.meta.url));
const chromiumPath = process.env['MINIGPT_CHROMIUM'] ?? '/usr/bin/chromium';
const prompt = 'Call me';
let server: PreviewServer;
let url: string;

beforeAll(async () => {
  execFileSync(process.execPath, [join(demo, 'scripts', 'build-model.mjs')], { stdio: 'inherit' });
  await build({ root: demo, logLevel: 'error' });
  server = await preview({
    root: demo,
    preview: { port: 0, host: '127.0.0.1' },
    logLevel: 'error',
  });
  url = server.resolvedUrls!.local[0]!;
}, 180_000);

afterAll(async () => {
  await server?.close();
});

async function launch(): Promise<Browser> {
  if (!existsSync(chromiumPath))
    throw new Error(
      `${chromiumPath} not found: install Debian's chromium (apt-get install chromium)`,
    );
  return chromium.launch({
    executablePath: chromiumPath,
    // A fresh profile each launch (playwright's default); no network beyond localhost.
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
}

/** Opens the demo on `device` with the `dtype` graph, once the model is ready. */
async function openDemo(
  browser: Browser,
  device: 'wasm' | 'webgpu',
  dtype: 'fp32' | 'q8' = 'fp32',
): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${url}?device=${device}&dtype=${dtype}`);
  await page.waitForFunction(
    () =>
      !(document.getElementById('generate') as HTMLButtonElement).disabled ||
      document.body.dataset['state'] === 'error',
    null,
    { timeout: 120_000 },
  );
  expect(await page.textContent('#error')).toBe('');
  expect(await page.evaluate(() => document.body.dataset['device'])).toBe(device);
  expect(await page.evaluate(() => document.body.dataset['dtype'])).toBe(dtype);
  // The page is cross-origin isolated, so wasm runs multi-threaded (every core up to 4):
  // onnxruntime-web's thread workers start from its own chunk, not the page's script.
  const { isolated, cores, threads } = await page.evaluate(() => ({
    isolated: globalThis.crossOriginIsolated,
    cores: navigator.hardwareConcurrency,
    threads: Number(document.body.dataset['threads']),
  }));
  expect(isolated).toBe(true);
  expect(threads).toBe(Math.min(4, cores));
  return page;
}

/** Generates 100 tokens per row in the page; returns each row's text. */
async function generateInPage(page: Page, temperature: number, batch = 1): Promise<string[]> {
  await page.fill('#prompt', prompt);
  await page.fill('#max-tokens', '100');
  await page.fill('#temperature', String(temperature));
  await page.fill('#batch', String(batch));
  await page.click('#generate');
  await page.waitForFunction(() => document.body.dataset['state'] === 'done', null, {
    timeout: 120_000,
  });
  expect(await page.textContent('#error')).toBe('');
  const texts =
    batch === 1
      ? [(await page.textContent('#output')) ?? '']
      : await page.$$eval('#output .row', (rows) => rows.map((row) => row.textContent ?? ''));
  const { device, dtype } = await page.evaluate(() => ({ ...document.body.dataset }));
  mkdirSync(join(demo, 'test-output'), { recursive: true });
  await page.screenshot({
    path: join(demo, 'test-output', `${device}-${dtype}-t${temperature}-b${batch}.png`),
  });
  return texts;
}

describe('web demo in Chromium', () => {
  it('keeps onnxruntime-node and TensorFlow.js out of the bundle', () => {
    const assets = join(demo, 'dist', 'assets');
    for (const file of readdirSync(assets).filter((name) => name.endsWith('.js'))) {
      const code = readFileSync(join(assets, file), 'utf8');
      expect(code).not.toMatch(/onnxruntime-node|@tensorflow\/tfjs|onnxruntime_binding\.node/);
    }
  });

  it('shows a clear error in the page when the model is missing, and stops on Stop', async () => {
    const browser = await launch();
    try {
      const missing = await browser.newPage();
      await missing.goto(`${url}?device=wasm&model=nothing-here`);
      await missing.waitForFunction(() => document.body.dataset['state'] === 'error', null, {
        timeout: 60_000,
      });
      // vite preview answers unknown paths with the page itself (SPA fallback): the runner says so.
      expect(await missing.textContent('#error')).toMatch(
        /nothing-here\/minigpt\.json: not valid JSON \(damaged, or the server returned a page instead of the file\?\)/,
      );
      const page = await browser.newPage();
      await page.goto(`${url}?device=wasm`);
      await page.waitForFunction(
        () => !(document.getElementById('generate') as HTMLButtonElement).disabled,
        null,
        { timeout: 60_000 },
      );
      await page.fill('#max-tokens', '100000');
      await page.click('#generate');
      await page.waitForFunction(
        () => (document.getElementById('output')?.textContent ?? '').length > 20,
        null,
        { timeout: 60_000 },
      );
      await page.click('#stop');
      await page.waitForFunction(() => document.body.dataset['state'] === 'done', null, {
        timeout: 60_000,
      });
      expect(await page.textContent('#stats')).toMatch(/\(abort\)$/);
    } finally {
      await browser.close();
    }
  }, 120_000);

  for (const device of ['wasm', 'webgpu'] as const) {
    it(`generates runner-node's text on ${device}: greedy, sampled with the default seed, and a batch`, async () => {
      const node = await loadModel(join(demo, 'public', 'model'));
      const browser = await launch();
      try {
        const page = await openDemo(browser, device);
        for (const temperature of [0, 0.8]) {
          const expected = await node.generate(prompt, { maxNewTokens: 100, temperature }).text();
          expect(await generateInPage(page, temperature)).toEqual([expected]);
        }
        // Four rows of one batch: row i samples with seed 1337 + i, as runner-node's rows do.
        const settings = { maxNewTokens: 100, temperature: 0.8 };
        const expected = await node.generateBatch(Array<string>(4).fill(prompt), settings).texts();
        expect(new Set(expected).size).toBe(4);
        expect(await generateInPage(page, 0.8, 4)).toEqual(expected);
      } finally {
        await browser.close();
        await node.dispose();
      }
    }, 240_000);
  }

  it("generates runner-node's text from the int8 graph on wasm (dtype q8)", async () => {
    const node = await loadModel(join(demo, 'public', 'model'), { dtype: 'q8' });
    const browser = await launch();
    try {
      const expected = await node.generate(prompt, { maxNewTokens: 100, temperature: 0 }).text();
      expect(await generateInPage(await openDemo(browser, 'wasm', 'q8'), 0)).toEqual([expected]);
    } finally {
      await browser.close();
      await node.dispose();
    }
  }, 120_000);
});
