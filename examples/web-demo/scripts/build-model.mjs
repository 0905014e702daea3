// Builds the demo's model with the repo's own CLI, offline: prepare the default corpus,
// train a small model briefly, export it to public/model/. Skips work already done.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const demo = fileURLToPath(new URL('..', import.meta.url));
const cli = join(demo, '..', '..', 'packages', 'cli', 'dist', 'bin.js');
const work = join(demo, '.model-work');
const out = join(demo, 'public', 'model');
const minigpt = (...args) =>
  execFileSync(process.execPath, [cli, ...args], { cwd: demo, stdio: 'inherit' });

if (!existsSync(cli)) throw new Error(`${cli} is missing: run pnpm build at the repo root first`);
if (!existsSync(join(out, 'minigpt.json')) || process.argv.includes('--force')) {
  mkdirSync(work, { recursive: true });
  minigpt('prepare', '--out', join(work, 'data'), '--force');
  minigpt(
    'train',
    '--data',
    join(work, 'data'),
    '--out',
    join(work, 'run-' + Date.now()),
    '--preset=nano',
    '--nLayer=2',
    '--nEmbd=64',
    '--blockSize=64',
    '--maxIters=400',
    '--evalInterval=400',
    '--evalIters=2',
    '--no-progress',
    '--backend=wasm',
  );
  const runs = (await import('node:fs'))
    .readdirSync(work)
    .filter((name) => name.startsWith('run-'))
    .sort();
  minigpt('export', '--checkpoint', join(work, runs.at(-1)), '--out', out, '--force');
}
