// Byte-level BPE (GPT-2 style): text → UTF-8 bytes (ids 0–255) → learned merges (ids 256…)
// → special tokens last. Any well-formed string round-trips exactly, emoji and CJK included.
import {
  BpeTrainer,
  MAX_VOCAB_SIZE,
  checkMergeCount,
  pairKey,
  specialTokenSplitter,
} from './bpe-train.js';
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

export class BpeTokenizer implements Tokenizer {
  readonly type = 'bpe';
  readonly pattern: string;
  private readonly splitRegex: RegExp;
  private readonly merges: ReadonlyArray<readonly [number, number]>;
  private readonly mergeRank = new Map<number, number>();
  private readonly bytesOfToken: Uint8Array[] = [];
  private readonly specials: ReadonlyMap<string, number>;
  private readonly specialById = new Map<number, string>();
  private readonly cache = new Map<string, number[]>();
  private readonly encoder = new TextEncoder();
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
    expectKnownKeys(object, source, ['type', 'version', 'pattern', 'merges', 'specialTokens']);
    const { pattern, merges, specialTokens } = object;
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
    const lengths = checkMerges(definition.merges, this.mergeRank);
    for (let byte = 0; byte < 256; byte++) this.bytesOfToken.push(Uint8Array.of(byte));
    definition.merges.forEach(([first, second], rank) => {
      const bytes = new Uint8Array(lengths[rank]!);
      bytes.set(this.bytesOfToken[first]!);
      bytes.set(this.bytesOfToken[second]!, this.bytesOfToken[first]!.length);
      this.bytesOfToken.push(bytes);
    });
    this.merges = definition.merges.map(([first, second]) => [first, second] as const);
    this.specials = checkSpecialTokens(definition.specialTokens, 256 + this.merges.length);
    for (const [token, id] of this.specials) this.specialById.set(id, token);
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
    const ids: number[] = [];
    const allowed = options.allowedSpecial ?? 'none';
    if (allowed === 'none' || this.specials.size === 0) {
      this.encodeOrdinary(text, ids);
      return ids;
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
      this.encodeOrdinary(text, ids);
      return ids;
    }
    // With a capturing group, split() puts the special tokens at the odd indexes.
    text.split(specialTokenSplitter(tokens, true)).forEach((part, index) => {
      if (index % 2 === 1) ids.push(this.specials.get(part)!);
      else this.encodeOrdinary(part, ids);
    });
    return ids;
  }

  private encodeOrdinary(text: string, ids: number[]): void {
    forEachPiece(text, this.splitRegex, (piece) => {
      let pieceIds = this.cache.get(piece);
      if (pieceIds === undefined) {
        pieceIds = this.encodePiece(piece);
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(piece, pieceIds);
      }
      for (let i = 0; i < pieceIds.length; i++) ids.push(pieceIds[i]!);
    });
  }

  /** Applies merges to one pre-token: repeatedly join the adjacent pair of lowest rank. */
  private encodePiece(piece: string): number[] {
    let symbols: number[] = Array.from(this.encoder.encode(piece));
    while (symbols.length >= 2) {
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.mergeRank.get(pairKey(symbols[i]!, symbols[i + 1]!));
        if (rank !== undefined && rank < bestRank) bestRank = rank;
      }
      if (bestRank === Infinity) break;
      const [first, second] = this.merges[bestRank]!;
      const merged: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === first && symbols[i + 1] === second) {
          merged.push(256 + bestRank);
          i++;
        } else {
          merged.push(symbols[i]!);
        }
      }
      symbols = merged;
    }
    return symbols;
  }

  /** The raw bytes of the ids (a streaming decoder can hold back a partial character). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenizerError(
          `bpe tokenizer: id ${preview(id)} at index ${i} is out of range (vocab size ${this.vocabSize}); ` +
            'the ids were made by another tokenizer, or are damaged',
          { rule: 'id-range' },
        );
      }
      const special = this.specialById.get(id);
      const bytes = special !== undefined ? this.encoder.encode(special) : this.bytesOfToken[id]!;
      parts.push(bytes);
      length += bytes.length;
    }
    const out = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
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
    return {
      type: 'bpe',
      version: FORMAT_VERSION,
      pattern: this.pattern,
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
 * Checks every merge (a pair of integer ids below its own id, no pair twice) and the bytes
 * the merged tokens will take, before any is built: a chain of merges that each add one byte
 * to the last makes a small file ask for n²/2 bytes. Fills `mergeRank`; returns each merged
 * token's length in bytes.
 */
function checkMerges(
  merges: ReadonlyArray<readonly [number, number]>,
  mergeRank: Map<number, number>,
): Uint32Array {
  if (merges.length > MAX_MERGES) {
    throw new TokenizerError(
      `bpe tokenizer: "merges" has ${merges.length} entries, more than ${MAX_MERGES} ` +
        `(vocab size at most ${MAX_VOCAB_SIZE}, 256 of them bytes)`,
      { rule: 'merges' },
    );
  }
  const lengths = new Uint32Array(merges.length);
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
    const key = pairKey(first, second);
    const earlier = mergeRank.get(key);
    if (earlier !== undefined) {
      throw new TokenizerError(
        `bpe tokenizer: "merges[${rank}]" repeats the pair ${preview(merge)} of merge ${earlier}`,
        { rule: 'merges' },
      );
    }
    mergeRank.set(key, rank);
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
  return lengths;
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
