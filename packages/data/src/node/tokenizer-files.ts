// Reads a ready-made tokenizer from disk, in the layouts people have one in: a Hugging Face
// model directory (tokenizer.json, or GPT-2's older vocab.json + merges.txt), a minigpt export
// or prepared-data directory, or one of those JSON files named directly. The files are
// untrusted: sizes are capped before reading, and the tokenizer package checks every field.
import { stat, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  bpeFromHuggingFace,
  bpeFromVocabMerges,
  tokenizerFromJSON,
  type Tokenizer,
} from '@minigpt/tokenizer';
import { DataError } from '../errors.js';

/**
 * Largest tokenizer file read, in bytes. GPT-2's tokenizer.json is 1.4 MB and the largest
 * vocabularies in use (250 k tokens) take about 20 MB; a bigger file is not a tokenizer.
 */
export const MAX_TOKENIZER_FILE_BYTES = 64 << 20;

/** The files a directory is searched for, in order; the first layout found is read. */
export const TOKENIZER_LAYOUTS = [
  ['tokenizer.json'],
  ['vocab.json', 'merges.txt'],
  ['tokenizer.minigpt.json'],
] as const;

export interface TokenizerFiles {
  readonly tokenizer: Tokenizer;
  /** The files it was read from (full paths). */
  readonly files: readonly string[];
}

/**
 * Reads the tokenizer at `path`: a directory (searched for TOKENIZER_LAYOUTS in order) or a
 * file — a Hugging Face tokenizer.json, or minigpt's own tokenizer JSON (a prepared
 * directory's vocab.json, an export's tokenizer.minigpt.json). A prepared-data directory's
 * vocab.json is minigpt's JSON, not GPT-2's vocab.json: without a merges.txt beside it, a
 * vocab.json is read as minigpt's.
 */
export async function readTokenizerFiles(path: string): Promise<TokenizerFiles> {
  const info = await stat(path).catch(() => undefined);
  if (!info)
    throw new DataError(path, 'not found: give a tokenizer.json or a directory holding one');
  if (info.isFile()) return { tokenizer: await tokenizerFromFile(path), files: [path] };
  for (const layout of TOKENIZER_LAYOUTS) {
    const files = layout.map((name) => join(path, name));
    const present = await Promise.all(files.map((file) => isFile(file)));
    if (!present.every(Boolean)) continue;
    if (layout.length === 2) {
      const [vocabPath, mergesPath] = files as [string, string];
      const vocab = await readJson(vocabPath);
      // A prepared directory's vocab.json is minigpt's own JSON (it has `type`).
      if (isMinigptJson(vocab))
        return { tokenizer: tokenizerFromJSON(vocab, vocabPath), files: [vocabPath] };
      const merges = await readText(mergesPath);
      return {
        tokenizer: bpeFromVocabMerges(vocab, merges, { vocab: vocabPath, merges: mergesPath }),
        files,
      };
    }
    return { tokenizer: await tokenizerFromFile(files[0]!), files };
  }
  // A prepared-data directory: its vocab.json alone.
  const prepared = join(path, 'vocab.json');
  if (await isFile(prepared)) {
    const json = await readJson(prepared);
    if (isMinigptJson(json))
      return { tokenizer: tokenizerFromJSON(json, prepared), files: [prepared] };
    throw new DataError(
      prepared,
      'is a GPT-2 style vocab.json but merges.txt is not beside it; a byte-level BPE needs both',
    );
  }
  throw new DataError(
    path,
    `holds no tokenizer: expected ${TOKENIZER_LAYOUTS.map((files) => files.join(' + ')).join(', or ')}`,
  );
}

async function tokenizerFromFile(path: string): Promise<Tokenizer> {
  const json = await readJson(path);
  if (isMinigptJson(json)) return tokenizerFromJSON(json, path);
  if (typeof json === 'object' && json !== null && 'model' in json)
    return bpeFromHuggingFace(json, path);
  throw new DataError(
    path,
    `is neither a Hugging Face tokenizer.json (no "model" key) nor a minigpt tokenizer JSON (no "type" and "version")${basename(path) === 'vocab.json' ? '; a GPT-2 vocab.json needs merges.txt beside it: give the directory' : ''}`,
  );
}

function isMinigptJson(json: unknown): boolean {
  return (
    typeof json === 'object' &&
    json !== null &&
    typeof (json as { type?: unknown }).type === 'string' &&
    typeof (json as { version?: unknown }).version === 'number'
  );
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

async function readText(path: string): Promise<string> {
  const { size } = await stat(path);
  if (size > MAX_TOKENIZER_FILE_BYTES) {
    throw new DataError(
      path,
      `is ${size} bytes; a tokenizer file is at most ${MAX_TOKENIZER_FILE_BYTES} bytes (${MAX_TOKENIZER_FILE_BYTES >> 20} MiB)`,
    );
  }
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new DataError(path, `cannot be read (${(error as Error).message})`);
  }
}

async function readJson(path: string): Promise<unknown> {
  const text = await readText(path);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new DataError(path, `is not valid JSON (${(error as Error).message})`);
  }
}
