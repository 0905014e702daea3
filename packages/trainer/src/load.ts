// Loads a checkpoint directory (or an output dir's latest) for sampling: model, tokenizer,
// configs and state, each checked with a clear error naming the file.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GPT, validateGPTConfig, type GPTConfig } from '@minigpt/model';
import { tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import { CHECKPOINT_FILES, readPointer, type CheckpointState } from './checkpoint.js';
import { TrainingError } from './trainer.js';

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
  const dir = await resolveCheckpointDir(path);
  const read = async (file: string) => {
    try {
      return await readFile(join(dir, file));
    } catch {
      throw new TrainingError(`${join(dir, file)}: missing — not a complete minigpt checkpoint`);
    }
  };
  const parse = (file: string, bytes: Buffer) => {
    try {
      return JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new TrainingError(`${join(dir, file)}: not valid JSON (damaged checkpoint)`);
    }
  };
  const config = parse(CHECKPOINT_FILES.config, await read(CHECKPOINT_FILES.config));
  const modelConfig = validateGPTConfig(config['model'] as Record<string, unknown>);
  const state = parse(
    CHECKPOINT_FILES.state,
    await read(CHECKPOINT_FILES.state),
  ) as unknown as CheckpointState;
  const tokenizerPath = join(dir, CHECKPOINT_FILES.tokenizer);
  const tokenizer = tokenizerFromJSON(
    parse(CHECKPOINT_FILES.tokenizer, await read(CHECKPOINT_FILES.tokenizer)),
    tokenizerPath,
  );
  if (tokenizer.vocabSize !== modelConfig.vocabSize) {
    throw new TrainingError(
      `${tokenizerPath}: vocab size ${tokenizer.vocabSize} does not match the model's ${modelConfig.vocabSize}`,
    );
  }
  const modelPath = join(dir, CHECKPOINT_FILES.model);
  const model = GPT.fromSafetensors(modelConfig, await read(CHECKPOINT_FILES.model), modelPath);
  return { dir, model, modelConfig, tokenizer, state };
}

async function resolveCheckpointDir(path: string): Promise<string> {
  const isDir = await stat(path)
    .then((s) => s.isDirectory())
    .catch(() => false);
  if (!isDir) throw new TrainingError(`${path}: no such checkpoint directory`);
  const hasModel = await stat(join(path, CHECKPOINT_FILES.model))
    .then(() => true)
    .catch(() => false);
  if (hasModel) return path;
  for (const root of [path, join(path, 'checkpoints')]) {
    const latest = await readPointer(root, 'latest');
    if (latest) return join(root, latest);
  }
  throw new TrainingError(
    `${path}: not a checkpoint (no ${CHECKPOINT_FILES.model}) and no checkpoints/latest inside`,
  );
}
