// The install-time build never fails an install: without a working C++ compiler it warns,
// says what to do, and leaves no addon behind (installNativeKernels then explains, and
// training runs on tfjs's wasm kernels).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'minigpt-native-build-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('building the addon on install', () => {
  it('without a compiler: exits 0 with a warning that says what to do, and no addon', () => {
    for (const entry of ['binding.gyp', 'native', 'scripts', 'package.json'])
      cpSync(join(packageDir, entry), join(work, entry), { recursive: true });
    const result = spawnSync(process.execPath, [join(work, 'scripts', 'build-addon.mjs')], {
      cwd: work,
      encoding: 'utf8',
      // `false` stands in for a missing compiler: every compile fails.
      env: { ...process.env, CXX: 'false', CC: 'false' },
    });
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(
      /@minigpt\/native-kernels: the native addon was not built .*Training still works on tfjs wasm kernels.*npm rebuild @minigpt\/native-kernels/,
    );
    expect(existsSync(join(work, 'build', 'Release', 'minigpt_kernels.node'))).toBe(false);
  });
});
