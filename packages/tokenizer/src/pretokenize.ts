// Splits text into the pieces BPE merges never cross (GPT-style regex pre-tokenization),
// finds places where a streamed text can be cut without changing those pieces, and keeps the
// set of split patterns trusted to come from files. It cannot tell a safe regex from a slow one.
import { TokenizerError } from './tokenizer.js';

/**
 * GPT-4's (cl100k) split pattern, written for JavaScript: contractions, letter runs with one
 * leading non-letter, 1–3 digit groups, punctuation runs, newlines, other whitespace.
 * JavaScript has no possessive quantifiers or inline `(?i)`; for these alternatives the
 * plain forms match the same spans.
 */
export const GPT4_SPLIT_PATTERN =
  "'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's split pattern. */
export const GPT2_SPLIT_PATTERN =
  "'(?:s|t|re|ve|m|ll|d)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

export const SPLIT_PATTERNS = { gpt4: GPT4_SPLIT_PATTERN, gpt2: GPT2_SPLIT_PATTERN } as const;

/**
 * Split patterns a tokenizer file may name. A regex is code: one like `(a+)+$` backtracks
 * for ages on a short input, and there is no telling in general. So a file's pattern must be
 * one the code trusts: built in, registered, or used in this process to train.
 */
const trustedPatterns = new Set<string>(Object.values(SPLIT_PATTERNS));

/**
 * Lets tokenizer files whose `pattern` is exactly `source` load in this process. Call it only
 * for a pattern your code chose (one you trained with in an earlier run, say), never with
 * the `pattern` read from the file you are about to load.
 */
export function registerSplitPattern(source: string): void {
  if (typeof source !== 'string' || source.length === 0) {
    throw new TokenizerError(
      `registerSplitPattern: the pattern must be a non-empty regex source string, got ${typeof source}`,
      { rule: 'pattern' },
    );
  }
  try {
    compileSplitPattern(source);
  } catch (error) {
    throw new TokenizerError(
      `registerSplitPattern: the pattern is not a valid regular expression with flags "gu": ${(error as Error).message}`,
      { rule: 'pattern', cause: error },
    );
  }
  trustedPatterns.add(source);
}

/** Whether a tokenizer file may use the split pattern `source` (built in or registered). */
export function isTrustedSplitPattern(source: string): boolean {
  return trustedPatterns.has(source);
}

/** Compiles a split pattern with the flags pre-tokenization needs (global, Unicode). */
export function compileSplitPattern(source: string): RegExp {
  return new RegExp(source, 'gu');
}

/**
 * Calls `onPiece` with each pre-token of `text` in order. Text no alternative matches (only
 * possible with a custom pattern) is passed on as a piece of its own, so nothing is lost.
 */
export function forEachPiece(
  text: string,
  pattern: RegExp,
  onPiece: (piece: string) => void,
): void {
  pattern.lastIndex = 0;
  let end = 0;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    const piece = match[0];
    if (piece.length === 0) {
      pattern.lastIndex++; // a custom pattern that can match empty must still advance
      continue;
    }
    if (match.index > end) onPiece(text.slice(end, match.index));
    onPiece(piece);
    end = match.index + piece.length;
  }
  if (end < text.length) onPiece(text.slice(end));
}

function isWhitespace(code: number): boolean {
  // The ASCII and common Unicode members of JavaScript's \s.
  return (
    code === 32 ||
    (code >= 9 && code <= 13) ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

function isAsciiLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/**
 * The largest index `i` (0 if none) at which `text` can be cut so that pre-tokenizing
 * `text.slice(0, i)` and the rest separately gives the same pieces as the whole, for the
 * GPT-2 and GPT-4 patterns: after "X\n" before a non-space (X not a space), or between an
 * ASCII letter and " " + letter.
 */
export function lastSafeCut(text: string): number {
  for (let i = text.length - 1; i >= 2; i--) {
    const previous = text.charCodeAt(i - 1);
    const current = text.charCodeAt(i);
    if (previous === 10) {
      if (!isWhitespace(current) && !isWhitespace(text.charCodeAt(i - 2))) return i;
    } else if (
      current === 32 &&
      isAsciiLetter(previous) &&
      i + 1 < text.length &&
      isAsciiLetter(text.charCodeAt(i + 1))
    ) {
      return i;
    }
  }
  return 0;
}

/** Longest text a stream keeps waiting for a safe cut before it cuts anyway. */
export const MAX_STREAM_BUFFER = 1 << 20;

/**
 * Turns a stream of arbitrary pieces into a stream of texts cut at safe places, so each
 * can be pre-tokenized on its own. Past {@link MAX_STREAM_BUFFER} characters with no safe
 * place (one endless word), it cuts between two pre-tokens instead.
 */
export class SafeCutter {
  private buffer = '';

  push(piece: string, pattern: RegExp): string {
    this.buffer += piece;
    let cut = lastSafeCut(this.buffer);
    if (cut === 0 && this.buffer.length > MAX_STREAM_BUFFER)
      cut = lastPieceStart(this.buffer, pattern);
    // Never cut inside a surrogate pair.
    if (cut > 0 && isLow(this.buffer.charCodeAt(cut))) cut--;
    const ready = this.buffer.slice(0, cut);
    this.buffer = this.buffer.slice(cut);
    return ready;
  }

  end(): string {
    const rest = this.buffer;
    this.buffer = '';
    return rest;
  }
}

function isLow(code: number): boolean {
  return code >= 0xdc00 && code < 0xe000;
}

function lastPieceStart(text: string, pattern: RegExp): number {
  let last = 0;
  let offset = 0;
  forEachPiece(text, pattern, (piece) => {
    last = offset;
    offset += piece.length;
  });
  return last;
}
