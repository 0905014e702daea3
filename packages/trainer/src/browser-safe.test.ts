// The root entry — the loop, AdamW, evaluation, checkpoints over a RunStorage, the browser
// backends — runs in a browser tab or a Web Worker: bundled for the browser as a page's
// Vite build would, through the other packages' sources, it reaches no Node built-in.
import { fileURLToPath } from 'node:url';
import { bundleForBrowser } from '@minigpt/browser-bundle';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
// TensorFlow.js is made for browsers; leaving it out keeps the check on this code, and fast.
const options = { external: [/^@tensorflow\//] };

describe('the root entry', () => {
  it('reaches no node: module, through checkpoint, model and tokenizer too', async () => {
    const { nodeImports, modules, code } = await bundleForBrowser(
      packageDir,
      'src/index.ts',
      options,
    );
    expect(nodeImports).toEqual([]);
    for (const dependency of ['/checkpoint/src/run.ts', '/model/src/gpt.ts', '/tokenizer/src/'])
      expect(modules.some((id) => id.includes(dependency))).toBe(true);
    expect(code).toMatch(/class Trainer\b/);
  });

  it('while the Node entry does (the check can fail)', async () => {
    const { nodeImports } = await bundleForBrowser(packageDir, 'src/node/index.ts', options);
    expect(nodeImports).toContain('src/node/webgpu.ts → node:child_process');
  });
});

describe("the './config' entry", () => {
  it('reaches no TensorFlow.js and no node: module; the root entry reaches TensorFlow.js', async () => {
    const tensorFlowImport = /from\s*["']@tensorflow\//;
    const config = await bundleForBrowser(packageDir, 'src/config-entry.ts', options);
    expect(config.nodeImports).toEqual([]);
    expect(config.code).not.toMatch(tensorFlowImport);
    expect(config.code).toMatch(/DEFAULT_TRAIN_CONFIG/);
    const root = await bundleForBrowser(packageDir, 'src/index.ts', options);
    expect(root.code).toMatch(tensorFlowImport);
  });
});
