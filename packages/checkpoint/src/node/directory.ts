// Checkpoints in a directory on disk: `checkpoints/ckpt-…/` folders written whole (temp
// folder + rename), the `latest` and `best` pointer files, pruning, and reading a checkpoint
// given a checkpoint, checkpoints/ or training output directory. Pointers only ever name a
// ckpt-… directory inside their own folder.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  readCheckpoint,
  type CheckpointSource,
  type DecodedCheckpoint,
  type ReadCheckpointOptions,
} from '../codec.js';
import { CheckpointError } from '../errors.js';
import {
  CHECKPOINTS_DIR,
  CHECKPOINT_FILES,
  POINTER_MAX_BYTES,
  isCheckpointName,
  parsePointer,
  type PointerName,
} from '../layout.js';
import {
  TEMP_PREFIX,
  assertInside,
  tempPathFor,
  readBoundedFile,
  syncDirectory,
  writeFileAtomic,
  writeFileSynced,
} from './files.js';

/** An id for one process's run: its temp names carry it, so it removes only its own. */
export function newRunId(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** The files of checkpoint directory `dir`, read with the bounds the reader asks for. */
export function directorySource(dir: string): CheckpointSource {
  return {
    name: dir,
    pathOf: (file) => join(dir, file),
    read: (file, maxBytes) => readBoundedFile(join(dir, file), maxBytes, dir),
  };
}

/**
 * Reads and checks a checkpoint. `path` may be a checkpoint directory, a `checkpoints/`
 * directory or a training output directory (the latter two through their `latest` pointer).
 */
export async function readCheckpointDir(
  path: string,
  options: ReadCheckpointOptions = {},
): Promise<DecodedCheckpoint> {
  return readCheckpoint(directorySource(await resolveCheckpointDir(path)), options);
}

/** The checkpoint directory `path` means (see readCheckpointDir). */
export async function resolveCheckpointDir(path: string): Promise<string> {
  const isDirectory = await stat(path)
    .then((info) => info.isDirectory())
    .catch(() => false);
  if (!isDirectory) {
    throw new CheckpointError(path, 'no such checkpoint directory', 'missing');
  }
  const hasModel = await lstat(join(path, CHECKPOINT_FILES.model))
    .then(() => true)
    .catch(() => false);
  if (hasModel) return path;
  for (const root of [path, join(path, CHECKPOINTS_DIR)]) {
    const latest = await readPointer(root, 'latest');
    if (latest) return join(root, latest);
  }
  throw new CheckpointError(
    path,
    `not a checkpoint (no ${CHECKPOINT_FILES.model}) and no ${CHECKPOINTS_DIR}/latest inside`,
    'missing',
  );
}

/**
 * The checkpoint `pointer` names in `root`, or undefined when there is no such pointer. A
 * pointer naming anything but an existing ckpt-… directory inside `root` is an error.
 */
export async function readPointer(root: string, pointer: PointerName): Promise<string | undefined> {
  const path = join(root, pointer);
  let bytes: Uint8Array;
  try {
    bytes = await readBoundedFile(path, POINTER_MAX_BYTES, root);
  } catch (error) {
    if (error instanceof CheckpointError && error.rule === 'missing') return undefined;
    if (error instanceof CheckpointError && error.rule === 'size') {
      throw new CheckpointError(path, 'is too large to be a pointer file (damaged?)', 'pointer');
    }
    throw error;
  }
  const name = parsePointer(new TextDecoder().decode(bytes), path);
  const target = join(root, name);
  const isDirectory = await stat(target)
    .then((info) => info.isDirectory())
    .catch(() => false);
  if (!isDirectory) {
    throw new CheckpointError(
      path,
      `names ${name}, which is not a directory beside it (deleted?)`,
      'pointer-target',
    );
  }
  await assertInside(target, root);
  return name;
}

/** Points `pointer` at checkpoint `name`, atomically. */
export async function setPointer(
  root: string,
  pointer: PointerName,
  name: string,
  runId: string,
): Promise<void> {
  if (!isCheckpointName(name)) throw new RangeError(`setPointer: not a checkpoint name: ${name}`);
  await writeFileAtomic(join(root, pointer), `${name}\n`, runId);
  await syncDirectory(root);
}

/**
 * Writes checkpoint `name` under `root` whole or not at all: files go into a temp folder
 * of this run, are flushed, and the folder is renamed into place. Returns its path.
 */
export async function writeCheckpointDir(
  root: string,
  name: string,
  files: ReadonlyMap<string, Uint8Array>,
  runId: string,
): Promise<string> {
  if (!isCheckpointName(name)) throw new RangeError(`writeCheckpointDir: bad name ${name}`);
  return writeDirectoryAtomic(root, name, files, runId);
}

/**
 * Writes folder `name` under `root` (created if missing) whole or not at all, replacing one
 * of that name: writeCheckpointDir without the checkpoint-name rule (directoryStorage).
 */
export async function writeDirectoryAtomic(
  root: string,
  name: string,
  files: ReadonlyMap<string, Uint8Array>,
  runId: string,
): Promise<string> {
  await mkdir(root, { recursive: true });
  const final = join(root, name);
  const temp = tempPathFor(final, runId);
  const aside = tempPathFor(join(root, `replaced-${name}`), runId);
  try {
    await mkdir(temp);
    for (const [file, data] of files) await writeFileSynced(join(temp, file), data);
    await syncDirectory(temp);
    // A resumed run may redo an iteration a killed run had saved (but not pointed to):
    // move that one aside rather than delete it before the new one is in place.
    const replaced = await rename(final, aside).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false;
        throw error;
      },
    );
    await rename(temp, final);
    if (replaced) await rm(aside, { recursive: true, force: true });
    await syncDirectory(root);
    return final;
  } catch (error) {
    await rm(temp, { recursive: true, force: true }).catch(() => {});
    throw error;
  }
}

/**
 * Removes this run's temp leftovers and all but the newest `keep` checkpoints (never one in
 * `protect`); keep 0 keeps all. Other runs' temp folders are left alone.
 */
export async function pruneCheckpoints(
  root: string,
  keep: number,
  protect: ReadonlySet<string>,
  runId: string,
): Promise<void> {
  const entries = await readdir(root);
  for (const entry of entries.filter((e) => e.startsWith(`${TEMP_PREFIX}${runId}-`))) {
    await rm(join(root, entry), { recursive: true, force: true });
  }
  if (keep === 0) return;
  const checkpoints = entries.filter(isCheckpointName).sort();
  for (const name of checkpoints.slice(0, Math.max(0, checkpoints.length - keep))) {
    if (!protect.has(name)) await rm(join(root, name), { recursive: true, force: true });
  }
}

/**
 * Removes every temp file or folder in `dir` (`.tmp-…`): what runs that were killed left
 * behind. Only safe for the holder of the directory's run lock (see lock.ts).
 */
export async function removeLeftoverTemps(dir: string): Promise<string[]> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  const leftovers = entries.filter((entry) => entry.startsWith(TEMP_PREFIX));
  for (const entry of leftovers) await rm(join(dir, entry), { recursive: true, force: true });
  return leftovers;
}
