// Reading and writing single files safely on Node: reads that refuse anything but a regular
// file inside its directory and no larger than a bound (checked before allocating), and
// writes that land whole or not at all (temp name + fsync + rename).
import { constants } from 'node:fs';
import { open, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { withPath } from '@minigpt/errors/node';
import { CheckpointError } from '../errors.js';
import { TEMP_PREFIX } from '../storage.js';

export { TEMP_PREFIX };

/** A temp path beside `path`, owned by run `runId`. */
export function tempPathFor(path: string, runId: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${runId}-${basename(path)}`);
}

/**
 * The bytes of the regular file `path`, refusing (CheckpointError) a missing file, anything
 * that is not a regular file (a FIFO would block, /dev/zero never ends), a file whose real
 * path leaves `within`, and a file over `maxBytes` — before reading a byte of it.
 */
export async function readBoundedFile(
  path: string,
  maxBytes: number,
  within?: string,
): Promise<Uint8Array> {
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CheckpointError(path, 'missing — not a complete checkpoint', 'missing', error);
    }
    throw error; // EACCES, EISDIR …: described for the user by the caller or the CLI
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new CheckpointError(path, 'is not a regular file', 'not-a-file');
    }
    if (within !== undefined) await assertInside(path, within);
    if (info.size > maxBytes) {
      throw new CheckpointError(
        path,
        `is ${info.size} bytes, more than it can hold (at most ${maxBytes}): damaged, or not this file`,
        'size',
      );
    }
    const bytes = new Uint8Array(info.size);
    let filled = 0;
    while (filled < bytes.length) {
      const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, filled);
      if (bytesRead === 0) {
        throw new CheckpointError(path, 'became shorter while being read', 'changed');
      }
      filled += bytesRead;
    }
    return bytes;
  } finally {
    await handle.close();
  }
}

/** Refuses `path` when its real path (symlinks followed) is not inside `dir`'s. */
export async function assertInside(path: string, dir: string): Promise<void> {
  const [realPath, realDir] = await Promise.all([realpath(path), realpath(dir)]);
  if (!realPath.startsWith(realDir.endsWith(sep) ? realDir : realDir + sep)) {
    throw new CheckpointError(
      path,
      `leads outside ${dir} (to ${realPath}); files of a checkpoint must lie inside its directory`,
      'outside',
    );
  }
}

/** Writes `data` to `path` whole or not at all; the temp file is removed on failure. */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  runId: string,
): Promise<void> {
  const temp = tempPathFor(path, runId);
  try {
    await writeFileSynced(temp, data);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    throw error;
  }
}

/** Writes and flushes a new file, so a rename after it never exposes unwritten data. */
export async function writeFileSynced(path: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    // write(2) on a descriptor: Node's error names no path; a user needs it (ENOSPC, EIO).
    throw withPath(error, path);
  } finally {
    await handle.close();
  }
}

/** Flushes a directory's entries (a rename into it) where the platform allows. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Directories cannot be opened or synced on some platforms (Windows): best effort.
  } finally {
    await handle?.close();
  }
}
