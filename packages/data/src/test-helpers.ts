// Helpers for this package's tests: a fresh temp directory per test, cleaned up after, and
// token files and meta.json written by hand (little-endian hosts only, as every CI runner).
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
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

/** Overwrites the token at `index` of a .bin file with `id` (little-endian), in place. */
export function writeTokenAt(
  path: string,
  index: number,
  id: number,
  dtype: 'uint16' | 'uint32' = 'uint16',
): void {
  const width = dtype === 'uint16' ? 2 : 4;
  const bytes = Buffer.alloc(width);
  if (dtype === 'uint16') bytes.writeUInt16LE(id);
  else bytes.writeUInt32LE(id);
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, width, index * width);
  } finally {
    closeSync(fd);
  }
}

/** The meta.json binarize would write for these splits, for tests that write data by hand. */
export function metaFor(
  dtype: 'uint16' | 'uint32',
  vocabSize: number,
  trainTokens: number,
  valTokens: number,
): Record<string, unknown> {
  return {
    format: 'minigpt-data',
    formatVersion: 1,
    dtype,
    vocabSize,
    tokenizer: 'char',
    trainTokens,
    valTokens,
    trainCharacters: trainTokens,
    valCharacters: valTokens,
    valFraction: 0.1,
    newlines: 'universal',
    source: { file: 'input.txt', bytes: trainTokens + valTokens, sha256: 'ab'.repeat(32) },
  };
}

/** Writes train.bin, val.bin and meta.json (no vocab.json) for these ids into `dir`. */
export function writeSplits(
  dir: string,
  dtype: 'uint16' | 'uint32',
  vocabSize: number,
  train: readonly number[],
  val: readonly number[],
): void {
  const encode = (ids: readonly number[]) =>
    Buffer.from((dtype === 'uint16' ? Uint16Array.from(ids) : Uint32Array.from(ids)).buffer);
  writeFileSync(join(dir, 'train.bin'), encode(train));
  writeFileSync(join(dir, 'val.bin'), encode(val));
  writeFileSync(
    join(dir, 'meta.json'),
    JSON.stringify(metaFor(dtype, vocabSize, train.length, val.length)),
  );
}
