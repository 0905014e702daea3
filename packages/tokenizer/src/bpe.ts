// Byte-level BPE (GPT-2 style): text → UTF-8 bytes (ids 0–255) → learned merges (ids 256…)
// → special tokens last. Any well-formed string round-trips exactly, emoji and CJK included.
// The byte tokens may be numbered in another order than the byte values (GPT-2's are).
import { BpeTrainer, MAX_VOCAB_SIZE, checkMergeCount, specialTokenSplitter } from './bpe-train.js';
import {
  DAMAGED,
  expectKnownKeys,
  expectObject,
  expectVersion,
  jsonError,
  preview,
  typeName,
  withSource,
} from './json.js';
import { NO_RANK, PairRanks } from './pair-ranks.js';
import {
  SPLIT_PATTERNS,
  SafeCutter,
  compileSplitPattern,
  forEachPiece,
  isTrustedSplitPattern,
  registerSplitPattern,
} from './pretokenize.js';
import { TokenizerError, locate, type StreamEncoder, type Tokenizer } from './tokenizer.js';

export interface BpeTokenizerJSON {
  readonly type: 'bpe';
  readonly version: 1;
  /** Split pattern source (a JavaScript regex, compiled with flags `gu`). */
  readonly pattern: string;
  /**
   * The id of each byte value, `byteIds[byte]`: 256 distinct ids in 0–255. Absent means id b
   * is byte b (what training makes); GPT-2's vocabulary numbers its byte tokens in the order of
   * its printable-character table instead (id 0 is "!", byte 33).
   */
  readonly byteIds?: readonly number[];
  /** Merge `i` joins ids [first, second] into id 256 + i. */
  readonly merges: ReadonlyArray<readonly [number, number]>;
  /** Special token strings and their ids (after the merges). */
  readonly specialTokens: Readonly<Record<string, number>>;
}

export interface BpeTrainOptions {
  /** `'gpt4'` (default), `'gpt2'`, or the source of a custom split regex. */
  readonly pattern?: keyof typeof SPLIT_PATTERNS | (string & {});
  /** Added after the learned vocabulary, e.g. `['<|endoftext|>']`. */
  readonly specialTokens?: readonly string[];
  /** Pairs seen fewer times than this are never merged (default 2). */
  readonly minFrequency?: number;
}

export interface BpeEncodeOptions {
  /**
   * Which special-token strings in the text become their special id. `'none'` (default)
   * encodes them as ordinary text, so user text can never inject a control token.
   */
  readonly allowedSpecial?: 'all' | 'none' | ReadonlySet<string>;
}

const FORMAT_VERSION = 1;
/** Most merges a tokenizer can have: ids stay below MAX_VOCAB_SIZE (pair keys must be exact). */
export const MAX_MERGES = MAX_VOCAB_SIZE - 256;
/** Most bytes all merged tokens may take together; real vocabularies take a few MB at most. */
export const MAX_TOKEN_BYTES = 128 * 1024 * 1024;
/** Most special tokens: `encode` with `allowedSpecial` joins them all into one regex. */
export const MAX_SPECIAL_TOKENS = 4096;
/** Longest special token, in UTF-16 units (GPT's are about a dozen). */
export const MAX_SPECIAL_TOKEN_LENGTH = 256;
/** Chunk → ids memo; cleared when full so memory stays bounded on huge inputs. */
const CACHE_LIMIT = 100_000;
/**
 * Pieces of more bytes than this merge with a heap (n log n) instead of a scan for the
 * lowest rank per merge (n²), which is faster on words but would take minutes on a
 * megabyte-long run of letters.
 */
const LONG_PIECE_BYTES = 128;
/** Largest output scratch (in ids) kept between calls; a bigger one is dropped after use. */
const KEPT_OUTPUT_IDS = 1 << 22;

