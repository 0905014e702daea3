// A RunStorage in memory: a tree of Maps, gone with the page or process. For tests, and for
// a browser run that should leave nothing behind. Every change is one synchronous step, so
// a reader never sees half of one; bytes are copied in and out, so no caller can change a
// stored file by changing its array.
import { MinigptError } from '@minigpt/errors';
import { CheckpointError, RunLockedError } from './errors.js';
import {
  LockBook,
  checkFolderFiles,
  checkStorageName,
  locationPath,
  randomRunId,
  type RunLock,
  type RunStorage,
} from './storage.js';

type MemoryFolder = Map<string, MemoryEntry>;
type MemoryEntry = Uint8Array | MemoryFolder;

const encoder = new TextEncoder();

/**
 * A run's storage in memory, named `location` in messages. Its lock belongs to this object:
 * a second `lock()` on it is refused until the first is released.
 */
export function memoryStorage(location = 'memory:'): RunStorage {
  const root: MemoryFolder = new Map();
  const book = new LockBook(location);
  let holder: { readonly command: string; readonly runId: string; readonly startedAt: string };
  let held = false;
  const pathOf = (name: string) => locationPath(location, name);

  /** The entry at `segments`, or undefined when it (or a folder on the way) is absent. */
  const find = (segments: readonly string[]): MemoryEntry | undefined => {
    let entry: MemoryEntry | undefined = root;
    for (const segment of segments) {
      if (!(entry instanceof Map)) return undefined;
      entry = entry.get(segment);
    }
    return entry;
  };

  /** The folder holding `name`'s last segment, created on the way. */
  const parentFolder = (name: string): { folder: MemoryFolder; base: string } => {
    const segments = checkStorageName(name);
    const base = segments.pop()!;
    let folder = root;
    for (const [index, segment] of segments.entries()) {
      let next = folder.get(segment);
      if (next === undefined) {
        next = new Map();
        folder.set(segment, next);
      }
      if (!(next instanceof Map)) {
        const path = pathOf(segments.slice(0, index + 1).join('/'));
        throw new MinigptError(`${path}: is a file where a folder belongs`, {
          file: path,
          rule: 'not-a-directory',
        });
      }
      folder = next;
    }
    return { folder, base };
  };

  const notAFile = (name: string) =>
    new MinigptError(`${pathOf(name)}: is a folder, not a file`, {
      file: pathOf(name),
      rule: 'not-a-file',
    });

  return {
    location,
    pathOf,

    async lock({ command }) {
      if (held) {
        throw new RunLockedError(
          `${location}: in use by ${holder.command} (run ${holder.runId}, started ${holder.startedAt}). Wait for it to finish, or use another storage`,
          { file: location, rule: 'locked' },
        );
      }
      const runId = randomRunId();
      held = true;
      holder = { command, runId, startedAt: new Date().toISOString() };
      return book.issue(runId, {}, () => {
        held = false;
      });
    },

    async readFile(name, maxBytes) {
      const entry = find(checkStorageName(name));
      if (entry === undefined) return undefined;
      if (entry instanceof Map) {
        throw new CheckpointError(pathOf(name), 'is not a regular file', 'not-a-file');
      }
      if (entry.length > maxBytes) {
        throw new CheckpointError(
          pathOf(name),
          `is ${entry.length} bytes, more than it can hold (at most ${maxBytes}): damaged, or not this file`,
          'size',
        );
      }
      return entry.slice();
    },

    async writeFile(name, data, lock: RunLock) {
      book.check(lock, `writing ${pathOf(name)}`);
      const { folder, base } = parentFolder(name);
      if (folder.get(base) instanceof Map) throw notAFile(name);
      folder.set(base, typeof data === 'string' ? encoder.encode(data) : data.slice());
    },

    async appendFile(name, text, lock) {
      book.check(lock, `appending to ${pathOf(name)}`);
      const { folder, base } = parentFolder(name);
      const old = folder.get(base) ?? new Uint8Array(0);
      if (old instanceof Map) throw notAFile(name);
      const added = encoder.encode(text);
      const joined = new Uint8Array(old.length + added.length);
      joined.set(old);
      joined.set(added, old.length);
      folder.set(base, joined);
    },

    async writeDirectory(name, files, lock) {
      book.check(lock, `writing ${pathOf(name)}`);
      checkFolderFiles(files);
      const { folder, base } = parentFolder(name);
      const written: MemoryFolder = new Map([...files].map(([file, data]) => [file, data.slice()]));
      folder.set(base, written);
    },

    async list(name) {
      const entry = find(checkStorageName(name, { root: true }));
      return entry instanceof Map ? [...entry.keys()].sort() : [];
    },

    async kind(name) {
      const entry = find(checkStorageName(name, { root: true }));
      if (entry === undefined) return undefined;
      return entry instanceof Map ? 'directory' : 'file';
    },

    async remove(name, lock) {
      book.check(lock, `removing ${pathOf(name)}`);
      const segments = checkStorageName(name);
      const base = segments.pop()!;
      const parent = find(segments);
      if (parent instanceof Map) parent.delete(base);
    },
  };
}
