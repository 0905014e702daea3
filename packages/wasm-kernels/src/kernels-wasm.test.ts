// src/kernels-wasm.ts is generated from csrc/kernels.c and committed: where clang can target
// wasm32 it must be exactly what the C compiles to now (a stale module would test and ship
// old kernels). CI installs clang, so there a missing clang fails instead of passing unchecked.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileKernels, kernelsModuleSource } from '../scripts/build-wasm.mjs';
import { kernelsWasmBytes } from './wasm-kernel-set.js';

/** Whether `clang` runs and links a tiny wasm32 module (it needs lld's wasm-ld too). */
function canCompileWasm(clang: string): boolean {
  const work = mkdtempSync(join(tmpdir(), 'minigpt-clang-probe-'));
  try {
    execFileSync(clang, ['--version'], { stdio: 'ignore' });
    writeFileSync(join(work, 'probe.c'), 'int probe(int x) { return x + 1; }\n');
    execFileSync(
      clang,
      [
        '--target=wasm32',
        '-nostdlib',
        '-Wl,--no-entry',
        '-Wl,--export=probe',
        '-o',
        join(work, 'probe.wasm'),
        join(work, 'probe.c'),
      ],
      { stdio: 'ignore' },
    );
    return WebAssembly.validate(readFileSync(join(work, 'probe.wasm')));
  } catch {
    return false;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const clang = process.env.CLANG ?? 'clang';
const committedSource = readFileSync(new URL('./kernels-wasm.ts', import.meta.url), 'utf8');

describe('the committed WebAssembly module', () => {
  it('validates and exports memory and the six kernels', () => {
    const bytes = kernelsWasmBytes();
    expect(WebAssembly.validate(bytes)).toBe(true);
    const exports = WebAssembly.Module.exports(new WebAssembly.Module(bytes));
    const kinds = Object.fromEntries(exports.map(({ name, kind }) => [name, kind]));
    expect(kinds).toMatchObject({
      memory: 'memory',
      matmul: 'function',
      unary: 'function',
      layerNorm: 'function',
      layerNormGrad: 'function',
      adamw: 'function',
      sumOfSquares: 'function',
      __heap_base: 'global',
    });
    // Freestanding: the module imports nothing (no libc, no JavaScript glue).
    expect(WebAssembly.Module.imports(new WebAssembly.Module(bytes))).toEqual([]);
    // The header states the byte count.
    expect(committedSource).toContain(`from csrc/kernels.c (${bytes.length} bytes)`);
  });

  it('is what csrc/kernels.c compiles to now (needs clang; required in CI)', () => {
    if (!canCompileWasm(clang)) {
      if (process.env.CI)
        throw new Error(
          `${clang} cannot compile for wasm32 here, so src/kernels-wasm.ts cannot be checked against csrc/kernels.c: install clang and lld`,
        );
      // Without clang (outside CI) nothing can be said about the bytes; the test above still
      // checks the committed module is a valid one.
      return;
    }
    const fresh = compileKernels(clang);
    expect(Buffer.from(kernelsWasmBytes()).equals(fresh)).toBe(true);
    // And the file is exactly what the build writes (header, line breaks and all).
    expect(committedSource).toBe(kernelsModuleSource(fresh));
  });

  it('says when clang is missing rather than passing', () => {
    const missing = '/nowhere/clang';
    expect(canCompileWasm(missing)).toBe(false);
    expect(() => compileKernels(missing)).toThrow(/ENOENT/);
  });
});
