#!/usr/bin/env node
// The `minigpt` executable that package managers link. It is a committed file, not a build
// output, so that `pnpm install` in a fresh clone can link it before anything is built; the
// CLI itself is dist/bin.js, compiled from src/bin.ts.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const cli = new URL('../dist/bin.js', import.meta.url);
if (existsSync(cli)) {
  await import(cli.href);
} else {
  process.stderr.write(
    'minigpt: error: the CLI is not built yet (no dist/bin.js). In a clone of the repository, run `npx pnpm@10.34.8 build` first.\n',
  );
  process.exitCode = 1;
}
