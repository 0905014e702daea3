// The JSON files of a checkpoint, config.json and state.json: their TypeScript types and the
// zod schemas every reader checks them against. A format version other than this package's
// is refused first, with the hint that fits (upgrade, or re-save with this version).
import { checkSchema, preview } from '@minigpt/errors';
import { validateGPTConfig, type GPTConfig } from '@minigpt/model/config';
import * as z from 'zod';
import { CheckpointError } from './errors.js';
import { CHECKPOINT_FORMAT_VERSION } from './layout.js';

/** state.json: where training stands, so a resumed run continues exactly. */
export interface CheckpointState {
  readonly formatVersion: number;
  /** Optimizer steps completed. */
  readonly iteration: number;
  /** Lowest validation loss seen so far (null before the first evaluation after step 0). */
  readonly bestValLoss: number | null;
  /** State of the generator of batches and dropout (four uint32s, not all zero). */
  readonly random: readonly [number, number, number, number];
  /** The tfjs backend that trained it (informational). */
  readonly backend: string;
  /** ISO 8601 time of saving. */
  readonly savedAt: string;
  /** sha256 of the text the training data was prepared from; resume refuses other data. */
  readonly dataSha256: string;
}

/** config.json: the model's shape (validated as a GPTConfig) and the training settings. */
export interface CheckpointConfig {
  readonly formatVersion: number;
  readonly model: GPTConfig;
  /** The trainer's settings, flat keys to numbers, booleans and strings (informational). */
  readonly train: Readonly<Record<string, number | boolean | string>>;
}

/** More iterations than this would not fit a checkpoint's 15-digit name. */
const MAX_ITERATION = 999_999_999_999_999;
const uint32 = z.int().min(0).max(0xffff_ffff);

const stateSchema = z.strictObject({
  formatVersion: z.literal(CHECKPOINT_FORMAT_VERSION),
  iteration: z.int().min(0).max(MAX_ITERATION),
  bestValLoss: z.number().min(0).max(1e6).nullable(),
  random: z
    .tuple([uint32, uint32, uint32, uint32])
    .refine((state) => state.some((word) => word !== 0), 'an all-zero generator state is invalid'),
  backend: z.string().min(1).max(64),
  savedAt: z.iso.datetime({ offset: true }),
  dataSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
});

const configSchema = z.strictObject({
  formatVersion: z.literal(CHECKPOINT_FORMAT_VERSION),
  // Checked by the model's own validator below: one definition of a valid GPT config.
  model: z.record(z.string().max(64), z.unknown()),
  train: z
    .record(z.string().max(64), z.union([z.number(), z.boolean(), z.string().max(256)]))
    .refine((train) => Object.keys(train).length <= 256, 'at most 256 settings'),
});

/** Checks a parsed state.json; `source` names the file in errors. */
export function parseCheckpointState(json: unknown, source: string): CheckpointState {
  checkVersion(json, source);
  const state = checkSchema(stateSchema, json, (problem) => invalid(source, problem));
  return { ...state, random: [...state.random] as [number, number, number, number] };
}

/** Checks a parsed config.json; `source` names the file in errors. */
export function parseCheckpointConfig(json: unknown, source: string): CheckpointConfig {
  checkVersion(json, source);
  const config = checkSchema(configSchema, json, (problem) => invalid(source, problem));
  let model: GPTConfig;
  try {
    model = validateGPTConfig(config.model);
  } catch (error) {
    throw new CheckpointError(source, `"model": ${(error as Error).message}`, 'schema', error);
  }
  return { formatVersion: config.formatVersion, model, train: config.train };
}

function checkVersion(json: unknown, source: string): void {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CheckpointError(source, 'is not a JSON object', 'schema');
  }
  const version = (json as Record<string, unknown>)['formatVersion'];
  if (version === CHECKPOINT_FORMAT_VERSION) return;
  const newer = typeof version === 'number' && version > CHECKPOINT_FORMAT_VERSION;
  throw new CheckpointError(
    source,
    `checkpoint format version ${preview(version)}, this minigpt reads version ${CHECKPOINT_FORMAT_VERSION}. ` +
      (newer
        ? 'Upgrade minigpt (@minigpt/checkpoint) to read it'
        : 'It is not a minigpt checkpoint, or it is damaged'),
    'format-version',
  );
}

function invalid(source: string, problem: string): CheckpointError {
  return new CheckpointError(source, `breaks the checkpoint schema: ${problem}`, 'schema');
}
