// Text handling shared by binarize (a file read in chunks) and prepareText (a text in memory),
// so both cut, count and normalize a text the same way: Python's universal newlines, code
// point counts, and the byte offset of the first invalid UTF-8 sequence. No Node APIs.

/** How line ends are read: `'universal'` like Python's `open()` (and so nanoGPT), or as is. */
export type NewlineMode = 'universal' | 'keep';

/**
 * Applies a NewlineMode to text that arrives in pieces. A \r at the end of a piece may be the
 * first half of a \r\n split across pieces, so it is held until the next piece (or the end).
 */
export class NewlineNormalizer {
  private heldCarriageReturn = false;

  constructor(private readonly mode: NewlineMode) {}

  /** The piece as the mode reads it; `final` marks the last piece of the text. */
  push(text: string, final: boolean): string {
    if (this.mode === 'keep') return text;
    if (this.heldCarriageReturn) {
      text = `\r${text}`;
      this.heldCarriageReturn = false;
    }
    if (!final && text.endsWith('\r')) {
      this.heldCarriageReturn = true;
      text = text.slice(0, -1);
    }
    return text.indexOf('\r') < 0 ? text : text.replace(/\r\n?/g, '\n');
  }
}

export function countCodePoints(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code < 0xdc00 && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next < 0xe000) {
        count--;
        i++;
      }
    }
  }
  return count;
}

/** UTF-16 offset of the `index`-th code point of `text`. */
export function offsetOfCodePoint(text: string, index: number): number {
  let offset = 0;
  for (let seen = 0; seen < index && offset < text.length; seen++) {
    const code = text.charCodeAt(offset);
    const next = text.charCodeAt(offset + 1);
    offset += code >= 0xd800 && code < 0xdc00 && next >= 0xdc00 && next < 0xe000 ? 2 : 1;
  }
  return offset;
}

/** The UTF-16 index of the first unpaired surrogate in `text`, or -1 when it is well formed. */
export function findLoneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0xd800 || code >= 0xe000) continue;
    const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
    if (code < 0xdc00 && next >= 0xdc00 && next < 0xe000) i++;
    else return i;
  }
  return -1;
}

/**
 * Finds the first invalid UTF-8 sequence in bytes that arrive in chunks: the strict rules
 * TextDecoder's `fatal` mode applies (no overlongs, no surrogates, nothing above U+10FFFF).
 */
export class Utf8Checker {
  private offset = 0;
  private needed = 0; // continuation bytes still expected
  private sequenceStart = 0;
  private lowerBound = 0x80; // tighter second-byte bounds rule out overlongs and surrogates
  private upperBound = 0xbf;

  /** Byte offset (from the first chunk) of the first invalid sequence in `bytes`, or -1. */
  push(bytes: Uint8Array): number {
    for (let i = 0; i < bytes.length; i++, this.offset++) {
      const byte = bytes[i]!;
      if (this.needed === 0) {
        this.sequenceStart = this.offset;
        this.lowerBound = 0x80;
        this.upperBound = 0xbf;
        if (byte < 0x80) continue;
        if (byte >= 0xc2 && byte <= 0xdf) this.needed = 1;
        else if (byte >= 0xe0 && byte <= 0xef) {
          this.needed = 2;
          if (byte === 0xe0) this.lowerBound = 0xa0;
          if (byte === 0xed) this.upperBound = 0x9f;
        } else if (byte >= 0xf0 && byte <= 0xf4) {
          this.needed = 3;
          if (byte === 0xf0) this.lowerBound = 0x90;
          if (byte === 0xf4) this.upperBound = 0x8f;
        } else return this.offset;
      } else {
        if (byte < this.lowerBound || byte > this.upperBound) return this.sequenceStart;
        this.lowerBound = 0x80;
        this.upperBound = 0xbf;
        this.needed--;
      }
    }
    return -1;
  }

  /** At the end of the bytes: the offset of a character cut short, or -1. */
  end(): number {
    return this.needed > 0 ? this.sequenceStart : -1;
  }
}

/** The message of a DataError for invalid UTF-8 at byte `offset`. */
export function invalidUtf8Problem(offset: number): string {
  return `invalid UTF-8 at byte offset ${offset}`;
}
