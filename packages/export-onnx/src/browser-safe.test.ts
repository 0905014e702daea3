// The root entry — graph building, ONNX encoding, the Hugging Face files, exportFiles — runs
// in a browser (a page exports what it trained): bundled for the browser, it reaches no Node
// built-in; the `./node` entry (directories) does.
import { fileURLToPath } from 'node:url';
import { bundleForBrowser } from '@minigpt/browser-bundle';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

describe('the root entry', () => {
  it('reaches no node: module when bundled for the browser', async () => {
    const { nodeImports, code } = await bundleForBrowser(packageDir, 'src/index.ts');
    expect(nodeImports).toEqual([]);
    expect(code).toMatch(/function exportFiles\(/);
  });

  it('while the Node entry does (the check can fail)', async () => {
    const { nodeImports } = await bundleForBrowser(packageDir, 'src/node/index.ts');
    expect(nodeImports).toContain('src/node/export.ts → node:fs/promises');
  });
});
