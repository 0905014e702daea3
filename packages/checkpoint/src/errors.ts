// The error of the checkpoint format: a file of a checkpoint (or a pointer to one) that is
// missing, too large, of another format version, or breaks one of the format's rules.
import { MinigptError } from '@minigpt/errors';

export class CheckpointError extends MinigptError {
  override name = 'CheckpointError';
  constructor(file: string, problem: string, rule: string, cause?: unknown) {
    super(`${file}: ${problem}`, { file, rule, cause });
  }
}
