// The root entry runs in browsers: bundled for the browser as a page would (through every
// workspace package's sources and zod), it reaches no Node built-in. The Node entry, bundled
// the same way, does: that checks the check.
import { fileURLToPath } from 'node:url';
import { bundleForBrowser } from '@minigpt/browser-bundle';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

describe('the browser-safe root entry', () => {
  it('reaches no node:* import, through its dependencies too', async () => {
    const { nodeImports, modules } = await bundleForBrowser(packageDir, 'src/index.ts');
    expect(nodeImports).toEqual([]);
    // It did follow the workspace packages' sources and zod, not stop at the package's edge.
    for (const dependency of ['/tokenizer/src/bpe.ts', '/errors/src/schema.ts', '/zod/'])
      expect(modules.some((id) => id.includes(dependency))).toBe(true);
  });

  it('while the Node entry does (the check sees them)', async () => {
    const { nodeImports } = await bundleForBrowser(packageDir, 'src/node/index.ts');
    expect(nodeImports).toContain('src/node/open.ts → node:fs');
  });
});
