// The contract every minigpt tokenizer implements, and the errors tokenizers throw.
// It knows nothing of files: callers pass strings and JSON values.
import { MinigptError } from '@minigpt/errors';

/** The JSON form of any tokenizer. `type` picks the implementation, `version` its format. */
export interface TokenizerJSON {
  readonly type: string;
  readonly version: number;
}

/**
 * Encodes a text that arrives in pieces (a file read in chunks). The ids of all `push`
 * calls followed by `end` equal `encode(wholeText)`.
 */
export interface StreamEncoder {
  push(piece: string): number[];
  end(): number[];
}

/** Text ↔ token ids. Implementations: {@link CharTokenizer}, {@link BpeTokenizer}. */
export interface Tokenizer {
  /** The registry key of this kind, also written as `type` in its JSON. */
  readonly type: string;
  /** Number of distinct token ids; valid ids are 0 … vocabSize − 1. */
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
  toJSON(): TokenizerJSON;
  /** Optional: an encoder for text that arrives in pieces. */
  createStreamEncoder?(): StreamEncoder;
}

/** Any problem a tokenizer reports: bad JSON, an unknown character, an id out of range. */
export class TokenizerError extends MinigptError {
  override name = 'TokenizerError';
}

/** Raised when a char tokenizer meets a character its vocabulary does not have. */
export class UnknownCharacterError extends TokenizerError {
  override name = 'UnknownCharacterError';
  constructor(
    readonly character: string,
    /** Index in code points (an emoji counts once). */
    readonly position: number,
    readonly line: number,
    readonly column: number,
  ) {
    super(
      `character ${describeCharacter(character)} at position ${position} (line ${line}, column ${column}) ` +
        `is not in the tokenizer's vocabulary. Rebuild the vocabulary from text that contains it, ` +
        `or create the CharTokenizer with { unknown: 'skip' } or { unknown: { replaceWith: '?' } }.`,
    );
  }
}

/** `"é" (U+00E9)`: the character itself and its code point, so invisible ones are clear too. */
export function describeCharacter(character: string): string {
  const codePoint = character.codePointAt(0) ?? 0;
  const hex = codePoint.toString(16).toUpperCase().padStart(4, '0');
  return `${JSON.stringify(character)} (U+${hex})`;
}

/** Code-point index, line and column (both 1-based) of UTF-16 offset `offset` in `text`. */
export function locate(
  text: string,
  offset: number,
): { position: number; line: number; column: number } {
  let position = 0;
  let line = 1;
  let column = 1;
  for (let i = 0; i < offset; i++) {
    const code = text.charCodeAt(i);
    const isHighSurrogate = code >= 0xd800 && code < 0xdc00;
    const nextIsLow =
      i + 1 < text.length && text.charCodeAt(i + 1) >= 0xdc00 && text.charCodeAt(i + 1) < 0xe000;
    if (isHighSurrogate && nextIsLow && i + 1 < offset) i++;
    position++;
    if (code === 10) {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  return { position, line, column };
}
