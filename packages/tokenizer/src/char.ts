// Character-level tokenizer: one id per Unicode code point of the training text, ids in
// code-point order, so its ids equal nanoGPT's `sorted(set(text))` for the same text.
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
  TokenizerError,
  UnknownCharacterError,
  describeCharacter,
  locate,
  type StreamEncoder,
  type Tokenizer,
} from './tokenizer.js';

/** What `encode` does with a character outside the vocabulary. Default: `'error'`. */
export type UnknownCharacterPolicy = 'error' | 'skip' | { readonly replaceWith: string };

export interface CharTokenizerOptions {
  readonly unknown?: UnknownCharacterPolicy;
}

export interface CharTokenizerJSON {
  readonly type: 'char';
  readonly version: 1;
  /** `vocab[id]` is the character (one code point) of token `id`. */
  readonly vocab: readonly string[];
  readonly unknown?: UnknownCharacterPolicy;
}

const FORMAT_VERSION = 1;
/** Every Unicode code point, surrogates included (a lone one is kept as a character). */
export const MAX_CHAR_VOCAB_SIZE = 0x110000;
const NOT_IN_VOCAB = -1;
const SKIP = -2;

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code < 0xdc00;
}
function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code < 0xe000;
}

/**
 * Collects the distinct characters of a text that arrives in pieces. Pieces may split a
 * surrogate pair; the builder joins it.
 */
export class CharVocabularyBuilder {
  // BMP characters in a bitmap (fast path for almost every text); astral ones in a set.
  private readonly seenBmp = new Uint8Array(65536);
  private readonly seenAstral = new Set<number>();
  private pendingHigh = -1;

  add(piece: string): void {
    const seen = this.seenBmp;
    let i = 0;
    if (this.pendingHigh >= 0 && piece.length > 0) {
      this.addUnit(this.pendingHigh, piece.charCodeAt(0));
      this.pendingHigh = -1;
      if (isLowSurrogate(piece.charCodeAt(0))) i = 1;
    }
    for (const n = piece.length; i < n; i++) {
      const code = piece.charCodeAt(i);
      if (code < 0xd800 || code >= 0xe000) {
        seen[code] = 1;
      } else if (isHighSurrogate(code)) {
        if (i + 1 === n) {
          this.pendingHigh = code;
        } else if (this.addUnit(code, piece.charCodeAt(i + 1))) {
          i++;
        }
      } else {
        seen[code] = 1; // lone low surrogate: kept as its own "character"
      }
    }
  }

  /** Adds the high surrogate `high`; returns true when `next` was its low half. */
  private addUnit(high: number, next: number): boolean {
    if (isLowSurrogate(next)) {
      this.seenAstral.add((high - 0xd800) * 0x400 + (next - 0xdc00) + 0x10000);
      return true;
    }
    this.seenBmp[high] = 1;
    return false;
  }

  /** The characters seen so far, sorted by code point. */
  characters(): string[] {
    if (this.pendingHigh >= 0) this.seenBmp[this.pendingHigh] = 1;
    const codePoints: number[] = [];
    for (let code = 0; code < 65536; code++) if (this.seenBmp[code]) codePoints.push(code);
    codePoints.push(...[...this.seenAstral].sort((a, b) => a - b));
    return codePoints.map((codePoint) =>
      codePoint >= 0xd800 && codePoint < 0xe000
        ? String.fromCharCode(codePoint)
        : String.fromCodePoint(codePoint),
    );
  }

  build(options?: CharTokenizerOptions): CharTokenizer {
    return new CharTokenizer(this.characters(), options);
  }
}

/** One token per character (code point). */
export class CharTokenizer implements Tokenizer {
  readonly type = 'char';
  private readonly chars: readonly string[];
  private readonly unknownPolicy: UnknownCharacterPolicy;
  // id of each BMP code unit (or NOT_IN_VOCAB), and of each astral code point.
  private readonly bmpIds = new Int32Array(65536).fill(NOT_IN_VOCAB);
  private readonly astralIds = new Map<number, number>();
  private readonly replacementId: number;

  /** The vocabulary of `text`: its distinct characters sorted by code point. */
  static fromText(text: string, options?: CharTokenizerOptions): CharTokenizer {
    const builder = new CharVocabularyBuilder();
    builder.add(text);
    return builder.build(options);
  }

