// Reads a UTF-8 text file in chunks as decoded text pieces, with the NewlineMode applied,
// hashing the raw bytes on the way. Invalid UTF-8 is reported with its byte offset. It knows
// nothing of tokenizers.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { DataError } from '../errors.js';
import { invalidUtf8Error } from '../prepare.js';
import { NewlineNormalizer, Utf8Checker, type NewlineMode } from '../text.js';

export interface ReadTextOptions {
  readonly newlines: NewlineMode;
  readonly chunkBytes?: number | undefined;
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
  const newlines = new NewlineNormalizer(options.newlines);
  let bytes = 0;
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
        throw await invalidUtf8ErrorOf(path);
      }
      bytes += bytesRead;
      options.onBytes?.(bytes);
      if ((await onText(newlines.push(text, false))) === false) {
        return { bytes, sha256: '' };
      }
    }
    let tail: string;
    try {
      tail = decoder.decode();
    } catch {
      throw await invalidUtf8ErrorOf(path);
    }
    const last = newlines.push(tail, true);
    if (last.length > 0) await onText(last);
    return { bytes, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

async function invalidUtf8ErrorOf(path: string): Promise<DataError> {
  return invalidUtf8Error(path, await findInvalidUtf8(path));
}

/** Byte offset of the first invalid UTF-8 sequence in the file (its length if the file ends mid-character). */
export async function findInvalidUtf8(path: string): Promise<number> {
  const handle = await open(path, 'r');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const checker = new Utf8Checker();
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return checker.end();
      const offset = checker.push(buffer.subarray(0, bytesRead));
      if (offset >= 0) return offset;
    }
  } finally {
    await handle.close();
  }
}
