// meta.json: what a prepared data directory holds, checked before any token file is read. Every
// field is typed and bounded (the file may come from anywhere); whether the token files agree
// with it is for the dataset to check. Reading the file from a directory is in ./node/meta.ts.
import { checkSchema, preview } from '@minigpt/errors';
import * as z from 'zod';
import { DataError } from './errors.js';
import type { NewlineMode } from './text.js';

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

/** Token and character counts: whole, non-negative, exact as doubles. */
const count = z.int().min(0, { error: 'must be a whole number ≥ 0' });

const metaSchema = z
  .object({
    format: z.literal('minigpt-data'),
    formatVersion: z.literal(DATA_FORMAT_VERSION),
    dtype: z.enum(['uint16', 'uint32']),
    // uint32 ids reach 2^32 − 1, so 2^32 entries at most; uint16's bound is checked below.
    vocabSize: z
      .int()
      .min(1, { error: 'must be at least 1' })
      .max(2 ** 32, { error: 'must be ≤ 4294967296 (uint32 ids)' }),
    tokenizer: z
      .string()
      .min(1, { error: 'must name a tokenizer type' })
      .max(100, { error: 'must be ≤ 100 characters' }),
    trainTokens: count,
    valTokens: count,
    trainCharacters: count,
    valCharacters: count,
    valFraction: z
      .number()
      .gt(0, { error: 'must be between 0 and 1 (exclusive)' })
      .lt(1, { error: 'must be between 0 and 1 (exclusive)' }),
    newlines: z.enum(['universal', 'keep']),
    source: z.object({
      file: z
        .string()
        .min(1, { error: 'must name the input file' })
        .max(4096, { error: 'must be ≤ 4096 characters' }),
      bytes: count,
      sha256: z.string().regex(/^[0-9a-f]{64}$/, { error: 'must be 64 lowercase hex digits' }),
    }),
  })
  .check((context) => {
    const { dtype, vocabSize } = context.value;
    if (dtype === 'uint16' && vocabSize > 65536) {
      context.issues.push({
        code: 'custom',
        path: ['vocabSize'],
        message: 'must be ≤ 65536 when dtype is "uint16" (ids 0…65535)',
        input: vocabSize,
      });
    }
  });

/**
 * Checks parsed meta.json content; `source` names it in errors (its path, or where it came
 * from). Format and version are checked first, with their own messages: another file type, or a
 * newer writer, needs a different fix than a damaged field.
 */
export function parseMeta(json: unknown, source: string): DataMeta {
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const { format, formatVersion } = json as Record<string, unknown>;
    if (format !== 'minigpt-data') {
      throw new DataError(source, 'is not a minigpt data meta file (no "format": "minigpt-data")');
    }
    if (formatVersion !== DATA_FORMAT_VERSION) {
      throw new DataError(
        source,
        `has format version ${preview(formatVersion)}; this @minigpt/data reads version ${DATA_FORMAT_VERSION}`,
        typeof formatVersion === 'number' && formatVersion > DATA_FORMAT_VERSION
          ? 'Upgrade @minigpt/data'
          : { remedy: 'prepare-again' },
      );
    }
  }
  return checkSchema(
    metaSchema,
    json,
    (problem) => new DataError(source, problem, { remedy: 'prepare-again' }),
  );
}