  /**
   * Loads the JSON form `toJSON()` wrote. Every field is checked (types, one code point per
   * entry, no duplicates, size, the unknown-character policy, no other fields): a damaged or
   * hostile file gives a TokenizerError naming `source` and the field, never another error.
   */
  static fromJSON(json: unknown, source = 'char tokenizer JSON'): CharTokenizer {
    const object = expectObject(json, source);
    if (object['type'] !== 'char') {
      throw jsonError(source, `expected type "char", got ${preview(object['type'])}`, 'type');
    }
    expectVersion(object, source, FORMAT_VERSION);
    expectKnownKeys(object, source, ['type', 'version', 'vocab', 'unknown']);
    const vocab = object['vocab'];
    if (!Array.isArray(vocab)) {
      throw jsonError(
        source,
        `"vocab" must be an array of strings (one character each), got ${typeName(vocab)}. ${DAMAGED}.`,
        'vocab',
      );
    }
    // Checked before anything is built: a larger vocabulary must repeat a character.
    if (vocab.length > MAX_CHAR_VOCAB_SIZE) {
      throw jsonError(
        source,
        `"vocab" has ${vocab.length} entries, more than the ${MAX_CHAR_VOCAB_SIZE} code points Unicode has. ${DAMAGED}.`,
        'vocab',
      );
    }
    for (let id = 0; id < vocab.length; id++) {
      const entry: unknown = vocab[id];
      if (typeof entry !== 'string' || entry.length === 0 || entry.length > 2) {
        throw jsonError(
          source,
          `"vocab[${id}]" must be a string of one character (one code point), got ${preview(entry)}. ${DAMAGED}.`,
          'vocab',
        );
      }
    }
    const unknown = object['unknown'] === undefined ? {} : { unknown: readPolicy(object, source) };
    return withSource(
      source,
      'char tokenizer: ',
      () => new CharTokenizer(vocab as string[], unknown),
    );
  }

