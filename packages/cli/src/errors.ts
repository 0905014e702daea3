// How the CLI reports failures: errors the user can fix (every package's typed errors, and
// file-system failures such as a full disk) print one clear line; bugs print their stack.
import { MinigptError, describeFileSystemError, isMinigptError } from '@minigpt/errors';

/** A problem with the command line or the environment that the user can fix. */
export class CliError extends MinigptError {
  override name = 'CliError';
}

/** The one line to print for an error the user can fix; undefined for a bug. */
export function userErrorMessage(error: unknown): string | undefined {
  if (isMinigptError(error)) return error.message;
  return describeFileSystemError(error)?.message;
}
