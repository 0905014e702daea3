// Reads a UTF-8 text file in chunks as decoded text pieces, optionally with Python's
// universal newlines (\r\n and \r → \n), hashing the raw bytes on the way. Invalid UTF-8 is
// reported with its byte offset. It knows nothing of tokenizers.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { DataError } from './errors.js';

/** How line ends are read: `'universal'` like Python's `open()` (and so nanoGPT), or as is. */
export type NewlineMode = 'universal' | 'keep';

export interface ReadTextOptions {
  readonly newlines: NewlineMode;
  readonly chunkBytes?: number;
  /** Called after each chunk with the bytes read so far. */
  readonly onBytes?: (bytesRead: number) => void;
}

export interface ReadTextResult {
  readonly bytes: number;
  readonly sha256: string;
}

const DEFAULT_CHUNK_BYTES = 1 << 20;

/** Streams `path` as text; `onText` gets pieces in order and may stop early with `false`. */
export async function readTextPieces(
  path: string,
  options: ReadTextOptions,
  onText: (piece: string) => boolean | void | Promise<boolean | void>,
): Promise<ReadTextResult> {
  const handle = await open(path, 'r');
  const hash = createHash('sha256');
  // ignoreBOM keeps a leading U+FEFF as text, as Python's 'utf-8' codec does.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const buffer = Buffer.allocUnsafe(options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  let bytes = 0;
  let heldCarriageReturn = false;
  const normalize = (text: string, final: boolean): string => {
    if (options.newlines === 'keep') return text;
    if (heldCarriageReturn) {
      text = `\r${text}`;
      heldCarriageReturn = false;
    }
    // A \r at the end may be the first half of \r\n split across chunks: decide next time.
    if (!final && text.endsWith('\r')) {
      heldCarriageReturn = true;
      text = text.slice(0, -1);
    }
    return text.indexOf('\r') < 0 ? text : text.replace(/\r\n?/g, '\n');
  };
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      hash.update(chunk);
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        throw await invalidUtf8Error(path);
      }
      bytes += bytesRead;
      options.onBytes?.(bytes);
      if ((await onText(normalize(text, false))) === false) {
        return { bytes, sha256: '' };
      }
    }
    let tail: string;
    try {
      tail = decoder.decode();
    } catch {
      throw await invalidUtf8Error(path);
    }
    const last = normalize(tail, true);
    if (last.length > 0) await onText(last);
    return { bytes, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

async function invalidUtf8Error(path: string): Promise<DataError> {
  const offset = await findInvalidUtf8(path);
  return new DataError(
    path,
    `invalid UTF-8 at byte offset ${offset}`,
    'The file must be UTF-8 text; convert it first (for example: iconv -f LATIN1 -t UTF-8 in > out)',
  );
}

/** Byte offset of the first invalid UTF-8 sequence in the file (its length if the file ends mid-character). */
export async function findInvalidUtf8(path: string): Promise<number> {
  const handle = await open(path, 'r');
  const buffer = Buffer.allocUnsafe(1 << 20);
  let offset = 0;
  let needed = 0; // continuation bytes still expected
  let sequenceStart = 0;
  let lowerBound = 0x80; // tighter second-byte bounds rule out overlongs and surrogates
  let upperBound = 0xbf;
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return needed > 0 ? sequenceStart : -1;
      for (let i = 0; i < bytesRead; i++, offset++) {
        const byte = buffer[i]!;
        if (needed === 0) {
          sequenceStart = offset;
          lowerBound = 0x80;
          upperBound = 0xbf;
          if (byte < 0x80) continue;
          if (byte >= 0xc2 && byte <= 0xdf) needed = 1;
          else if (byte >= 0xe0 && byte <= 0xef) {
            needed = 2;
            if (byte === 0xe0) lowerBound = 0xa0;
            if (byte === 0xed) upperBound = 0x9f;
          } else if (byte >= 0xf0 && byte <= 0xf4) {
            needed = 3;
            if (byte === 0xf0) lowerBound = 0x90;
            if (byte === 0xf4) upperBound = 0x8f;
          } else return offset;
        } else {
          if (byte < lowerBound || byte > upperBound) return sequenceStart;
          lowerBound = 0x80;
          upperBound = 0xbf;
          needed--;
        }
      }
    }
  } finally {
    await handle.close();
  }
}
