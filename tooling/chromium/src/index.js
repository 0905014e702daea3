// Test and bench support for the example pages: launch Debian's Chromium (never a browser
// download: this workplace reaches only the npm registry and Debian) with the flags every
// page test uses, and serve an example's production build with `vite preview` on localhost.
// Plain JavaScript, so the bench scripts (.mjs, run by node) import it as the tests do.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { chromium } from 'playwright-core';
import { build, preview } from 'vite';

/** Where Chromium is: Debian's package, or MINIGPT_CHROMIUM. */
export const CHROMIUM_PATH = process.env['MINIGPT_CHROMIUM'] ?? '/usr/bin/chromium';

/**
 * Headless Chromium with a fresh profile (playwright's default), no network beyond
 * localhost, and WebGPU allowed (on this machine: SwiftShader's software adapter).
 * @param {{ args?: readonly string[] }} [options] extra command-line flags
 */
export async function launchChromium(options = {}) {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(
      `${CHROMIUM_PATH} not found: install Debian's chromium (apt-get install chromium), or set MINIGPT_CHROMIUM`,
    );
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--enable-unsafe-webgpu',
      ...(options.args ?? []),
    ],
  });
}

/**
 * Builds the Vite project at `root` and serves the build on 127.0.0.1 at a free port, with
 * the project's own preview settings (its headers: cross-origin isolation).
 * @param {string} root
 */
export async function servePage(root) {
  await build({ root, logLevel: 'error' });
  const server = await preview({
    root,
    preview: { port: 0, host: '127.0.0.1' },
    logLevel: 'error',
  });
  const url = server.resolvedUrls?.local[0];
  if (!url) {
    await server.close();
    throw new Error(`vite preview of ${root} has no local URL`);
  }
  return { url, close: () => server.close() };
}
