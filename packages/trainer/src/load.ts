// Loads a checkpoint for sampling from any CheckpointSource (files in memory, OPFS, a
// directory through the Node entry's loadCheckpoint): the model on the active tfjs backend,
// its tokenizer, configs and state. Every file is checked by @minigpt/checkpoint's reader
// first; the optimizer moments are not read.
import {
  CHECKPOINT_FILES,
  readCheckpoint,
  type CheckpointSource,
  type CheckpointState,
} from '@minigpt/checkpoint';
import { GPT, type GPTConfig } from '@minigpt/model';
import type { Tokenizer } from '@minigpt/tokenizer';

export interface LoadedCheckpoint {
  /** Where it was read from, as messages show it. */
  readonly dir: string;
  readonly model: GPT;
  readonly modelConfig: GPTConfig;
  readonly tokenizer: Tokenizer;
  readonly state: CheckpointState;
}

export async function loadCheckpointFrom(source: CheckpointSource): Promise<LoadedCheckpoint> {
  const saved = await readCheckpoint(source);
  const modelConfig = saved.config.model;
  const model = GPT.fromWeights(modelConfig, saved.weights, source.pathOf(CHECKPOINT_FILES.model));
  return {
    dir: saved.source,
    model,
    modelConfig,
    tokenizer: saved.tokenizer,
    state: saved.state,
  };
}
