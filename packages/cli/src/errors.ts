// How the CLI reports failures: errors the user can fix print one clear line, bugs print
// their stack.
import { DataError } from '@minigpt/data';
import { ExportError } from '@minigpt/export-onnx';
import { RunnerError } from '@minigpt/runner-node';
import { GenerationError, ManifestError } from '@minigpt/runtime';
import { ConfigError, ModelError } from '@minigpt/model';
import { TokenizerError } from '@minigpt/tokenizer';
import { BackendError, TrainConfigError, TrainingError } from '@minigpt/trainer';

/** A problem with the command line or the environment that the user can fix. */
export class CliError extends Error {
  override name = 'CliError';
}

export function isUserError(error: unknown): error is Error {
  return (
    error instanceof CliError ||
    error instanceof DataError ||
    error instanceof TokenizerError ||
    error instanceof ConfigError ||
    error instanceof ModelError ||
    error instanceof BackendError ||
    error instanceof ExportError ||
    error instanceof RunnerError ||
    error instanceof GenerationError ||
    error instanceof ManifestError ||
    error instanceof TrainConfigError ||
    error instanceof TrainingError
  );
}