export class BpeTokenizer implements Tokenizer {
  readonly type = 'bpe';
  readonly pattern: string;
  private readonly splitRegex: RegExp;
  /** Byte value → token id, applied once per piece before merging. */
  private readonly byteToId: Uint8Array;
  /** The JSON's `byteIds`: only when it is not the identity, so such files stay as they were. */
  private readonly byteIds: readonly number[] | undefined;
  private readonly merges: ReadonlyArray<readonly [number, number]>;
  private readonly mergeRank: PairRanks;
  /** The bytes of every byte and merged token, back to back: id's are tokenStart[id] … [id + 1]. */
  private readonly tokenBytes: Uint8Array;
  private readonly tokenStart: Uint32Array;
  private readonly specials: ReadonlyMap<string, number>;
  private readonly specialBytes = new Map<number, Uint8Array>();
  private readonly cache = new Map<string, number[]>();
  /** Scratch of encodePiece: a piece's symbols, and the rank of each adjacent pair. */
  private symbols = new Int32Array(256);
  private pairRanks = new Int32Array(256);
  /**
   * The ids of the text being encoded, copied once to a number[] of the right size at the
   * end: growing a number[] by push() reallocates and copies it again and again (dozens of
   * times for a megabyte of text), where this buffer is reused from call to call.
   */
  private output = new Int32Array(1024);
  private outputLength = 0;
  // ignoreBOM: a leading U+FEFF is text to round-trip, not a marker to drop.
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  /** Learns `vocabSize − 256` merges from `text` (fewer if the text runs out of pairs). */
  static train(text: string, vocabSize: number, options: BpeTrainOptions = {}): BpeTokenizer {
    const trainer = BpeTokenizer.trainer(options);
    trainer.push(text);
    return BpeTokenizer.finishTraining(trainer, vocabSize, options);
  }

  /** A trainer for text that arrives in pieces; finish with {@link finishTraining}. */
  static trainer(options: BpeTrainOptions = {}): BpeTrainer {
    return new BpeTrainer({
      pattern: resolvePattern(options.pattern),
      specialTokens: options.specialTokens ?? [],
    });
  }

  static finishTraining(
    trainer: BpeTrainer,
    vocabSize: number,
    options: BpeTrainOptions = {},
  ): BpeTokenizer {
    const merges = trainer.train(checkMergeCount(vocabSize), options.minFrequency ?? 2);
    const specialTokens: Record<string, number> = {};
    for (const token of options.specialTokens ?? []) {
      if (!(token in specialTokens)) {
        specialTokens[token] = 256 + merges.length + Object.keys(specialTokens).length;
      }
    }
    return new BpeTokenizer({ pattern: resolvePattern(options.pattern), merges, specialTokens });
  }

  /**
   * Loads the JSON form `toJSON()` wrote. Every field is checked before anything large is
   * built, and the split pattern must be one this process trusts (see
   * {@link registerSplitPattern}): a damaged or hostile file gives a TokenizerError naming
   * `source` and the field, never another error, a hang or a huge allocation.
   */
  static fromJSON(json: unknown, source = 'bpe tokenizer JSON'): BpeTokenizer {
    const object = expectObject(json, source);
    if (object['type'] !== 'bpe') {
      throw jsonError(source, `expected type "bpe", got ${preview(object['type'])}`, 'type');
    }
    expectVersion(object, source, FORMAT_VERSION);
    expectKnownKeys(object, source, [
      'type',
      'version',
      'pattern',
      'byteIds',
      'merges',
      'specialTokens',
    ]);
    const { pattern, byteIds, merges, specialTokens } = object;
    if (typeof pattern !== 'string') {
      throw jsonError(
        source,
        `"pattern" must be a string (a split regex source), got ${typeName(pattern)}. ${DAMAGED}.`,
        'pattern',
      );
    }
    // Before the regex is compiled, let alone run: a pattern from a file is code.
    if (!isTrustedSplitPattern(pattern)) {
      throw jsonError(
        source,
        `"pattern" ${preview(pattern)} is not a split pattern this process trusts. A regular ` +
          'expression from a file can hang encoding (catastrophic backtracking), so only the built-in ' +
          `patterns (${Object.keys(SPLIT_PATTERNS).join(', ')}) and patterns registered in-process are accepted. ` +
          'If you trust this file, call registerSplitPattern(pattern) from @minigpt/tokenizer with its exact source before loading it.',
        'pattern',
      );
    }
    if (!Array.isArray(merges)) {
      throw jsonError(
        source,
        `"merges" must be an array of [first, second] id pairs, got ${typeName(merges)}. ${DAMAGED}.`,
        'merges',
      );
    }
    // Absent means none (older files); null or any other non-object is damage.
    const specials =
      specialTokens === undefined ? {} : expectObject(specialTokens, source, 'specialTokens');
    return withSource(
      source,
      'bpe tokenizer: ',
      () =>
        new BpeTokenizer({
          pattern,
          // Absent means the identity; any other value, null included, is checked.
          ...(byteIds === undefined ? {} : { byteIds: byteIds as number[] }),
          merges: merges as Array<[number, number]>,
          specialTokens: specials as Record<string, number>,
        }),
    );
  }

