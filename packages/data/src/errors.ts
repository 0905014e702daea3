// The one error type of @minigpt/data: it names the file at fault and says what to do.
import { MinigptError } from '@minigpt/errors';

export class DataError extends MinigptError {
  override name = 'DataError';
  constructor(
    /** The file or directory the problem is about. */
    file: string,
    problem: string,
    /** What the user can do about it. */
    readonly hint?: string,
  ) {
    super(`${file}: ${problem}${hint ? `. ${hint}` : ''}`, { file });
  }
  /** The file or directory the problem is about. */
  declare readonly file: string;
}
