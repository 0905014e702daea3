// What a training output directory holds and what its names may be: `checkpoints/ckpt-…/`
// directories of five files, and the `latest` / `best` pointer files naming one of them.
// It knows the names only; reading and writing them is codec.ts (bytes), run.ts (any
// RunStorage) and node/ (directories on disk).
import { CheckpointError } from './errors.js';

/** Version of the checkpoint layout and its JSON files; a change of either bumps it. */
export const CHECKPOINT_FORMAT_VERSION = 1;

export const CHECKPOINT_FILES = {
  model: 'model.safetensors',
  optimizer: 'optimizer.safetensors',
  config: 'config.json',
  tokenizer: 'tokenizer.json',
  state: 'state.json',
} as const;

export type CheckpointFile = (typeof CHECKPOINT_FILES)[keyof typeof CHECKPOINT_FILES];

/** The folder of a training output directory that holds the checkpoints and pointers. */
export const CHECKPOINTS_DIR = 'checkpoints';

export type PointerName = 'latest' | 'best';
export const POINTER_NAMES: readonly PointerName[] = ['latest', 'best'];

/**
 * A checkpoint directory's name: `ckpt-` and the iteration, zero-padded to 9 digits (more
 * past a billion). Nothing else is a checkpoint, so a pointer can never name `..`, a path,
 * or a temp folder.
 */
const CHECKPOINT_NAME = /^ckpt-\d{9,15}$/;

export function checkpointName(iteration: number): string {
  if (!Number.isSafeInteger(iteration) || iteration < 0) {
    throw new RangeError(
      `checkpointName: iteration must be a non-negative integer, got ${iteration}`,
    );
  }
  return `ckpt-${String(iteration).padStart(9, '0')}`;
}

export function isCheckpointName(name: string): boolean {
  return CHECKPOINT_NAME.test(name);
}

/** Pointer files hold a name and a newline; anything longer is not one. */
export const POINTER_MAX_BYTES = 64;

/** The checkpoint name a pointer file's text holds; `source` names the pointer in errors. */
export function parsePointer(text: string, source: string): string {
  const name = text.trim();
  if (!isCheckpointName(name)) {
    throw new CheckpointError(
      source,
      `does not name a checkpoint directory (expected "ckpt-" and digits, got ${JSON.stringify(name.slice(0, 40))}). ` +
        'A pointer may only name a ckpt-… directory beside it; rewrite it with the name of one, or delete it',
      'pointer',
    );
  }
  return name;
}
