// The root entry runs in browsers: bundled for the browser the way a page's Vite build does
// (other packages through their sources), it reaches no Node built-in module.
import { fileURLToPath } from 'node:url';
import { bundleForBrowser } from '@minigpt/browser-bundle';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

describe('the root entry', () => {
  it('reaches no node: module when bundled for the browser', async () => {
    const { nodeImports, code } = await bundleForBrowser(packageDir, 'src/index.ts');
    expect(nodeImports).toEqual([]);
    expect(code).toMatch(/function opfsStorage\(/); // the bundle is the entry, storage and all
    expect(code).toMatch(/function parseCheckpointConfig\(/);
  });

  it('is told apart from ./node, which does use Node (the check can fail)', async () => {
    const { nodeImports } = await bundleForBrowser(packageDir, 'src/node/index.ts');
    expect(nodeImports).toContain('src/node/storage.ts → node:fs/promises');
  });
});
