// Opens a prepared data directory: one split as a TokenDataset (checked against meta.json: size,
// and every id below vocabSize), or all of it — meta, both splits and the vocab.json tokenizer —
// as PreparedData. A split larger than RAM is read row by row from disk ('file' mode).
import { closeSync, openSync, readSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import {
  TokenDataset,
  datasetOverRows,
  tokensFromLittleEndian,
  type TokenRowReader,
} from '../dataset.js';
import { DataError } from '../errors.js';
import { badTokenIdError, findBadTokenId, idsCannotReach } from '../id-check.js';
import { FILE_NAMES, bytesPerToken, type DataMeta, type Split, type TokenDtype } from '../meta.js';
import type { PreparedData } from '../prepare.js';
import { findBadTokenIdInFile } from './file-id-check.js';
import { readMeta } from './meta.js';

export interface OpenDatasetOptions {
  /**
   * `'memory'` reads the split into RAM; `'file'` reads each row from disk (for splits
   * larger than RAM). Default: memory up to 1 GiB, file above.
   */
  readonly mode?: 'memory' | 'file';
  /**
   * Checks that every id in the split is below meta.json's `vocabSize` (default true). An id
   * out of range would otherwise fail deep inside the model's embedding lookup or, as a target
   * only, silently lower the loss. Pass `false` only for a file the caller has already checked.
   * In `'file'` mode this reads the whole file once at open, in 16 MiB chunks.
   */
  readonly checkIds?: boolean;
}

const MEMORY_LIMIT_BYTES = 1 << 30;

/** Opens `dir/train.bin` or `dir/val.bin`, checking it against meta.json first. */
export async function openTokenDataset(
  dir: string,
  split: Split,
  options: OpenDatasetOptions = {},
): Promise<TokenDataset> {
  if (split !== 'train' && split !== 'val') {
    throw new DataError(dir, `unknown split ${JSON.stringify(split)}; use 'train' or 'val'`);
  }
  return openSplit(dir, split, await readMeta(dir), options);
}

/**
 * Opens a prepared directory whole: meta.json, both splits, and the tokenizer in vocab.json
 * checked to be the one meta.json describes. What it opened is closed again when a later part
 * fails. `location` is the directory's absolute path.
 */
export async function openPreparedData(
  dir: string,
  options: OpenDatasetOptions = {},
): Promise<PreparedData> {
  const location = resolve(dir);
  const meta = await readMeta(location);
  const train = await openSplit(location, 'train', meta, options);
  let val: TokenDataset | undefined;
  try {
    val = await openSplit(location, 'val', meta, options);
    const tokenizer = await readDataTokenizer(location, meta);
    return { meta, tokenizer, train, val, location };
  } catch (error) {
    train.close();
    val?.close();
    throw error;
  }
}

async function openSplit(
  dir: string,
  split: Split,
  meta: DataMeta,
  options: OpenDatasetOptions,
): Promise<TokenDataset> {
  const path = join(dir, FILE_NAMES[split]);
  const length = split === 'train' ? meta.trainTokens : meta.valTokens;
  const expectedBytes = length * bytesPerToken(meta.dtype);
  let actualBytes: number;
  try {
    actualBytes = (await stat(path)).size;
  } catch {
    throw new DataError(path, 'not found, though meta.json lists it', {
      remedy: 'prepare-again',
    });
  }
  if (actualBytes !== expectedBytes) {
    throw new DataError(
      path,
      `has ${actualBytes} bytes but meta.json says ${length} ${meta.dtype} tokens (${expectedBytes} bytes): the file is truncated or from another run`,
      { remedy: 'prepare-again' },
    );
  }
  const mode = options.mode ?? (expectedBytes <= MEMORY_LIMIT_BYTES ? 'memory' : 'file');
  const checkIds = (options.checkIds ?? true) && !idsCannotReach(meta.dtype, meta.vocabSize);
  const parts = { split, vocabSize: meta.vocabSize, source: path };
  if (mode === 'memory') {
    const bytes = await readFile(path);
    // A buffer that owns its whole ArrayBuffer (readFile of a large file) is used as it is; a
    // slice of Node's shared pool (small reads) is copied once, so the array is aligned and no
    // pooled memory leaks out.
    const owned =
      bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength
        ? (bytes.buffer as ArrayBuffer)
        : new Uint8Array(bytes).buffer;
    const tokens = tokensFromLittleEndian(owned, meta.dtype);
    const bad = checkIds ? findBadTokenId(tokens, meta.vocabSize) : undefined;
    if (bad) throw badTokenIdError(path, meta.dtype, meta.vocabSize, bad);
    return TokenDataset.fromTokens(tokens, { ...parts, checkIds: false });
  }
  if (checkIds) {
    // Opening the file to scan it also surfaces permission errors now, not mid-training.
    const bad = await findBadTokenIdInFile(path, meta.dtype, meta.vocabSize, length);
    if (bad) throw badTokenIdError(path, meta.dtype, meta.vocabSize, bad);
  } else {
    const handle = await open(path, 'r'); // surface permission errors now, not mid-training
    await handle.close();
  }
  return datasetOverRows({ ...parts, rows: fileRows(path, meta.dtype, length) });
}

/** Reads each window from the file when asked: memory stays flat whatever the split's size. */
function fileRows(path: string, dtype: TokenDtype, length: number): TokenRowReader {
  let fd: number | undefined = openSync(path, 'r');
  const width = bytesPerToken(dtype);
  return {
    length,
    read(start, out) {
      if (fd === undefined) throw new DataError(path, 'is closed');
      const bytes = new Uint8Array(out.length * width);
      const read = readSync(fd, bytes, 0, bytes.length, start * width);
      if (read !== bytes.length) {
        throw new DataError(
          path,
          `ended at byte ${start * width + read} while a batch was read: it changed after it was opened (if something is still writing it, wait for it to finish)`,
          { remedy: 'prepare-again' },
        );
      }
      out.set(tokensFromLittleEndian(bytes.buffer, dtype));
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/**
 * The tokenizer saved beside the data (vocab.json), checked to be the one meta.json
 * describes: same type and vocabSize, so decoded ids and the model's vocabulary agree.
 */
export async function readDataTokenizer(dir: string, meta: DataMeta): Promise<Tokenizer> {
  const path = join(dir, FILE_NAMES.vocab);
  const rerun = { remedy: 'prepare-again' } as const;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataError(path, 'not found, though meta.json lists it', rerun);
    }
    throw new DataError(path, `cannot be read (${(error as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DataError(path, `is not valid JSON (${(error as Error).message})`, rerun);
  }
  // A malformed tokenizer is refused by the tokenizer package (TokenizerError naming path).
  const tokenizer = tokenizerFromJSON(json, path);
  if (tokenizer.type !== meta.tokenizer) {
    throw new DataError(
      path,
      `holds a ${JSON.stringify(tokenizer.type)} tokenizer but meta.json says ${JSON.stringify(meta.tokenizer)}: the files come from different prepare runs`,
      rerun,
    );
  }
  if (tokenizer.vocabSize !== meta.vocabSize) {
    throw new DataError(
      path,
      `holds a tokenizer with vocabSize ${tokenizer.vocabSize} but meta.json says ${meta.vocabSize}: the files come from different prepare runs`,
      rerun,
    );
  }
  return tokenizer;
}