  /** @param vocab the character of each id; each entry one code point, no duplicates. */
  constructor(vocab: readonly string[], options: CharTokenizerOptions = {}) {
    this.chars = [...vocab];
    vocab.forEach((char: unknown, id) => {
      const codePoint = typeof char === 'string' ? char.codePointAt(0) : undefined;
      if (
        typeof char !== 'string' ||
        codePoint === undefined ||
        String.fromCodePoint(codePoint).length !== char.length
      ) {
        throw new TokenizerError(
          `char tokenizer: "vocab[${id}]" must be exactly one character (one code point), got ${preview(char)}`,
          { rule: 'vocab' },
        );
      }
      const isAstral = char.length === 2;
      const existing = isAstral ? this.astralIds.get(codePoint) : this.bmpIds[codePoint];
      if (existing !== undefined && existing !== NOT_IN_VOCAB) {
        throw new TokenizerError(
          `char tokenizer: ${describeCharacter(char)} appears twice in the vocab (ids ${existing} and ${id}); ` +
            'each character must have one id',
          { rule: 'vocab' },
        );
      }
      if (isAstral) this.astralIds.set(codePoint, id);
      else this.bmpIds[codePoint] = id;
    });
    this.unknownPolicy = validatePolicy(options.unknown ?? 'error');
    this.replacementId = NOT_IN_VOCAB;
    if (typeof this.unknownPolicy === 'object') {
      const { replaceWith } = this.unknownPolicy;
      const id = replaceWith.length <= 2 ? this.chars.indexOf(replaceWith) : -1;
      if (id < 0) {
        throw new TokenizerError(
          `char tokenizer: the replacement ${replaceWith.length <= 2 ? describeCharacter(replaceWith) : preview(replaceWith)} ` +
            'is not in the vocabulary; pick a character the vocabulary has',
          { rule: 'unknown-policy' },
        );
      }
      this.replacementId = id;
    }
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  /** The character of each id. */
  get vocab(): readonly string[] {
    return this.chars;
  }

  encode(text: string): number[] {
    const bmpIds = this.bmpIds;
    const n = text.length;
    // Preallocated and trimmed at the end: ~3× faster than push() for long texts.
    const ids = new Array<number>(n);
    let count = 0;
    for (let i = 0; i < n; i++) {
      const code = text.charCodeAt(i);
      let id = bmpIds[code]!;
      let width = 1;
      if (code >= 0xd800 && code < 0xdc00 && i + 1 < n) {
        const next = text.charCodeAt(i + 1);
        if (isLowSurrogate(next)) {
          id =
            this.astralIds.get((code - 0xd800) * 0x400 + (next - 0xdc00) + 0x10000) ?? NOT_IN_VOCAB;
          width = 2;
        }
      }
      if (id === NOT_IN_VOCAB) id = this.unknownId(text, i, width);
      if (id !== SKIP) ids[count++] = id;
      i += width - 1;
    }
    ids.length = count;
    return ids;
  }

  private unknownId(text: string, offset: number, width: number): number {
    if (this.unknownPolicy === 'skip') return SKIP;
    if (this.unknownPolicy === 'error') {
      const { position, line, column } = locate(text, offset);
      throw new UnknownCharacterError(text.slice(offset, offset + width), position, line, column);
    }
    return this.replacementId;
  }

  decode(ids: ArrayLike<number>): string {
    const parts = new Array<string>(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      // The integer check first: chars[1.5] or chars["length"] must not slip through.
      if (!Number.isInteger(id) || id < 0 || id >= this.chars.length) {
        throw new TokenizerError(
          `char tokenizer: id ${preview(id)} at index ${i} is out of range (vocab size ${this.chars.length}); ` +
            'the ids were made by another tokenizer, or are damaged',
          { rule: 'id-range' },
        );
      }
      parts[i] = this.chars[id]!;
    }
    return parts.join('');
  }

  createStreamEncoder(): StreamEncoder {
    // Pieces from a streaming UTF-8 decoder never split a pair, but callers' pieces may:
    // hold a trailing high surrogate back until the next piece.
    let held = '';
    return {
      push: (piece) => {
        let text = held + piece;
        held = '';
        if (text.length > 0 && isHighSurrogate(text.charCodeAt(text.length - 1))) {
          held = text.slice(-1);
          text = text.slice(0, -1);
        }
        return this.encode(text);
      },
      end: () => {
        const text = held;
        held = '';
        return this.encode(text);
      },
    };
  }

  toJSON(): CharTokenizerJSON {
    return this.unknownPolicy === 'error'
      ? { type: 'char', version: FORMAT_VERSION, vocab: this.chars }
      : { type: 'char', version: FORMAT_VERSION, vocab: this.chars, unknown: this.unknownPolicy };
  }
}

function validatePolicy(policy: unknown): UnknownCharacterPolicy {
  if (policy === 'error' || policy === 'skip') return policy;
  if (
    typeof policy === 'object' &&
    policy !== null &&
    typeof (policy as { replaceWith?: unknown }).replaceWith === 'string'
  ) {
    return { replaceWith: (policy as { replaceWith: string }).replaceWith };
  }
  throw new TokenizerError(
    `char tokenizer: unknown must be 'error', 'skip' or { replaceWith: string }, got ${preview(policy)}`,
    { rule: 'unknown-policy' },
  );
}

/** The `unknown` field of a file: one of the three policies, in exactly their JSON shapes. */
function readPolicy(json: Record<string, unknown>, source: string): UnknownCharacterPolicy {
  const policy = json['unknown'];
  if (policy === 'error' || policy === 'skip') return policy;
  if (typeof policy === 'object' && policy !== null && !Array.isArray(policy)) {
    const object = policy as Record<string, unknown>;
    expectKnownKeys(object, source, ['replaceWith'], '"unknown"');
    const replaceWith = object['replaceWith'];
    if (typeof replaceWith === 'string' && replaceWith.length > 0 && replaceWith.length <= 2) {
      return { replaceWith };
    }
    throw jsonError(
      source,
      `"unknown.replaceWith" must be one character of the vocabulary, got ${preview(replaceWith)}. ${DAMAGED}.`,
      'unknown-policy',
    );
  }
  throw jsonError(
    source,
    `"unknown" must be "error", "skip" or { "replaceWith": "<one character>" }, got ${preview(policy)}. ${DAMAGED}.`,
    'unknown-policy',
  );
}
