// Checkpoint directories: `checkpoints/ckpt-000001000/` holding model.safetensors,
// optimizer.safetensors, config.json, tokenizer.json and state.json. Each is written under a
// temporary name and renamed whole; the `latest` and `best` pointer files are replaced by
// rename too, so a kill at any moment leaves them naming a complete checkpoint.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const CHECKPOINT_FORMAT_VERSION = 1;
export const CHECKPOINT_FILES = {
  model: 'model.safetensors',
  optimizer: 'optimizer.safetensors',
  config: 'config.json',
  tokenizer: 'tokenizer.json',
  state: 'state.json',
} as const;

export interface CheckpointState {
  readonly formatVersion: number;
  /** Optimizer steps completed. */
  readonly iteration: number;
  readonly bestValLoss: number | null;
  /** Generator state for batches and dropout. */
  readonly random: readonly [number, number, number, number];
  readonly backend: string;
  readonly savedAt: string;
  readonly dataSha256: string;
}

export function checkpointName(iteration: number): string {
  return `ckpt-${String(iteration).padStart(9, '0')}`;
}

/** Writes `files` as checkpoint `name` under `root`, whole or not at all. Returns its path. */
export async function writeCheckpoint(
  root: string,
  name: string,
  files: Record<string, Uint8Array | string>,
): Promise<string> {
  await mkdir(root, { recursive: true });
  const temp = join(root, `.tmp-${name}-${randomBytes(4).toString('hex')}`);
  await mkdir(temp);
  try {
    for (const [file, data] of Object.entries(files)) await writeFile(join(temp, file), data);
    const final = join(root, name);
    await rm(final, { recursive: true, force: true }); // a same-iteration checkpoint being redone
    await rename(temp, final);
    return final;
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/** Points `pointer` (`latest` or `best`) at checkpoint `name`, atomically. */
export async function setPointer(
  root: string,
  pointer: 'latest' | 'best',
  name: string,
): Promise<void> {
  const temp = join(root, `.tmp-${pointer}-${randomBytes(4).toString('hex')}`);
  await writeFile(temp, `${name}\n`);
  await rename(temp, join(root, pointer));
}

export async function readPointer(
  root: string,
  pointer: 'latest' | 'best',
): Promise<string | undefined> {
  try {
    return (await readFile(join(root, pointer), 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Removes temp leftovers and all but the newest `keep` periodic checkpoints (never `protect`). */
export async function pruneCheckpoints(
  root: string,
  keep: number,
  protect: ReadonlySet<string>,
): Promise<void> {
  const entries = await readdir(root);
  for (const entry of entries.filter((e) => e.startsWith('.tmp-'))) {
    await rm(join(root, entry), { recursive: true, force: true });
  }
  if (keep === 0) return;
  const checkpoints = entries.filter((e) => /^ckpt-\d+$/.test(e)).sort();
  for (const name of checkpoints.slice(0, Math.max(0, checkpoints.length - keep))) {
    if (!protect.has(name)) await rm(join(root, name), { recursive: true, force: true });
  }
}
