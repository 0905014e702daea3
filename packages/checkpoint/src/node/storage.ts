// A RunStorage over a directory on disk, through the same functions the directory helpers
// use (writeFileAtomic, writeCheckpointDir's temp folder + fsync + rename, acquireRunLock's
// minigpt.lock, readBoundedFile), so a run's files are byte for byte what they were before
// RunStorage existed.
import { appendFile, lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CheckpointError } from '../errors.js';
import { CHECKPOINTS_DIR } from '../layout.js';
import {
  LockBook,
  checkFolderFiles,
  checkStorageName,
  type RunLock,
  type RunStorage,
} from '../storage.js';
import { writeDirectoryAtomic } from './directory.js';
import { assertInside, readBoundedFile, syncDirectory, writeFileAtomic } from './files.js';
import { acquireRunLock, type DirectoryLock } from './lock.js';

/** directoryStorage's RunStorage: its lock is a DirectoryLock (it knows what it created). */
export interface DirectoryStorage extends RunStorage {
  /** The directory, as given. */
  readonly dir: string;
  lock(options: {
    readonly command: string;
    readonly onNotice?: (message: string) => void;
  }): Promise<DirectoryLock>;
}

const isCode = (error: unknown, ...codes: string[]) =>
  codes.includes((error as NodeJS.ErrnoException | null)?.code ?? '');

/**
 * A run's storage in directory `dir` (created by lock() if missing). Names are paths under
 * it; messages show `join(dir, name)`. The lock is acquireRunLock's `minigpt.lock`: one
 * writer per directory across processes, a dead process's lock taken over with a notice,
 * and the temp leftovers of killed runs in `dir` and `dir/checkpoints` removed then.
 */
export function directoryStorage(dir: string): DirectoryStorage {
  const book = new LockBook(dir);
  const pathOf = (name: string) =>
    checkStorageName(name, { root: true }).length === 0 ? dir : join(dir, name);

  return {
    location: dir,
    dir,
    pathOf,

    async lock({ command, onNotice }) {
      const held = await acquireRunLock(dir, { command, ...(onNotice ? { onNotice } : {}) }, [
        join(dir, CHECKPOINTS_DIR),
      ]);
      const { dir: lockedDir, createdDir } = held;
      return book.issue(held.runId, { dir: lockedDir, createdDir }, () => held.release());
    },

    async readFile(name, maxBytes) {
      const path = pathOf(checkName(name));
      try {
        // Inside its own folder after symlinks, as readCheckpointDir and readPointer check.
        return await readBoundedFile(path, maxBytes, dirname(path));
      } catch (error) {
        if (error instanceof CheckpointError && error.rule === 'missing') return undefined;
        if (isCode(error, 'ENOENT', 'ENOTDIR')) return undefined; // a folder on the way is absent
        throw error;
      }
    },

    async writeFile(name, data, lock) {
      book.check(lock, `writing ${pathOf(name)}`);
      const path = pathOf(checkName(name));
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, data, lock.runId);
      await syncDirectory(dirname(path));
    },

    async appendFile(name, text, lock) {
      book.check(lock, `appending to ${pathOf(name)}`);
      const path = pathOf(checkName(name));
      await mkdir(dirname(path), { recursive: true });
      await appendFile(path, text);
    },

    async writeDirectory(name, files, lock) {
      book.check(lock, `writing ${pathOf(name)}`);
      checkFolderFiles(files);
      const path = pathOf(checkName(name));
      await writeDirectoryAtomic(dirname(path), name.split('/').at(-1)!, files, lock.runId);
    },

    async list(name) {
      checkStorageName(name, { root: true });
      try {
        return (await readdir(pathOf(name))).sort();
      } catch (error) {
        if (isCode(error, 'ENOENT', 'ENOTDIR')) return [];
        throw error;
      }
    },

    async kind(name) {
      checkStorageName(name, { root: true });
      const path = pathOf(name);
      let info;
      try {
        info = await lstat(path);
        if (info.isSymbolicLink()) {
          info = await stat(path);
          // A link may stand for a folder only where it stays inside the run's directory.
          await assertInside(path, dirname(path));
        }
      } catch (error) {
        if (isCode(error, 'ENOENT', 'ENOTDIR')) return undefined;
        throw error;
      }
      return info.isDirectory() ? 'directory' : 'file';
    },

    async remove(name, lock: RunLock) {
      book.check(lock, `removing ${pathOf(name)}`);
      await rm(pathOf(checkName(name)), { recursive: true, force: true });
    },
  };
}

function checkName(name: string): string {
  checkStorageName(name);
  return name;
}
