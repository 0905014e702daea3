// Helpers for this package's tests: a fresh temp directory per test, cleaned up after.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

export function useTempDir(): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'minigpt-data-test-'));
    dirs.push(dir);
    return dir;
  };
}

/** The token ids of a .bin file (a copy, so pooled Buffer memory never leaks in). */
export function readTokens(path: string, dtype: 'uint16' | 'uint32' = 'uint16'): number[] {
  const bytes = new Uint8Array(readFileSync(path)); // fresh, aligned ArrayBuffer
  return Array.from(
    dtype === 'uint16' ? new Uint16Array(bytes.buffer) : new Uint32Array(bytes.buffer),
  );
}
