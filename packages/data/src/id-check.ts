// Finds the first token id that reaches the vocabulary size in a split held in memory (the
// scan of a file on disk, in chunks, is in ./node/file-id-check.ts, on the same kernel). It does
// not know where the limit comes from: the caller passes it (meta.json's vocabSize, or its own).
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
export function firstAtOrAbove(
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
 * The error for an id outside the vocabulary: the source, where the id is, and what to do.
 * `limit` says where vocabSize came from: a prepared directory's meta.json (prepare it again),
 * or the caller (`fromTokens` / `fromBlob`: the ids were made with another tokenizer).
 */
export function badTokenIdError(
  source: string,
  dtype: TokenDtype,
  vocabSize: number,
  bad: BadTokenId,
  limit: 'meta.json' | 'given' = 'meta.json',
): DataError {
  const where = `token ${bad.index} (byte offset ${bad.index * bytesPerToken(dtype)}) has id ${bad.id}`;
  const range = `${vocabSize} (ids 0…${vocabSize - 1})`;
  if (limit === 'given') {
    return new DataError(
      source,
      `${where}, but the vocabSize given is ${range}: the tokens were made with another tokenizer`,
      'Encode the text with the tokenizer the model uses, or pass its vocabSize',
    );
  }
  return new DataError(
    source,
    `${where}, but meta.json's vocabSize is ${range}: the file is damaged or was made with another tokenizer`,
    { remedy: 'prepare-again' },
  );
}