  /**
   * Builds a tokenizer from trusted values (`fromJSON` checks a file's first). The merges and
   * special tokens are still checked, with bounds, before anything is allocated for them.
   */
  constructor(definition: Omit<BpeTokenizerJSON, 'type' | 'version'>) {
    this.pattern = definition.pattern;
    try {
      this.splitRegex = compileSplitPattern(definition.pattern);
    } catch (error) {
      throw new TokenizerError(
        `bpe tokenizer: the split pattern is not a valid regular expression: ${(error as Error).message}`,
        { rule: 'pattern' },
      );
    }
    this.byteToId = checkByteIds(definition.byteIds);
    const isIdentity = this.byteToId.every((id, byte) => id === byte);
    this.byteIds = isIdentity ? undefined : Array.from(this.byteToId);
    const { ranks, lengths, totalBytes } = checkMerges(definition.merges);
    this.mergeRank = ranks;
    const count = 256 + definition.merges.length;
    this.tokenStart = new Uint32Array(count + 1);
    this.tokenBytes = new Uint8Array(256 + totalBytes);
    for (let id = 0; id <= 256; id++) this.tokenStart[id] = id;
    for (let byte = 0; byte < 256; byte++) this.tokenBytes[this.byteToId[byte]!] = byte;
    const starts = this.tokenStart;
    const bytes = this.tokenBytes;
    definition.merges.forEach(([first, second], rank) => {
      let end = starts[256 + rank]!;
      for (let i = starts[first]!; i < starts[first + 1]!; i++) bytes[end++] = bytes[i]!;
      for (let i = starts[second]!; i < starts[second + 1]!; i++) bytes[end++] = bytes[i]!;
      starts[257 + rank] = starts[256 + rank]! + lengths[rank]!;
    });
    this.merges = definition.merges.map(([first, second]) => [first, second] as const);
    this.specials = checkSpecialTokens(definition.specialTokens, 256 + this.merges.length);
    const encoder = new TextEncoder();
    for (const [token, id] of this.specials) this.specialBytes.set(id, encoder.encode(token));
  }

  get vocabSize(): number {
    return 256 + this.merges.length + this.specials.size;
  }

  /** Special token strings and their ids. */
  get specialTokens(): ReadonlyMap<string, number> {
    return this.specials;
  }

  encode(text: string, options: BpeEncodeOptions = {}): number[] {
    assertWellFormed(text);
    this.outputLength = 0;
    const allowed = options.allowedSpecial ?? 'none';
    if (allowed === 'none' || this.specials.size === 0) {
      this.encodeOrdinary(text);
      return this.takeOutput();
    }
    const tokens = allowed === 'all' ? [...this.specials.keys()] : [...allowed];
    for (const token of tokens) {
      if (!this.specials.has(token)) {
        throw new TokenizerError(
          `bpe tokenizer: allowedSpecial names ${JSON.stringify(token)}, which is not a special token`,
        );
      }
    }
    if (tokens.length === 0) {
      this.encodeOrdinary(text);
      return this.takeOutput();
    }
    // With a capturing group, split() puts the special tokens at the odd indexes.
    text.split(specialTokenSplitter(tokens, true)).forEach((part, index) => {
      if (index % 2 === 1) this.appendIds([this.specials.get(part)!]);
      else this.encodeOrdinary(part);
    });
    return this.takeOutput();
  }

  private appendIds(ids: readonly number[]): void {
    let length = this.outputLength;
    if (length + ids.length > this.output.length) {
      const grown = new Int32Array(Math.max(2 * this.output.length, length + ids.length));
      grown.set(this.output.subarray(0, length));
      this.output = grown;
    }
    const output = this.output;
    for (let i = 0; i < ids.length; i++) output[length++] = ids[i]!;
    this.outputLength = length;
  }

