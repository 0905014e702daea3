// Builds the native kernels with node-gyp when the package is installed. Never fails the
// install: without a C++ compiler (or node-gyp, or Node's headers) the package still loads
// and reports why, and training runs on tfjs's own wasm kernels.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'build', 'Release', 'minigpt_kernels.node');
const source = join(root, 'native', 'gemm.cc');

if (process.env.MINIGPT_NATIVE === '0') {
  console.log('@minigpt/native-kernels: MINIGPT_NATIVE=0, not building the addon');
  process.exit(0);
}
if (
  process.argv.includes('--if-stale') &&
  existsSync(addon) &&
  statSync(addon).mtimeMs >= statSync(source).mtimeMs
) {
  process.exit(0);
}

// node-gyp: the one npm or pnpm names for install scripts, else npm's own copy beside this
// Node, else whatever is on PATH.
const prefix = dirname(dirname(process.execPath));
const npmGyp = join(
  prefix,
  'lib',
  'node_modules',
  'npm',
  'node_modules',
  'node-gyp',
  'bin',
  'node-gyp.js',
);
const gyp = process.env.npm_config_node_gyp || (existsSync(npmGyp) ? npmGyp : undefined);
const rebuild = ['rebuild'];
// Offline machines: build against the headers of the Node that runs this (when it ships
// them) instead of letting node-gyp download them.
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h')))
  rebuild.push(`--nodedir=${prefix}`);
const [command, args] = gyp ? [process.execPath, [gyp, ...rebuild]] : ['node-gyp', rebuild];
const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: !gyp });
if (result.status !== 0) {
  console.warn(
    `@minigpt/native-kernels: the native addon was not built (${result.error?.message ?? `node-gyp exited with ${result.status}`}). ` +
      'Training still works on tfjs wasm kernels; for the fast path install a C++ compiler, make and python3, then run `npm rebuild @minigpt/native-kernels`.',
  );
}
