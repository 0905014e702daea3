// The CLI's own typed error, in a module of its own so that any module can throw it (errors.ts,
// which words other packages' errors, imports the data-directory naming of datasets.ts).
import { MinigptError } from '@minigpt/errors';

/** A problem with the command line or the environment that the user can fix. */
export class CliError extends MinigptError {
  override name = 'CliError';
}