  private takeOutput(): number[] {
    const length = this.outputLength;
    const output = this.output;
    const ids = new Array<number>(length);
    for (let i = 0; i < length; i++) ids[i] = output[i]!;
    if (output.length > KEPT_OUTPUT_IDS) this.output = new Int32Array(1024);
    this.outputLength = 0;
    return ids;
  }

  /**
   * Pre-tokenizes with the split regex (text between matches, possible only with a custom
   * pattern, is a piece too) and appends each piece's ids, from the cache when it has them.
   */
  private encodeOrdinary(text: string): void {
    forEachPiece(text, this.splitRegex, this.appendPieceBound);
  }

  private readonly appendPieceBound = (piece: string): void => this.appendPiece(piece);

  private appendPiece(piece: string): void {
    let pieceIds = this.cache.get(piece);
    if (pieceIds === undefined) {
      pieceIds = this.encodePiece(piece);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(piece, pieceIds);
    }
    this.appendIds(pieceIds);
  }

  /**
   * Applies the merges to one pre-token: repeatedly join the adjacent pair of lowest rank
   * (the leftmost of equals). The bytes become ids here, once; the merges then work on ids.
   */
  private encodePiece(piece: string): number[] {
    const count = this.byteIdsOf(piece);
    const length = count > LONG_PIECE_BYTES ? this.mergeWithHeap(count) : this.mergeByScan(count);
    const ids = new Array<number>(length);
    for (let i = 0; i < length; i++) ids[i] = this.symbols[i]!;
    return ids;
  }

  /** Writes the ids of the UTF-8 bytes of `piece` to `symbols`; returns how many. */
  private byteIdsOf(piece: string): number {
    if (this.symbols.length < piece.length * 3) {
      this.symbols = new Int32Array(piece.length * 3);
      this.pairRanks = new Int32Array(piece.length * 3);
    }
    const symbols = this.symbols;
    const byteToId = this.byteToId;
    let count = 0;
    for (let i = 0; i < piece.length; i++) {
      let code = piece.charCodeAt(i);
      if (code < 0x80) {
        symbols[count++] = byteToId[code]!;
        continue;
      }
      if (code < 0x800) {
        symbols[count++] = byteToId[0xc0 | (code >> 6)]!;
      } else {
        const next = piece.charCodeAt(i + 1);
        if (code >= 0xd800 && code < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
          code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
          i++;
          symbols[count++] = byteToId[0xf0 | (code >> 18)]!;
          symbols[count++] = byteToId[0x80 | ((code >> 12) & 0x3f)]!;
        } else {
          // encode() refuses lone surrogates before this; were one here, it would be U+FFFD.
          if (code >= 0xd800 && code < 0xe000) code = 0xfffd;
          symbols[count++] = byteToId[0xe0 | (code >> 12)]!;
        }
        symbols[count++] = byteToId[0x80 | ((code >> 6) & 0x3f)]!;
      }
      symbols[count++] = byteToId[0x80 | (code & 0x3f)]!;
    }
    return count;
  }

  /** Merges `symbols[0 … count)` in place, scanning for the lowest rank each time. */
  private mergeByScan(count: number): number {
    const symbols = this.symbols;
    const ranks = this.pairRanks; // ranks[i]: the rank of the pair (symbols[i], symbols[i + 1])
    const mergeRank = this.mergeRank;
    for (let i = 0; i + 1 < count; i++) ranks[i] = mergeRank.get(symbols[i]!, symbols[i + 1]!);
    while (count > 1) {
      let best = NO_RANK;
      let at = -1;
      for (let i = 0; i + 1 < count; i++) {
        if (ranks[i]! < best) {
          best = ranks[i]!;
          at = i;
        }
      }
      if (at < 0) break;
      symbols[at] = 256 + best;
      for (let i = at + 1; i + 1 < count; i++) symbols[i] = symbols[i + 1]!;
      for (let i = at + 1; i + 2 < count; i++) ranks[i] = ranks[i + 1]!;
      count--;
      if (at > 0) ranks[at - 1] = mergeRank.get(symbols[at - 1]!, symbols[at]!);
      if (at + 1 < count) ranks[at] = mergeRank.get(symbols[at]!, symbols[at + 1]!);
    }
    return count;
  }

