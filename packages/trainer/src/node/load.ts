// Loads a checkpoint directory (or an output directory's latest) for sampling.
import { directorySource, resolveCheckpointDir } from '@minigpt/checkpoint/node';
import { loadCheckpointFrom, type LoadedCheckpoint } from '../load.js';

/**
 * `path` may be a checkpoint directory, a `checkpoints/` directory, or a training output
 * directory; the latter two resolve through their `latest` pointer.
 */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  return loadCheckpointFrom(directorySource(await resolveCheckpointDir(path)));
}
