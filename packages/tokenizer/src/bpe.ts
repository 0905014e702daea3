// Byte-level BPE (GPT-2 style): text → UTF-8 bytes (ids 0–255) → learned merges (ids 256…)
// → special tokens last. Any well-formed string round-trips exactly, emoji and CJK included.
import {
  BpeTrainer,
  MAX_VOCAB_SIZE,
  checkMergeCount,
  pairKey,
  specialTokenSplitter,
} from './bpe-train.js';
import { expectObject, expectVersion, typeName } from './json.js';
import { SPLIT_PATTERNS, SafeCutter, compileSplitPattern, forEachPiece } from './pretokenize.js';
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

  static fromJSON(json: unknown): BpeTokenizer {
    const object = expectObject(json, 'bpe tokenizer JSON');
    if (object['type'] !== 'bpe') {
      throw new TokenizerError(
        `bpe tokenizer JSON: expected type "bpe", got ${JSON.stringify(object['type'])}`,
      );
    }
    expectVersion(object, 'bpe tokenizer JSON', FORMAT_VERSION);
    const { pattern, merges, specialTokens } = object;
    if (typeof pattern !== 'string') {
      throw new TokenizerError(
        `bpe tokenizer JSON: "pattern" must be a string, got ${typeName(pattern)}`,
      );
    }
    if (!Array.isArray(merges)) {
      throw new TokenizerError(
        `bpe tokenizer JSON: "merges" must be an array, got ${typeName(merges)}`,
      );
    }
    return new BpeTokenizer({
      pattern,
      merges: merges as Array<[number, number]>,
      specialTokens: expectObject(
        specialTokens ?? {},
        'bpe tokenizer JSON "specialTokens"',
      ) as Record<string, number>,
    });
  }

  constructor(definition: Omit<BpeTokenizerJSON, 'type' | 'version'>) {
    this.pattern = definition.pattern;
    try {
      this.splitRegex = compileSplitPattern(definition.pattern);
    } catch (error) {
      throw new TokenizerError(
        `bpe tokenizer: the split pattern is not a valid regular expression: ${(error as Error).message}`,
      );
    }
    for (let byte = 0; byte < 256; byte++) this.bytesOfToken.push(Uint8Array.of(byte));
    definition.merges.forEach((merge, rank) => {
      const id = 256 + rank;
      const valid =
        Array.isArray(merge) &&
        merge.length === 2 &&
        merge.every((part) => Number.isInteger(part) && part >= 0 && part < id);
      if (!valid) {
        throw new TokenizerError(
          `bpe tokenizer: merge ${rank} must be two ids below ${id}, got ${JSON.stringify(merge)}`,
        );
      }
      const [first, second] = merge;
      const key = pairKey(first, second);
      if (this.mergeRank.has(key)) {
        throw new TokenizerError(
          `bpe tokenizer: merge ${rank} repeats the pair ${JSON.stringify(merge)}`,
        );
      }
      this.mergeRank.set(key, rank);
      this.bytesOfToken.push(concatBytes(this.bytesOfToken[first]!, this.bytesOfToken[second]!));
    });
    this.merges = definition.merges.map(([first, second]) => [first, second] as const);
    const firstSpecialId = 256 + this.merges.length;
    const specialEntries = Object.entries(definition.specialTokens);
    specialEntries.forEach(([token, id], index) => {
      if (token.length === 0 || id !== firstSpecialId + index) {
        throw new TokenizerError(
          `bpe tokenizer: special token ${JSON.stringify(token)} must be non-empty with id ${firstSpecialId + index} ` +
            `(special ids follow the merges in order), got ${JSON.stringify(id)}`,
        );
      }
      this.specialById.set(id, token);
    });
    this.specials = new Map(specialEntries);
    if (this.vocabSize > MAX_VOCAB_SIZE) {
      throw new TokenizerError(
        `bpe tokenizer: vocab size ${this.vocabSize} exceeds ${MAX_VOCAB_SIZE}`,
      );
    }
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
      const special = this.specialById.get(id);
      const bytes = special !== undefined ? this.encoder.encode(special) : this.bytesOfToken[id];
      if (bytes === undefined || !Number.isInteger(id)) {
        throw new TokenizerError(
          `bpe tokenizer: id ${id} at index ${i} is out of range (vocab size ${this.vocabSize})`,
        );
      }
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

function resolvePattern(pattern: BpeTrainOptions['pattern']): string {
  if (pattern === undefined) return SPLIT_PATTERNS.gpt4;
  return pattern in SPLIT_PATTERNS
    ? SPLIT_PATTERNS[pattern as keyof typeof SPLIT_PATTERNS]
    : pattern;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
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
