// The errors of the checkpoint format — a file of a checkpoint (or a pointer to one) that is
// missing, too large, of another format version, or breaks one of the format's rules — and
// of a run's storage held by another writer.
import { MinigptError } from '@minigpt/errors';

export class CheckpointError extends MinigptError {
  override name = 'CheckpointError';
  constructor(file: string, problem: string, rule: string, cause?: unknown) {
    super(`${file}: ${problem}`, { file, rule, cause });
  }
}

/**
 * A run's storage is held by another writer (another process, tab or worker, or another
 * run in this one): the message names the holder and what to do. Every RunStorage throws
 * it; directoryStorage's DirectoryLockedError (in '@minigpt/checkpoint/node') extends it.
 */
export class RunLockedError extends MinigptError {
  override name = 'RunLockedError';
}
