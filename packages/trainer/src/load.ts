// Loads a checkpoint (a checkpoint directory, or an output dir's latest) for sampling: the
// model on the active tfjs backend, its tokenizer, configs and state. Every file is checked
// by @minigpt/checkpoint's reader first; the optimizer moments are not read.
import { join } from 'node:path';
import { CHECKPOINT_FILES, type CheckpointState } from '@minigpt/checkpoint';
import { readCheckpointDir } from '@minigpt/checkpoint/node';
import { GPT, type GPTConfig } from '@minigpt/model';
import type { Tokenizer } from '@minigpt/tokenizer';

export interface LoadedCheckpoint {
  readonly dir: string;
  readonly model: GPT;
  readonly modelConfig: GPTConfig;
  readonly tokenizer: Tokenizer;
  readonly state: CheckpointState;
}

/**
 * `path` may be a checkpoint directory, a `checkpoints/` directory, or a training output
 * directory; the latter two resolve through their `latest` pointer.
 */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const saved = await readCheckpointDir(path);
  const modelConfig = saved.config.model;
  const model = GPT.fromWeights(
    modelConfig,
    saved.weights,
    join(saved.source, CHECKPOINT_FILES.model),
  );
  return {
    dir: saved.source,
    model,
    modelConfig,
    tokenizer: saved.tokenizer,
    state: saved.state,
  };
}
