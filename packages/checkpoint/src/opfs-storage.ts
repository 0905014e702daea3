// A RunStorage in the browser's Origin Private File System, under one folder handle (the
// run's). Files are replaced through createWritable(), which writes to a swap file and
// commits on close(); folders are written under a temp name and moved into place; one
// writer per run through the Web Locks API (a lock file where the browser lacks it).
//
// The handle types are declared here, structurally and only as far as this file uses them,
// so that consumers need not compile with the DOM lib: a real FileSystemDirectoryHandle
// (`await navigator.storage.getDirectory()`) is assignable to OpfsDirectoryHandle.
import { CheckpointError, RunLockedError } from './errors.js';
import {
  LOCK_FILE,
  LockBook,
  TEMP_PREFIX,
  checkFolderFiles,
  checkStorageName,
  locationPath,
  randomRunId,
  type RunStorage,
} from './storage.js';
import { removeRunTemps } from './run.js';

/** The part of FileSystemHandle this storage uses. */
export interface OpfsHandle {
  readonly kind: 'file' | 'directory';
  readonly name: string;
}

/** The part of FileSystemDirectoryHandle this storage uses; `move` where the browser has it. */
export interface OpfsDirectoryHandle extends OpfsHandle {
  getDirectoryHandle(
    name: string,
    options?: { readonly create?: boolean },
  ): Promise<OpfsDirectoryHandle>;
  getFileHandle(name: string, options?: { readonly create?: boolean }): Promise<OpfsFileHandle>;
  removeEntry(name: string, options?: { readonly recursive?: boolean }): Promise<void>;
  keys(): AsyncIterable<string>;
  move?(destination: OpfsDirectoryHandle, newName: string): Promise<void>;
}

/** The part of FileSystemFileHandle this storage uses; `move` where the browser has it. */
export interface OpfsFileHandle extends OpfsHandle {
  getFile(): Promise<{ readonly size: number; arrayBuffer(): Promise<ArrayBuffer> }>;
  createWritable(options?: { readonly keepExistingData?: boolean }): Promise<OpfsWritable>;
  move?(destination: OpfsDirectoryHandle, newName: string): Promise<void>;
}

/** The part of FileSystemWritableFileStream this storage uses. */
export interface OpfsWritable {
  /** The browser takes no view of a SharedArrayBuffer: writers pass unshared() bytes. */
  write(data: Uint8Array<ArrayBuffer> | string): Promise<void>;
  seek(position: number): Promise<void>;
  close(): Promise<void>;
  abort(reason?: unknown): Promise<void>;
}

/** The part of the Web Locks API (`navigator.locks`) this storage uses. */
export interface WebLocks {
  request(
    name: string,
    options: { readonly ifAvailable: true },
    callback: (lock: object | null) => Promise<void> | undefined,
  ): Promise<unknown>;
}

export interface OpfsStorageOptions {
  /**
   * The Web Locks API to lock with: default `navigator.locks`; `null` uses the lock file
   * alone (what happens where the browser has no Web Locks).
   */
  readonly locks?: WebLocks | null;
}

interface LockOwner {
  readonly runId: string;
  readonly command: string;
  readonly startedAt: string;
}

/** Releases in progress in this realm, by lock name: a new lock() waits for them. */
const releasing = new Map<string, Promise<void>>();

/** `data` as the browser's write() takes it: bytes of a SharedArrayBuffer are copied out. */
function unshared(data: Uint8Array | string): Uint8Array<ArrayBuffer> | string {
  if (typeof data === 'string') return data;
  return data.buffer instanceof ArrayBuffer
    ? (data as Uint8Array<ArrayBuffer>)
    : new Uint8Array(data);
}

const isNamed = (error: unknown, ...names: string[]) =>
  names.includes((error as { name?: unknown } | null)?.name as string);

/**
 * A run's storage in OPFS folder `root`, named `location` in messages (e.g.
 * 'opfs:runs/shakespeare'). Errors of the browser (a full quota: QuotaExceededError) come
 * through as the browser's DOMException, name intact.
 *
 * What survives a tab closed (or crashed) mid-write:
 * - A file replaced with writeFile: the old bytes or the new — createWritable() writes a swap
 *   file that close() commits. A new file is written under a temp name and moved into place
 *   where the browser can move files (FileSystemFileHandle.move); elsewhere it is created in
 *   place, so for an instant it exists empty.
 * - A folder written with writeDirectory: all its files are written under a temp folder of
 *   the run (`.tmp-<runId>-<name>`) first. Where the browser can move folders, the temp folder
 *   is then moved into place in one step (an existing one moved aside first, then removed):
 *   whole or not at all. Where it cannot, the old folder is removed and the new one filled
 *   file by file (each file moved from the temp folder, or copied where files cannot be moved
 *   either), then the temp folder removed: a crash then can leave the folder partial or
 *   absent. A checkpoint folder is only named by a pointer after writeDirectory returns, so
 *   `latest` never names a partial one; temp leftovers are removed by the next lock().
 * - An appendFile: the old text, or the old text and the whole new line.
 */
