// A training run's checkpoints in any RunStorage: `checkpoints/ckpt-…/` folders written
// whole, the `latest` and `best` pointer files, pruning, and reading a checkpoint back —
// the same layout and bytes as the directory functions of ./node, for a directory, OPFS or
// memory alike. Pointers only ever name a ckpt-… folder beside them.
import {
  readCheckpoint,
  type CheckpointSource,
  type DecodedCheckpoint,
  type ReadCheckpointOptions,
} from './codec.js';
import { CheckpointError } from './errors.js';
import {
  CHECKPOINTS_DIR,
  POINTER_MAX_BYTES,
  isCheckpointName,
  parsePointer,
  type CheckpointFile,
  type PointerName,
} from './layout.js';
import { TEMP_PREFIX, type RunLock, type RunStorage } from './storage.js';

const inCheckpoints = (name: string) => `${CHECKPOINTS_DIR}/${name}`;

function checkName(name: string, caller: string): void {
  if (!isCheckpointName(name)) throw new RangeError(`${caller}: not a checkpoint name: ${name}`);
}

/**
 * The checkpoint `pointer` names in `storage`'s checkpoints/, or undefined when there is no
 * such pointer. A pointer naming anything but an existing ckpt-… folder beside it is a
 * CheckpointError naming the pointer (`storage.pathOf('checkpoints/latest')`).
 */
export async function readRunPointer(
  storage: RunStorage,
  pointer: PointerName,
): Promise<string | undefined> {
  const path = storage.pathOf(inCheckpoints(pointer));
  let bytes: Uint8Array | undefined;
  try {
    bytes = await storage.readFile(inCheckpoints(pointer), POINTER_MAX_BYTES);
  } catch (error) {
    if (error instanceof CheckpointError && error.rule === 'size') {
      throw new CheckpointError(path, 'is too large to be a pointer file (damaged?)', 'pointer');
    }
    throw error;
  }
  if (bytes === undefined) return undefined;
  const name = parsePointer(new TextDecoder().decode(bytes), path);
  if ((await storage.kind(inCheckpoints(name))) !== 'directory') {
    throw new CheckpointError(
      path,
      `names ${name}, which is not a directory beside it (deleted?)`,
      'pointer-target',
    );
  }
  return name;
}

/** Points `pointer` at checkpoint `name` (replacing the pointer file whole). */
export async function setRunPointer(
  storage: RunStorage,
  pointer: PointerName,
  name: string,
  lock: RunLock,
): Promise<void> {
  checkName(name, 'setRunPointer');
  await storage.writeFile(inCheckpoints(pointer), `${name}\n`, lock);
}

/**
 * Writes checkpoint folder `checkpoints/<name>` with `files` (encodeCheckpoint's) whole or not
 * at all, replacing one of that name. Returns its path as messages show it.
 */
export async function writeRunCheckpoint(
  storage: RunStorage,
  name: string,
  files: ReadonlyMap<string, Uint8Array>,
  lock: RunLock,
): Promise<string> {
  checkName(name, 'writeRunCheckpoint');
  await storage.writeDirectory(inCheckpoints(name), files, lock);
  return storage.pathOf(inCheckpoints(name));
}

/**
 * Removes this run's temp leftovers in checkpoints/ and all but the newest `keep`
 * checkpoints (never one in `protect`); keep 0 keeps all. Other runs' temp folders are left
 * alone (removeRunTemps, when the lock is taken, is for those).
 */
export async function pruneRunCheckpoints(
  storage: RunStorage,
  keep: number,
  protect: ReadonlySet<string>,
  lock: RunLock,
): Promise<void> {
  const entries = await storage.list(CHECKPOINTS_DIR);
  for (const entry of entries.filter((e) => e.startsWith(`${TEMP_PREFIX}${lock.runId}-`))) {
    await storage.remove(inCheckpoints(entry), lock);
  }
  if (keep === 0) return;
  const checkpoints = entries.filter(isCheckpointName).sort();
  for (const name of checkpoints.slice(0, Math.max(0, checkpoints.length - keep))) {
    if (!protect.has(name)) await storage.remove(inCheckpoints(name), lock);
  }
}

/**
 * Removes the temp files and folders (`.tmp-…`) in the storage's root and checkpoints/ that
 * are not `lock`'s run's: what runs killed mid-write left behind. Only the lock's holder may
 * (no other run can be writing them). Returns their names. directoryStorage and opfsStorage
 * do this when their lock is taken.
 */
export async function removeRunTemps(storage: RunStorage, lock: RunLock): Promise<string[]> {
  const own = `${TEMP_PREFIX}${lock.runId}-`;
  const removed: string[] = [];
  for (const folder of ['', CHECKPOINTS_DIR]) {
    for (const entry of await storage.list(folder)) {
      if (!entry.startsWith(TEMP_PREFIX) || entry.startsWith(own)) continue;
      const name = folder === '' ? entry : `${folder}/${entry}`;
      await storage.remove(name, lock);
      removed.push(name);
    }
  }
  return removed;
}

/** The files of checkpoint `checkpoints/<name>` in `storage`, for readCheckpoint. */
export function runCheckpointSource(storage: RunStorage, name: string): CheckpointSource {
  checkName(name, 'runCheckpointSource');
  const fileName = (file: CheckpointFile) => inCheckpoints(`${name}/${file}`);
  return {
    name: storage.pathOf(inCheckpoints(name)),
    pathOf: (file) => storage.pathOf(fileName(file)),
    async read(file, maxBytes) {
      const bytes = await storage.readFile(fileName(file), maxBytes);
      if (bytes === undefined) {
        throw new CheckpointError(
          storage.pathOf(fileName(file)),
          'missing — not a complete checkpoint',
          'missing',
        );
      }
      return bytes;
    },
  };
}

/**
 * Reads and checks checkpoint `name` of `storage` (default: the one `checkpoints/latest`
 * names). No checkpoint there is a CheckpointError naming what is missing.
 */
export async function readRunCheckpoint(
  storage: RunStorage,
  options: ReadCheckpointOptions & { readonly name?: string } = {},
): Promise<DecodedCheckpoint> {
  const { name: chosen, ...readOptions } = options;
  let name = chosen;
  if (name === undefined) {
    name = await readRunPointer(storage, 'latest');
    if (name === undefined) {
      throw new CheckpointError(
        storage.pathOf(inCheckpoints('latest')),
        'missing — no checkpoint has been saved here',
        'missing',
      );
    }
  } else {
    checkName(name, 'readRunCheckpoint');
    if ((await storage.kind(inCheckpoints(name))) !== 'directory') {
      throw new CheckpointError(
        storage.pathOf(inCheckpoints(name)),
        'no such checkpoint directory',
        'missing',
      );
    }
  }
  return readCheckpoint(runCheckpointSource(storage, name), readOptions);
}