  /**
   * Merges `symbols[0 … count)` in the same order as mergeByScan, with the symbols in a linked
   * list and the candidate pairs in a min-heap by (rank, position); a popped pair whose
   * symbols changed since it was pushed is skipped. Compacts the result; returns its length.
   */
  private mergeWithHeap(count: number): number {
    const symbols = this.symbols;
    const mergeRank = this.mergeRank;
    const next = new Int32Array(count);
    const previous = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      next[i] = i + 1 < count ? i + 1 : -1;
      previous[i] = i - 1;
    }
    const heap = new PairHeap(count);
    for (let i = 0; i + 1 < count; i++) {
      const rank = mergeRank.get(symbols[i]!, symbols[i + 1]!);
      if (rank !== NO_RANK) heap.push(rank, i);
    }
    while (heap.size > 0) {
      const rank = heap.topRank();
      const at = heap.pop();
      const after = next[at]!;
      // Stale: `at` was merged into its left neighbour, or the pair there is another now.
      if (
        previous[at] === -2 ||
        after < 0 ||
        mergeRank.get(symbols[at]!, symbols[after]!) !== rank
      ) {
        continue;
      }
      symbols[at] = 256 + rank;
      const afterNext = next[after]!;
      next[at] = afterNext;
      if (afterNext >= 0) previous[afterNext] = at;
      previous[after] = -2; // removed
      const before = previous[at]!;
      if (before >= 0) {
        const left = mergeRank.get(symbols[before]!, symbols[at]!);
        if (left !== NO_RANK) heap.push(left, before);
      }
      if (afterNext >= 0) {
        const right = mergeRank.get(symbols[at]!, symbols[afterNext]!);
        if (right !== NO_RANK) heap.push(right, at);
      }
    }
    let length = 0;
    for (let i = 0; i >= 0; i = next[i]!) symbols[length++] = symbols[i]!;
    return length;
  }

  /** The raw bytes of the ids (a streaming decoder can hold back a partial character). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    const vocabSize = this.vocabSize;
    const firstSpecial = this.tokenStart.length - 1;
    const starts = this.tokenStart;
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new TokenizerError(
          `bpe tokenizer: id ${preview(id)} at index ${i} is out of range (vocab size ${vocabSize}); ` +
            'the ids were made by another tokenizer, or are damaged',
          { rule: 'id-range' },
        );
      }
      length +=
        id < firstSpecial ? starts[id + 1]! - starts[id]! : this.specialBytes.get(id)!.length;
    }
    const out = new Uint8Array(length);
    const bytes = this.tokenBytes;
    let offset = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id < firstSpecial) {
        for (let at = starts[id]!; at < starts[id + 1]!; at++) out[offset++] = bytes[at]!;
      } else {
        const special = this.specialBytes.get(id)!;
        out.set(special, offset);
        offset += special.length;
      }
    }
    return out;
  }

  /** Invalid UTF-8 (ids that cut a character in two) decodes to U+FFFD, as in GPT-2. */
  decode(ids: ArrayLike<number>): string {
    return this.decoder.decode(this.decodeBytes(ids));
  }

  createStreamEncoder(): StreamEncoder {
    const cutter = new SafeCutter();
    return {
      push: (piece) => this.encode(cutter.push(piece, this.splitRegex)),
      end: () => this.encode(cutter.end()),
    };
  }

  toJSON(): BpeTokenizerJSON {
    // Without a permutation the JSON is exactly what earlier versions wrote (and can read).
    return {
      type: 'bpe',
      version: FORMAT_VERSION,
      pattern: this.pattern,
      ...(this.byteIds === undefined ? {} : { byteIds: this.byteIds }),
      merges: this.merges,
      specialTokens: Object.fromEntries(this.specials),
    };
  }
}

/**
 * The source of a named or custom pattern. A custom one comes from the code that trains, so
 * it is trusted: it is registered, and the tokenizer's own JSON loads in this process.
 */