export function opfsStorage(
  root: OpfsDirectoryHandle,
  location: string,
  options: OpfsStorageOptions = {},
): RunStorage {
  const book = new LockBook(location);
  const lockName = `@minigpt/checkpoint ${location}`;
  const pathOf = (name: string) => locationPath(location, name);

  /**
   * The folder that holds `segments`' last segment: created on the way with `create`,
   * otherwise undefined when a folder on the way is missing (or is a file).
   */
  async function parentOf(
    segments: readonly string[],
    create: boolean,
  ): Promise<OpfsDirectoryHandle | undefined> {
    let folder = root;
    for (const segment of segments.slice(0, -1)) {
      try {
        folder = await folder.getDirectoryHandle(segment, { create });
      } catch (error) {
        if (!create && isNamed(error, 'NotFoundError', 'TypeMismatchError')) return undefined;
        throw error;
      }
    }
    return folder;
  }

  async function folderAt(name: string): Promise<OpfsDirectoryHandle | undefined> {
    const segments = checkStorageName(name, { root: true });
    if (segments.length === 0) return root;
    const parent = await parentOf(segments, false);
    if (!parent) return undefined;
    try {
      return await parent.getDirectoryHandle(segments.at(-1)!);
    } catch (error) {
      if (isNamed(error, 'NotFoundError', 'TypeMismatchError')) return undefined;
      throw error;
    }
  }

  /** The kind of `folder`'s entry `base`, found without creating anything. */
  async function entryKind(
    folder: OpfsDirectoryHandle,
    base: string,
  ): Promise<'file' | 'directory' | undefined> {
    try {
      await folder.getFileHandle(base);
      return 'file';
    } catch (error) {
      if (isNamed(error, 'TypeMismatchError')) return 'directory';
      if (isNamed(error, 'NotFoundError')) return undefined;
      throw error;
    }
  }

  async function removeQuietly(folder: OpfsDirectoryHandle, base: string): Promise<void> {
    await folder.removeEntry(base, { recursive: true }).catch((error: unknown) => {
      if (!isNamed(error, 'NotFoundError')) throw error;
    });
  }

  /** Writes `data` as the whole content of `file` (commits on close, or leaves it as it was). */
  async function writeWhole(file: OpfsFileHandle, data: Uint8Array | string): Promise<void> {
    const writable = await file.createWritable();
    try {
      await writable.write(unshared(data));
    } catch (error) {
      await writable.abort().catch(() => {});
      throw error;
    }
    await writable.close();
  }

  /** writeFile, for the run `runId` (its temp names), without checking a lock. */
  async function writeFileAs(
    runId: string,
    name: string,
    data: Uint8Array | string,
  ): Promise<void> {
    const segments = checkStorageName(name);
    const base = segments.at(-1)!;
    const parent = (await parentOf(segments, true))!;
    const existing = await entryKind(parent, base);
    if (existing === 'directory') {
      throw new CheckpointError(pathOf(name), 'is a folder, not a file', 'not-a-file');
    }
    if (existing === 'file') {
      await writeWhole(await parent.getFileHandle(base), data);
      return;
    }
    // A new file: written under a temp name and moved into place, so no reader finds it
    // empty (a `latest` pointer half-made would stop a resume).
    const temp = `${TEMP_PREFIX}${runId}-${base}`;
    const file = await parent.getFileHandle(temp, { create: true });
    try {
      await writeWhole(file, data);
    } catch (error) {
      await removeQuietly(parent, temp).catch(() => {});
      throw error;
    }
    if (typeof file.move === 'function') {
      try {
        await file.move(parent, base);
        return;
      } catch {
        // Moving files unsupported after all: write in place below.
      }
    }
    await removeQuietly(parent, temp);
    await writeWhole(await parent.getFileHandle(base, { create: true }), data);
  }

  async function readOwner(): Promise<LockOwner | 'damaged' | undefined> {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await storage.readFile(LOCK_FILE, 4096);
    } catch {
      return 'damaged';
    }
    if (bytes === undefined) return undefined;
    try {
      const parsed = JSON.parse(new TextDecoder().decode(bytes)) as Partial<LockOwner>;
      if (typeof parsed.runId === 'string') {
        return {
          runId: parsed.runId.slice(0, 40),
          command: typeof parsed.command === 'string' ? parsed.command.slice(0, 80) : 'minigpt',
          startedAt: typeof parsed.startedAt === 'string' ? parsed.startedAt.slice(0, 40) : '?',
        };
      }
    } catch {
      // fall through
    }
    return 'damaged';
  }

  const describe = (owner: LockOwner) =>
    `${owner.command} (run ${owner.runId}, started ${owner.startedAt})`;

  /**
   * Holds the Web Lock `lockName` if it is free, or undefined. Its release function settles
   * once the browser has let the lock go (request() settles after the release).
   */
  function takeWebLock(locks: WebLocks): Promise<(() => Promise<unknown>) | undefined> {
    return new Promise((resolve, reject) => {
      const request = locks
        .request(lockName, { ifAvailable: true }, (lock) => {
          if (lock === null) {
            resolve(undefined);
            return undefined;
          }
          // Held until this promise settles: until release.
          return new Promise<void>((release) =>
            resolve(() => {
              release();
              return request;
            }),
          );
        })
        .catch(reject);
    });
  }

  const storage: RunStorage = {
    location,
    pathOf,

    async lock({ command, onNotice }) {
      await releasing.get(lockName);
      const locks =
        options.locks === undefined
          ? (globalThis as { navigator?: { locks?: WebLocks } }).navigator?.locks
          : (options.locks ?? undefined);
      const owner: LockOwner = {
        runId: randomRunId(),
        command,
        startedAt: new Date().toISOString(),
      };
      let releaseWebLock: (() => Promise<unknown>) | undefined;
      if (locks) {
        releaseWebLock = await takeWebLock(locks);
        if (!releaseWebLock) {
          const holder = await readOwner();
          throw new RunLockedError(
            `${location}: in use by ${typeof holder === 'object' ? describe(holder) : 'another run'} in this or another tab or worker. Wait for it to finish, or choose another run`,
            { file: pathOf(LOCK_FILE), rule: 'locked' },
          );
        }
      }
      try {
        const previous = await readOwner();
        if (typeof previous === 'object') {
          if (!releaseWebLock) {
            // No Web Locks: the file is the lock, and whether its page is gone cannot be told.
            throw new RunLockedError(
              `${location}: in use by ${describe(previous)}. Wait for it to finish; if nothing runs there any more, remove ${pathOf(LOCK_FILE)}`,
              { file: pathOf(LOCK_FILE), rule: 'locked' },
            );
          }
          // The Web Lock was free, so the page that wrote this file is gone.
          onNotice?.(
            `${location}: took over the lock of ${describe(previous)}, which is no longer running`,
          );
        } else if (previous === 'damaged') {
          onNotice?.(`${pathOf(LOCK_FILE)}: replaced a damaged lock file`);
        }
        await writeFileAs(owner.runId, LOCK_FILE, `${JSON.stringify(owner)}\n`);
        if (!releaseWebLock) {
          // Two pages that both found no lock file: the one whose write was overwritten backs
          // off. (Only narrows the race: without Web Locks, two pages starting in the same
          // instant can both get in. Every browser with OPFS but early Safari 15 has them.)
          const written = await readOwner();
          if (typeof written !== 'object' || written.runId !== owner.runId) {
            throw new RunLockedError(
              `${location}: another run took the lock at the same moment. Try again`,
              { file: pathOf(LOCK_FILE), rule: 'locked' },
            );
          }
        }
      } catch (error) {
        await releaseWebLock?.();
        throw error;
      }
      const lock = book.issue(owner.runId, {}, () => {
        const done = (async () => {
          const holder = await readOwner();
          if (typeof holder === 'object' && holder.runId === owner.runId) {
            await root.removeEntry(LOCK_FILE);
          }
        })()
          .catch(() => {})
          .then(() => releaseWebLock?.())
          .then(
            () => {},
            () => {},
          )
          .finally(() => {
            if (releasing.get(lockName) === done) releasing.delete(lockName);
          });
        releasing.set(lockName, done);
      });
      try {
        // The lock's holder is the only writer: any other run's temp files are leftovers.
        const removed = await removeRunTemps(storage, lock);
        if (removed.length > 0) {
          onNotice?.(`removed ${removed.length} temp file(s) left by a killed run`);
        }
      } catch (error) {
        lock.release();
        throw error;
      }
      return lock;
    },

    async readFile(name, maxBytes) {
      const segments = checkStorageName(name);
      const parent = await parentOf(segments, false);
      if (!parent) return undefined;
      let handle: OpfsFileHandle;
      try {
        handle = await parent.getFileHandle(segments.at(-1)!);
      } catch (error) {
        if (isNamed(error, 'NotFoundError')) return undefined;
        if (isNamed(error, 'TypeMismatchError')) {
          throw new CheckpointError(pathOf(name), 'is not a regular file', 'not-a-file', error);
        }
        throw error;
      }
      let file;
      try {
        file = await handle.getFile();
      } catch (error) {
        if (isNamed(error, 'NotFoundError')) return undefined; // removed meanwhile
        throw error;
      }
      if (file.size > maxBytes) {
        throw new CheckpointError(
          pathOf(name),
          `is ${file.size} bytes, more than it can hold (at most ${maxBytes}): damaged, or not this file`,
          'size',
        );
      }
      return new Uint8Array(await file.arrayBuffer());
    },

    async writeFile(name, data, lock) {
      book.check(lock, `writing ${pathOf(name)}`);
      await writeFileAs(lock.runId, name, data);
    },

    async appendFile(name, text, lock) {
      book.check(lock, `appending to ${pathOf(name)}`);
      const segments = checkStorageName(name);
      const base = segments.at(-1)!;
      const parent = (await parentOf(segments, true))!;
      if ((await entryKind(parent, base)) === 'directory') {
        throw new CheckpointError(pathOf(name), 'is a folder, not a file', 'not-a-file');
      }
      const file = await parent.getFileHandle(base, { create: true });
      const { size } = await file.getFile();
      // keepExistingData: the swap file starts as a copy, so close() commits old + new.
      const writable = await file.createWritable({ keepExistingData: true });
      try {
        await writable.seek(size);
        await writable.write(text);
      } catch (error) {
        await writable.abort().catch(() => {});
        throw error;
      }
      await writable.close();
    },

    async writeDirectory(name, files, lock) {
      book.check(lock, `writing ${pathOf(name)}`);
      checkFolderFiles(files);
      const segments = checkStorageName(name);
      const base = segments.at(-1)!;
      const parent = (await parentOf(segments, true))!;
      const tempName = `${TEMP_PREFIX}${lock.runId}-${base}`;
      await removeQuietly(parent, tempName);
      const temp = await parent.getDirectoryHandle(tempName, { create: true });
      try {
        for (const [file, data] of files) {
          await writeWhole(await temp.getFileHandle(file, { create: true }), data);
        }
        if (await moveFolderIntoPlace(parent, temp, base, lock.runId)) return;
        // No folder moves: copy-then-delete (see the comment of opfsStorage).
        await removeQuietly(parent, base);
        const final = await parent.getDirectoryHandle(base, { create: true });
        for (const [file, data] of files) {
          const written = await temp.getFileHandle(file);
          if (typeof written.move === 'function') {
            try {
              await written.move(final, file);
              continue;
            } catch {
              // Moving files unsupported after all: copy this one.
            }
          }
          await writeWhole(await final.getFileHandle(file, { create: true }), data);
        }
        await removeQuietly(parent, tempName);
      } catch (error) {
        await removeQuietly(parent, tempName).catch(() => {});
        throw error;
      }
    },

    async list(name) {
      const folder = await folderAt(name);
      if (!folder) return [];
      const names: string[] = [];
      for await (const key of folder.keys()) names.push(key);
      return names.sort();
    },

    async kind(name) {
      const segments = checkStorageName(name, { root: true });
      if (segments.length === 0) return 'directory';
      const parent = await parentOf(segments, false);
      return parent ? entryKind(parent, segments.at(-1)!) : undefined;
    },

    async remove(name, lock) {
      book.check(lock, `removing ${pathOf(name)}`);
      const segments = checkStorageName(name);
      const parent = await parentOf(segments, false);
      if (parent) await removeQuietly(parent, segments.at(-1)!);
    },
  };

  /**
   * Moves `temp` to `base` in `parent` with the browser's folder move, replacing a folder
   * there (moved aside first, removed after). false, with nothing changed, where the browser
   * cannot move folders.
   */
  async function moveFolderIntoPlace(
    parent: OpfsDirectoryHandle,
    temp: OpfsDirectoryHandle,
    base: string,
    runId: string,
  ): Promise<boolean> {
    if (typeof temp.move !== 'function') return false;
    const existing = await entryKind(parent, base);
    if (existing === 'file') await parent.removeEntry(base);
    const aside = `${TEMP_PREFIX}${runId}-replaced-${base}`;
    let old: OpfsDirectoryHandle | undefined;
    if (existing === 'directory') {
      old = await parent.getDirectoryHandle(base);
      await removeQuietly(parent, aside);
      try {
        await old.move!(parent, aside);
      } catch {
        return false; // the browser moves files only
      }
    }
    try {
      await temp.move(parent, base);
    } catch (error) {
      if (!old) return false;
      await old.move!(parent, base).catch(() => {});
      throw error;
    }
    if (old) await removeQuietly(parent, aside);
    return true;
  }

  return storage;
}
