// Finds the first token id that reaches the vocabulary size in a split, held in memory or
// read from disk in large chunks. It knows the .bin layout (raw little-endian ids, no header)
// but not where the limit comes from: the caller passes meta.json's vocabSize.
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { DataError } from './errors.js';
import { bytesPerToken, type TokenDtype } from './meta.js';

/** An id at or above the vocabulary size, and where it is. */
export interface BadTokenId {
  /** Index in the split's tokens. */
  readonly index: number;
  readonly id: number;
}

/**
 * Tokens per call of `maxId`. Calling the kernel per chunk, not once over a gigabyte, lets V8
 * optimise it after a few calls instead of running the first pass in a slower tier.
 */
const SCAN_CHUNK_TOKENS = 1 << 22;

/** Bytes per read when scanning a file: big enough that syscalls cost nothing, two in memory. */
export const FILE_SCAN_CHUNK_BYTES = 16 * 2 ** 20;

/** true when no id of this dtype can reach `vocabSize` (a full uint16 or uint32 vocabulary). */
export function idsCannotReach(dtype: TokenDtype, vocabSize: number): boolean {
  return vocabSize >= 2 ** (8 * bytesPerToken(dtype));
}

/**
 * The largest id in tokens[start, end). Eight running maxima break the dependency chain of a
 * single one (faster than `m = v > m ? v : m` on Node 20 in a scratch measurement, roughly
 * 250 against 330 ms for 500M uint16 ids); the branches are almost never taken after the
 * first few tokens, so they predict well.
 */
export function maxId(tokens: Uint16Array | Uint32Array, start: number, end: number): number {
  let m0 = 0;
  let m1 = 0;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  let m5 = 0;
  let m6 = 0;
  let m7 = 0;
  const unrolledEnd = end - ((end - start) & 7);
  let i = start;
  for (; i < unrolledEnd; i += 8) {
    const v0 = tokens[i]!;
    const v1 = tokens[i + 1]!;
    const v2 = tokens[i + 2]!;
    const v3 = tokens[i + 3]!;
    const v4 = tokens[i + 4]!;
    const v5 = tokens[i + 5]!;
    const v6 = tokens[i + 6]!;
    const v7 = tokens[i + 7]!;
    if (v0 > m0) m0 = v0;
    if (v1 > m1) m1 = v1;
    if (v2 > m2) m2 = v2;
    if (v3 > m3) m3 = v3;
    if (v4 > m4) m4 = v4;
    if (v5 > m5) m5 = v5;
    if (v6 > m6) m6 = v6;
    if (v7 > m7) m7 = v7;
  }
  for (; i < end; i++) if (tokens[i]! > m0) m0 = tokens[i]!;
  return Math.max(m0, m1, m2, m3, m4, m5, m6, m7);
}

/** The first id ≥ `vocabSize` in tokens[start, end), or undefined. */
function firstAtOrAbove(
  tokens: Uint16Array | Uint32Array,
  start: number,
  end: number,
  vocabSize: number,
): BadTokenId | undefined {
  // Only a chunk whose maximum is too big gets here, so this plain loop runs rarely.
  for (let i = start; i < end; i++) {
    if (tokens[i]! >= vocabSize) return { index: i, id: tokens[i]! };
  }
  return undefined;
}

/** The first id ≥ `vocabSize` in a split held in memory, or undefined when all are valid. */
export function findBadTokenId(
  tokens: Uint16Array | Uint32Array,
  vocabSize: number,
): BadTokenId | undefined {
  for (let start = 0; start < tokens.length; start += SCAN_CHUNK_TOKENS) {
    const end = Math.min(tokens.length, start + SCAN_CHUNK_TOKENS);
    if (maxId(tokens, start, end) >= vocabSize) {
      return firstAtOrAbove(tokens, start, end, vocabSize);
    }
  }
  return undefined;
}

/**
 * The first id ≥ `vocabSize` in the `tokens`-token file at `path`, read once from start to
 * end in chunks of `chunkBytes` without holding the file: the next chunk is read while this
 * one is scanned. The caller has already checked the file's size against meta.json.
 */
export async function findBadTokenIdInFile(
  path: string,
  dtype: TokenDtype,
  vocabSize: number,
  tokens: number,
  chunkBytes = FILE_SCAN_CHUNK_BYTES,
): Promise<BadTokenId | undefined> {
  const width = bytesPerToken(dtype);
  // Whole tokens per chunk, so none straddles two reads and every view is aligned.
  const chunkTokens = Math.max(1, Math.floor(chunkBytes / width));
  const buffers = [0, 1].map(() => Buffer.allocUnsafeSlow(chunkTokens * width));
  const handle = await open(path, 'r');
  let pending: Promise<number> | undefined;
  try {
    const readChunk = (chunk: number): Promise<number> => {
      const first = chunk * chunkTokens;
      const count = Math.min(chunkTokens, tokens - first);
      return readFully(handle, buffers[chunk & 1]!, count * width, first * width, path);
    };
    if (tokens > 0) pending = readChunk(0);
    for (let chunk = 0; pending; chunk++) {
      const bytes = await pending;
      pending = undefined;
      const first = chunk * chunkTokens;
      if (first + bytes / width < tokens) pending = readChunk(chunk + 1);
      const buffer = buffers[chunk & 1]!;
      if (endianness() === 'BE') {
        if (width === 2) buffer.subarray(0, bytes).swap16();
        else buffer.subarray(0, bytes).swap32();
      }
      const view =
        width === 2
          ? new Uint16Array(buffer.buffer, buffer.byteOffset, bytes / 2)
          : new Uint32Array(buffer.buffer, buffer.byteOffset, bytes / 4);
      if (maxId(view, 0, view.length) >= vocabSize) {
        const bad = firstAtOrAbove(view, 0, view.length, vocabSize)!;
        return { index: first + bad.index, id: bad.id };
      }
    }
    return undefined;
  } finally {
    // A read still in flight must finish before its handle closes (and its error, if any,
    // is moot: the scan already has its answer or its own error).
    await pending?.catch(() => undefined);
    await handle.close();
  }
}

/** Reads exactly `length` bytes at `position`; a file that shrank since its size was checked is refused. */
async function readFully(
  handle: FileHandle,
  buffer: Buffer,
  length: number,
  position: number,
  path: string,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) {
      throw new DataError(
        path,
        `ended at byte ${position + done} while its ids were being checked: it changed after its size was read (if something is still writing it, wait for it to finish)`,
        { remedy: 'prepare-again' },
      );
    }
    done += bytesRead;
  }
  return done;
}

/** The error for an id outside the vocabulary: the file, where the id is, and what to do. */
export function badTokenIdError(
  path: string,
  dtype: TokenDtype,
  vocabSize: number,
  bad: BadTokenId,
): DataError {
  return new DataError(
    path,
    `token ${bad.index} (byte offset ${bad.index * bytesPerToken(dtype)}) has id ${bad.id}, ` +
      `but meta.json's vocabSize is ${vocabSize} (ids 0…${vocabSize - 1}): the file is damaged ` +
      'or was made with another tokenizer',
    { remedy: 'prepare-again' },
  );
}
