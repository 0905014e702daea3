// Where a training run keeps its files, as one small interface with three implementations: a
// directory on disk (directoryStorage, in ./node), the browser's Origin Private File System
// (opfsStorage) and memory (memoryStorage). This file holds the interface and what every
// implementation shares: the rules for names, temp names, and the book of issued locks.

/** Where one training run keeps its files: a directory on disk, a folder in OPFS, or memory. */
export interface RunStorage {
  /** The location as messages show it: a directory path, 'opfs:runs/shakespeare', 'memory:runs/a'. */
  readonly location: string;
  /** How messages show `name` ('/'-separated, relative: 'checkpoints/latest'): for a directory, its path. */
  pathOf(name: string): string;
  /** Takes the location's one-writer lock; a second holder is refused with a typed error naming the first. */
  lock(options: {
    readonly command: string;
    readonly onNotice?: (message: string) => void;
  }): Promise<RunLock>;
  /** A file's bytes, or undefined when it does not exist; refuses (CheckpointError rule 'size') a file over maxBytes before reading it. */
  readFile(name: string, maxBytes: number): Promise<Uint8Array | undefined>;
  /** Replaces file `name` whole (a reader sees the old bytes or the new, never a mix); creates parent folders. */
  writeFile(name: string, data: Uint8Array | string, lock: RunLock): Promise<void>;
  /** Appends to file `name` (creates it). */
  appendFile(name: string, text: string, lock: RunLock): Promise<void>;
  /** Writes folder `name` with `files` whole or not at all (temp folder, then into place); replaces one already there. */
  writeDirectory(
    name: string,
    files: ReadonlyMap<string, Uint8Array>,
    lock: RunLock,
  ): Promise<void>;
  /** Names directly inside folder `name` ('' = the root); [] when it does not exist. */
  list(name: string): Promise<string[]>;
  /** 'file' | 'directory' | undefined (absent). */
  kind(name: string): Promise<'file' | 'directory' | undefined>;
  /** Removes file or folder `name` (recursively); absent is fine. */
  remove(name: string, lock: RunLock): Promise<void>;
}

/**
 * A storage's one-writer lock, from its `lock()`. Writes take it as proof: a storage refuses
 * (RangeError, a bug) a lock it did not issue or one already released.
 */
export interface RunLock {
  /** Names this run's temp files and folders (`.tmp-<runId>-…`). */
  readonly runId: string;
  /** Gives the lock up; a second call does nothing. */
  release(): void;
}

/** Temp files and folders start with this, then the run id: `.tmp-<runId>-<name>`. */
export const TEMP_PREFIX = '.tmp-';

/** The file that names a location's lock holder (on disk, and in OPFS). */
export const LOCK_FILE = 'minigpt.lock';

/**
 * The segments of storage name `name`, refusing (RangeError: names come from code, not from
 * users) anything but a relative '/'-separated path of plain segments: an absolute name,
 * `.` or `..`, an empty segment, a backslash or a NUL. `''` (the root) only with `root`.
 */
export function checkStorageName(
  name: string,
  options: { readonly root?: boolean } = {},
): string[] {
  if (typeof name !== 'string') throw new RangeError(`not a storage name: ${String(name)}`);
  if (name === '' && options.root) return [];
  const segments = name.split('/');
  const bad = segments.find(
    (segment) =>
      segment === '' ||
      segment === '.' ||
      segment === '..' ||
      segment.includes('\\') ||
      segment.includes('\0'),
  );
  if (bad !== undefined) {
    throw new RangeError(
      `not a storage name: ${JSON.stringify(name)} (names are relative '/'-separated paths, without '.', '..', empty segments, backslashes or NUL${options.root ? '' : "; '' only where the root is meant"})`,
    );
  }
  return segments;
}

/** Checks the names of a folder's files: one plain segment each (folders are not nested). */
export function checkFolderFiles(files: ReadonlyMap<string, Uint8Array>): void {
  for (const file of files.keys()) {
    if (checkStorageName(file).length !== 1) {
      throw new RangeError(`not a file name inside a folder: ${JSON.stringify(file)}`);
    }
  }
}

/** `name` inside `location`, as messages show it: 'memory:' + 'a/b' → 'memory:a/b'. */
export function locationPath(location: string, name: string): string {
  checkStorageName(name, { root: true });
  if (name === '') return location;
  return location.endsWith('/') || location.endsWith(':') ? location + name : `${location}/${name}`;
}

/** A run id where there is no process id (browsers, memory): time and 32 random bits. */
export function randomRunId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(4));
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${Date.now().toString(36)}-${hex}`;
}

/**
 * The locks one storage object has issued and not yet released. Writes check theirs here,
 * so a write after `release()` (or with another storage's lock) fails loudly instead of
 * racing the next holder.
 */
export class LockBook {
  readonly #live = new WeakSet<RunLock>();

  constructor(private readonly location: string) {}

  /** A lock for `runId` with `extra` fields; `onRelease` runs once, on the first release(). */
  issue<T extends object>(runId: string, extra: T, onRelease: () => void): T & RunLock {
    let released = false;
    const lock: T & RunLock = {
      ...extra,
      runId,
      release: () => {
        if (released) return;
        released = true;
        this.#live.delete(lock);
        onRelease();
      },
    };
    this.#live.add(lock);
    return lock;
  }

  check(lock: RunLock, action: string): void {
    if (!this.#live.has(lock)) {
      throw new RangeError(
        `${this.location}: ${action} needs a lock this storage's lock() issued and that is not released yet`,
      );
    }
  }
}
