// meta.json: what a prepared data directory holds, checked before any token file is read.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from './errors.js';
import type { NewlineMode } from './text-reader.js';

export const DATA_FORMAT_VERSION = 1;
export const FILE_NAMES = {
  train: 'train.bin',
  val: 'val.bin',
  vocab: 'vocab.json',
  meta: 'meta.json',
} as const;

export type TokenDtype = 'uint16' | 'uint32';
export type Split = 'train' | 'val';

export interface DataMeta {
  readonly format: 'minigpt-data';
  readonly formatVersion: number;
  /** Token files are raw little-endian integers of this type, no header. */
  readonly dtype: TokenDtype;
  readonly vocabSize: number;
  /** The tokenizer's `type`; its JSON is in vocab.json. */
  readonly tokenizer: string;
  readonly trainTokens: number;
  readonly valTokens: number;
  readonly trainCharacters: number;
  readonly valCharacters: number;
  readonly valFraction: number;
  readonly newlines: NewlineMode;
  readonly source: { readonly file: string; readonly bytes: number; readonly sha256: string };
}

export function dtypeFor(vocabSize: number): TokenDtype {
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}

export function bytesPerToken(dtype: TokenDtype): number {
  return dtype === 'uint16' ? 2 : 4;
}

/** Reads and checks `dir/meta.json`. */
export async function readMeta(dir: string): Promise<DataMeta> {
  const path = join(dir, FILE_NAMES.meta);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataError(
        path,
        'not found: the directory holds no prepared data (or a prepare run did not finish)',
        'Run `minigpt prepare --out <dir>` to create it',
      );
    }
    throw new DataError(path, `cannot be read (${(error as Error).message})`);
  }
  let meta: Partial<DataMeta>;
  try {
    meta = JSON.parse(text) as Partial<DataMeta>;
  } catch (error) {
    throw new DataError(
      path,
      `is not valid JSON (${(error as Error).message})`,
      'Re-run `minigpt prepare --force`',
    );
  }
  if (meta.format !== 'minigpt-data') {
    throw new DataError(path, 'is not a minigpt data meta file (no "format": "minigpt-data")');
  }
  if (meta.formatVersion !== DATA_FORMAT_VERSION) {
    throw new DataError(
      path,
      `has format version ${String(meta.formatVersion)}; this @minigpt/data reads version ${DATA_FORMAT_VERSION}`,
      (meta.formatVersion ?? 0) > DATA_FORMAT_VERSION
        ? 'Upgrade @minigpt/data'
        : 'Re-run `minigpt prepare --force` to rewrite the data',
    );
  }
  const counts = [meta.vocabSize, meta.trainTokens, meta.valTokens];
  if (
    (meta.dtype !== 'uint16' && meta.dtype !== 'uint32') ||
    !counts.every((n) => Number.isInteger(n) && n! >= 0)
  ) {
    throw new DataError(
      path,
      'has a missing or invalid dtype, vocabSize or token count',
      'Re-run `minigpt prepare --force`',
    );
  }
  return meta as DataMeta;
}