function resolvePattern(pattern: BpeTrainOptions['pattern']): string {
  if (pattern === undefined) return SPLIT_PATTERNS.gpt4;
  if (Object.hasOwn(SPLIT_PATTERNS, pattern)) {
    return SPLIT_PATTERNS[pattern as keyof typeof SPLIT_PATTERNS];
  }
  registerSplitPattern(pattern);
  return pattern;
}

/**
 * `byteIds` (absent: the identity) as a byte → id table, once checked to be a permutation of
 * 0–255: a byte with no token, or two bytes with one, would not round-trip.
 */
function checkByteIds(byteIds: readonly number[] | undefined): Uint8Array {
  const table = new Uint8Array(256);
  if (byteIds === undefined) {
    for (let byte = 0; byte < 256; byte++) table[byte] = byte;
    return table;
  }
  if (!Array.isArray(byteIds) || byteIds.length !== 256) {
    throw new TokenizerError(
      `bpe tokenizer: "byteIds" must be an array of 256 ids (the id of each byte value), got ${preview(byteIds)}`,
      { rule: 'byte-ids' },
    );
  }
  const taken = new Uint8Array(256);
  for (let byte = 0; byte < 256; byte++) {
    const id: unknown = byteIds[byte];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 255 || taken[id]) {
      throw new TokenizerError(
        `bpe tokenizer: "byteIds[${byte}]" is ${preview(id)}; the byte ids must be 256 distinct integers ` +
          'from 0 to 255 (each byte value its own token)',
        { rule: 'byte-ids' },
      );
    }
    taken[id] = 1;
    table[byte] = id;
  }
  return table;
}

/**
 * Checks every merge (a pair of integer ids below its own id, no pair twice) and the bytes
 * the merged tokens will take, before any is built: a chain of merges that each add one byte
 * to the last makes a small file ask for n²/2 bytes. Returns the rank of each pair, each
 * merged token's length in bytes and their total.
 */
function checkMerges(merges: ReadonlyArray<readonly [number, number]>): {
  ranks: PairRanks;
  lengths: Uint32Array;
  totalBytes: number;
} {
  if (merges.length > MAX_MERGES) {
    throw new TokenizerError(
      `bpe tokenizer: "merges" has ${merges.length} entries, more than ${MAX_MERGES} ` +
        `(vocab size at most ${MAX_VOCAB_SIZE}, 256 of them bytes)`,
      { rule: 'merges' },
    );
  }
  const lengths = new Uint32Array(merges.length);
  const ranks = new PairRanks(merges.length);
  const lengthOf = (id: number) => (id < 256 ? 1 : lengths[id - 256]!);
  let totalBytes = 0;
  for (let rank = 0; rank < merges.length; rank++) {
    const merge: unknown = merges[rank];
    const id = 256 + rank;
    const valid =
      Array.isArray(merge) &&
      merge.length === 2 &&
      merge.every((part) => Number.isInteger(part) && part >= 0 && part < id);
    if (!valid) {
      throw new TokenizerError(
        `bpe tokenizer: "merges[${rank}]" must be a pair [first, second] of integer ids below ${id} ` +
          `(bytes and earlier merges), got ${preview(merge)}`,
        { rule: 'merges' },
      );
    }
    const [first, second] = merge as [number, number];
    const earlier = ranks.add(first, second, rank);
    if (earlier !== undefined) {
      throw new TokenizerError(
        `bpe tokenizer: "merges[${rank}]" repeats the pair ${preview(merge)} of merge ${earlier}`,
        { rule: 'merges' },
      );
    }
    const length = lengthOf(first) + lengthOf(second);
    totalBytes += length;
    if (totalBytes > MAX_TOKEN_BYTES) {
      throw new TokenizerError(
        `bpe tokenizer: the merged tokens up to "merges[${rank}]" take more than ${MAX_TOKEN_BYTES} bytes ` +
          '(each merge may only join tokens of a real text; these grow without bound)',
        { rule: 'merges' },
      );
    }
    lengths[rank] = length;
  }
  return { ranks, lengths, totalBytes };
}

/**
 * Special tokens: non-empty, well-formed strings of at most MAX_SPECIAL_TOKEN_LENGTH units,
 * at most MAX_SPECIAL_TOKENS of them (encode builds one regex of them all), whose ids are
 * exactly the ones after the merges. Any order: JSON puts integer-like keys first.
 */
