// How the CLI reports failures: errors the user can fix (every package's typed errors, and
// file-system failures such as a full disk) print one clear line; bugs print their stack.
// The libraries word their fixes for their API (`force: true`); where a fix is a known one,
// the CLI words it with its own commands and flags (`--force`).
import { dirname } from 'node:path';
import { DataError, type DataRemedy } from '@minigpt/data';
import { describeFileSystemError, isMinigptError } from '@minigpt/errors';
import { prepareArgsFor } from './datasets.js';
import { commandLine } from './invocation.js';

export { CliError } from './cli-error.js';

/** The one line to print for an error the user can fix; undefined for a bug. */
export function userErrorMessage(error: unknown): string | undefined {
  if (error instanceof DataError && error.remedy !== undefined)
    return `${error.file}: ${error.problem}. ${cliDataFix(error.remedy, error.file)}`;
  if (isMinigptError(error)) return error.message;
  return describeFileSystemError(error)?.message;
}

/** A data fix in CLI terms. `file` is the input, the --out directory, or a file in it. */
function cliDataFix(remedy: DataRemedy, file: string): string {
  switch (remedy) {
    case 'check-input':
      return 'Check the path (or use --dataset for a built-in corpus)';
    case 'choose-output':
      return 'Choose another --out directory';
    case 'replace-output':
      return 'Pass --force to replace it, or choose another --out directory';
    case 'prepare':
      return `Create it with \`${commandLine(['prepare', ...prepareArgsFor(dirname(file))])}\``;
    case 'prepare-again':
      return `Prepare it again with \`${commandLine(['prepare', ...prepareArgsFor(dirname(file)), '--force'])}\``;
  }
}
