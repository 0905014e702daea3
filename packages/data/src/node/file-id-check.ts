// The id scan of a split on disk: reads the file once in large chunks (two buffers: the next
// chunk is read while one is scanned) with the in-memory kernel of ../id-check.ts, so a split
// larger than RAM is checked without being held.
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { DataError } from '../errors.js';
import { firstAtOrAbove, maxId, type BadTokenId } from '../id-check.js';
import { bytesPerToken, type TokenDtype } from '../meta.js';

/** Bytes per read when scanning a file: big enough that syscalls cost nothing, two in memory. */
export const FILE_SCAN_CHUNK_BYTES = 16 * 2 ** 20;

/**
 * The first id ≥ `vocabSize` in the `tokens`-token file at `path`, read once from start to
 * end in chunks of `chunkBytes` without holding the file: the next chunk is read while this
 * one is scanned. The caller has already checked the file's size against meta.json.
 */
export async function findBadTokenIdInFile(
  path: string,
  dtype: TokenDtype,
  vocabSize: number,
  tokens: number,
  chunkBytes = FILE_SCAN_CHUNK_BYTES,
): Promise<BadTokenId | undefined> {
  const width = bytesPerToken(dtype);
  // Whole tokens per chunk, so none straddles two reads and every view is aligned.
  const chunkTokens = Math.max(1, Math.floor(chunkBytes / width));
  const buffers = [0, 1].map(() => Buffer.allocUnsafeSlow(chunkTokens * width));
  const handle = await open(path, 'r');
  let pending: Promise<number> | undefined;
  try {
    const readChunk = (chunk: number): Promise<number> => {
      const first = chunk * chunkTokens;
      const count = Math.min(chunkTokens, tokens - first);
      return readFully(handle, buffers[chunk & 1]!, count * width, first * width, path);
    };
    if (tokens > 0) pending = readChunk(0);
    for (let chunk = 0; pending; chunk++) {
      const bytes = await pending;
      pending = undefined;
      const first = chunk * chunkTokens;
      if (first + bytes / width < tokens) pending = readChunk(chunk + 1);
      const buffer = buffers[chunk & 1]!;
      if (endianness() === 'BE') {
        if (width === 2) buffer.subarray(0, bytes).swap16();
        else buffer.subarray(0, bytes).swap32();
      }
      const view =
        width === 2
          ? new Uint16Array(buffer.buffer, buffer.byteOffset, bytes / 2)
          : new Uint32Array(buffer.buffer, buffer.byteOffset, bytes / 4);
      if (maxId(view, 0, view.length) >= vocabSize) {
        const bad = firstAtOrAbove(view, 0, view.length, vocabSize)!;
        return { index: first + bad.index, id: bad.id };
      }
    }
    return undefined;
  } finally {
    // A read still in flight must finish before its handle closes (and its error, if any,
    // is moot: the scan already has its answer or its own error).
    await pending?.catch(() => undefined);
    await handle.close();
  }
}

/** Reads exactly `length` bytes at `position`; a file that shrank since its size was checked is refused. */
async function readFully(
  handle: FileHandle,
  buffer: Buffer,
  length: number,
  position: number,
  path: string,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) {
      throw new DataError(
        path,
        `ended at byte ${position + done} while its ids were being checked: it changed after its size was read (if something is still writing it, wait for it to finish)`,
        { remedy: 'prepare-again' },
      );
    }
    done += bytesRead;
  }
  return done;
}