function checkSpecialTokens(
  specialTokens: Readonly<Record<string, number>>,
  firstId: number,
): Map<string, number> {
  const entries = Object.entries(specialTokens);
  const count = entries.length;
  if (count > MAX_SPECIAL_TOKENS || firstId + count > MAX_VOCAB_SIZE) {
    throw new TokenizerError(
      `bpe tokenizer: "specialTokens" has ${count} entries; at most ${MAX_SPECIAL_TOKENS} are allowed ` +
        `and the vocab size must stay at most ${MAX_VOCAB_SIZE}`,
      { rule: 'special-tokens' },
    );
  }
  const specials = new Map<string, number>();
  const taken = new Set<number>();
  for (const [token, id] of entries as Array<[string, unknown]>) {
    if (token.length === 0 || token.length > MAX_SPECIAL_TOKEN_LENGTH || !isWellFormed(token)) {
      throw new TokenizerError(
        `bpe tokenizer: special token ${preview(token)} must be a non-empty, well-formed string ` +
          `of at most ${MAX_SPECIAL_TOKEN_LENGTH} characters`,
        { rule: 'special-tokens' },
      );
    }
    if (
      typeof id !== 'number' ||
      !Number.isInteger(id) ||
      id < firstId ||
      id >= firstId + count ||
      taken.has(id)
    ) {
      throw new TokenizerError(
        `bpe tokenizer: "specialTokens" gives ${preview(token)} the id ${preview(id)}; special ids must be ` +
          `integers from ${firstId} to ${firstId + count - 1} (right after the merges), one per token`,
        { rule: 'special-tokens' },
      );
    }
    taken.add(id);
    specials.set(token, id);
  }
  return specials;
}

function isWellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0xd800 || code >= 0xe000) continue;
    const next = text.charCodeAt(i + 1);
    if (code >= 0xdc00 || !(next >= 0xdc00 && next < 0xe000)) return false;
    i++;
  }
  return true;
}

/** UTF-8 cannot carry a lone surrogate, so such a string could not round-trip: refuse it. */
function assertWellFormed(text: string): void {
  const isWellFormed = (text as { isWellFormed?: () => boolean }).isWellFormed;
  if (isWellFormed !== undefined && isWellFormed.call(text)) return;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0xd800 || code >= 0xe000) continue;
    const next = text.charCodeAt(i + 1);
    if (code < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
      i++;
      continue;
    }
    const { position, line, column } = locate(text, i);
    throw new TokenizerError(
      `bpe tokenizer: lone surrogate U+${code.toString(16).toUpperCase()} at position ${position} ` +
        `(line ${line}, column ${column}) is not valid Unicode and has no UTF-8 bytes; fix the text's encoding`,
    );
  }
}

/** A binary min-heap of (rank, position) pairs, smaller position first among equal ranks. */
class PairHeap {
  private readonly ranks: Int32Array;
  private readonly positions: Int32Array;
  size = 0;

  /** Room for the pairs of a piece of `count` symbols: each merge pushes at most two more. */
  constructor(count: number) {
    this.ranks = new Int32Array(3 * count + 1);
    this.positions = new Int32Array(3 * count + 1);
  }

  private before(a: number, b: number): boolean {
    const rankA = this.ranks[a]!;
    const rankB = this.ranks[b]!;
    return rankA < rankB || (rankA === rankB && this.positions[a]! < this.positions[b]!);
  }

  private swap(a: number, b: number): void {
    const rank = this.ranks[a]!;
    const position = this.positions[a]!;
    this.ranks[a] = this.ranks[b]!;
    this.positions[a] = this.positions[b]!;
    this.ranks[b] = rank;
    this.positions[b] = position;
  }

  push(rank: number, position: number): void {
    let i = this.size++;
    this.ranks[i] = rank;
    this.positions[i] = position;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  topRank(): number {
    return this.ranks[0]!;
  }

  /** Removes the top; returns its position. */
  pop(): number {
    const top = this.positions[0]!;
    const last = --this.size;
    this.ranks[0] = this.ranks[last]!;
    this.positions[0] = this.positions[last]!;
    for (let i = 0; ;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let best = i;
      if (left < last && this.before(left, best)) best = left;
      if (right < last && this.before(right, best)) best = right;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}
