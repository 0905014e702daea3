// A checkpoint as bytes: the five files written from a model's weights, optimizer moments,
// configs, state and tokenizer, and read back with every file checked against the others
// before anything large is allocated. Storage is the caller's (a directory, OPFS, memory):
// files come from a CheckpointSource.
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '@minigpt/model/safetensors';
import { checkWeights, weightShapes, type WeightData } from '@minigpt/model/weights';
import { tokenizerFromJSON, type Tokenizer, type TokenizerJSON } from '@minigpt/tokenizer';
import { preview } from '@minigpt/errors';
import { CheckpointError } from './errors.js';
import { CHECKPOINT_FILES, CHECKPOINT_FORMAT_VERSION, type CheckpointFile } from './layout.js';
import {
  parseCheckpointConfig,
  parseCheckpointState,
  type CheckpointConfig,
  type CheckpointState,
} from './schema.js';

/** Adam's moment estimates for every weight, and the steps taken. */
export interface OptimizerMoments {
  readonly step: number;
  readonly moments: ReadonlyMap<string, { readonly m: Float32Array; readonly v: Float32Array }>;
}

/** Everything a checkpoint holds, in memory. */
export interface CheckpointContents {
  readonly config: Omit<CheckpointConfig, 'formatVersion'>;
  readonly state: Omit<CheckpointState, 'formatVersion'>;
  readonly tokenizer: TokenizerJSON;
  /** GPT-2 names → float32 values, as `GPT.weightData()` gives them. */
  readonly weights: ReadonlyMap<string, WeightData>;
  readonly optimizer: OptimizerMoments;
}

/** A checkpoint read back and checked; `optimizer` only when it was asked for. */
export interface DecodedCheckpoint {
  readonly source: string;
  readonly config: CheckpointConfig;
  readonly state: CheckpointState;
  readonly tokenizer: Tokenizer;
  readonly tokenizerJson: TokenizerJSON;
  readonly weights: ReadonlyMap<string, WeightData>;
  readonly optimizer?: OptimizerMoments;
}

/** Where a checkpoint's files are read from. */
export interface CheckpointSource {
  /** Names the checkpoint in errors: a directory path, an OPFS path, a file name. */
  readonly name: string;
  /** `file`'s name as errors should show it (e.g. its path). */
  pathOf(file: CheckpointFile): string;
  /**
   * The bytes of `file`. Must refuse (CheckpointError, rule 'size') a file larger than
   * `maxBytes` before reading it, and a missing one (rule 'missing').
   */
  read(file: CheckpointFile, maxBytes: number): Promise<Uint8Array>;
}

const MiB = 1024 * 1024;
/** config.json and state.json are a few hundred bytes; a megabyte is plenty. */
export const JSON_FILE_LIMIT = MiB;
/** Tokenizer JSON: a 4M-entry byte-level BPE is ~64 MB of merges. */
export const TOKENIZER_FILE_LIMIT = 128 * MiB;

/**
 * The most bytes each safetensors file of a checkpoint of `model` can hold: the data the
 * config implies (exactly; the reader checks coverage) plus room for a header.
 */
export function checkpointFileLimits(model: CheckpointConfig['model']): {
  model: number;
  optimizer: number;
} {
  const shapes = weightShapes(model);
  let values = 0;
  for (const shape of shapes.values()) values += shape.reduce((a, b) => a * b, 1);
  // A header entry is ~100 bytes of JSON; 1 MiB on top covers padding and metadata.
  const header = (count: number) => 8 + MiB + 256 * count;
  return {
    model: header(shapes.size) + 4 * values,
    optimizer: header(2 * shapes.size) + 8 * values,
  };
}

const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(`${JSON.stringify(value, null, 2)}\n`);

/**
 * The five files of a checkpoint. The state and config are checked with the readers' own
 * schemas first: a writer never writes what its reader would refuse.
 */
export function encodeCheckpoint(contents: CheckpointContents): Map<CheckpointFile, Uint8Array> {
  const config = { formatVersion: CHECKPOINT_FORMAT_VERSION, ...contents.config };
  const state = { formatVersion: CHECKPOINT_FORMAT_VERSION, ...contents.state };
  parseCheckpointConfig(config, CHECKPOINT_FILES.config);
  parseCheckpointState(state, CHECKPOINT_FILES.state);
  if (contents.optimizer.step !== state.iteration) {
    throw new RangeError(
      `encodeCheckpoint: optimizer step ${contents.optimizer.step} ≠ iteration ${state.iteration}`,
    );
  }
  const weights = [...contents.weights].map(
    ([name, { shape, data }]) => [name, { dtype: 'F32', shape, data }] as const,
  );
  const moments = [...contents.optimizer.moments].flatMap(([name, { m, v }]) => {
    const shape = contents.weights.get(name)?.shape;
    if (!shape) throw new RangeError(`encodeCheckpoint: moments for unknown weight ${name}`);
    return [
      [`m.${name}`, { dtype: 'F32', shape, data: m }] as const,
      [`v.${name}`, { dtype: 'F32', shape, data: v }] as const,
    ];
  });
  return new Map<CheckpointFile, Uint8Array>([
    [CHECKPOINT_FILES.model, encodeSafetensors(weights, { format: 'pt', producer: 'minigpt' })],
    [
      CHECKPOINT_FILES.optimizer,
      encodeSafetensors(moments, { step: String(contents.optimizer.step) }),
    ],
    [CHECKPOINT_FILES.config, json(config)],
    [CHECKPOINT_FILES.tokenizer, encoder.encode(`${JSON.stringify(contents.tokenizer)}\n`)],
    [CHECKPOINT_FILES.state, json(state)],
  ]);
}

export interface ReadCheckpointOptions {
  /** Read and check optimizer.safetensors too (resume needs it; sampling and export do not). */
  readonly optimizer?: boolean;
}

/**
 * Reads a checkpoint from `source` and checks every file: the JSON schemas, the tokenizer,
 * the weights against the config (names, shapes, float32, finite), the optimizer moments
 * against the weights and the state. Sizes are bounded by the config before reading.
 */
export async function readCheckpoint(
  source: CheckpointSource,
  options: ReadCheckpointOptions = {},
): Promise<DecodedCheckpoint> {
  const config = parseCheckpointConfig(
    parseJson(await source.read(CHECKPOINT_FILES.config, JSON_FILE_LIMIT), source, 'config'),
    source.pathOf(CHECKPOINT_FILES.config),
  );
  const state = parseCheckpointState(
    parseJson(await source.read(CHECKPOINT_FILES.state, JSON_FILE_LIMIT), source, 'state'),
    source.pathOf(CHECKPOINT_FILES.state),
  );
  const tokenizerPath = source.pathOf(CHECKPOINT_FILES.tokenizer);
  const tokenizerJson = parseJson(
    await source.read(CHECKPOINT_FILES.tokenizer, TOKENIZER_FILE_LIMIT),
    source,
    'tokenizer',
  ) as TokenizerJSON;
  const tokenizer = tokenizerFromJSON(tokenizerJson, tokenizerPath);
  if (tokenizer.vocabSize !== config.model.vocabSize) {
    throw new CheckpointError(
      tokenizerPath,
      `the tokenizer has ${tokenizer.vocabSize} tokens, the model (config.json) ${config.model.vocabSize}: the files are not from one checkpoint`,
      'vocab-size',
    );
  }
  const limits = checkpointFileLimits(config.model);
  const modelPath = source.pathOf(CHECKPOINT_FILES.model);
  const weights = checkWeights(
    config.model,
    decodeSafetensors(await source.read(CHECKPOINT_FILES.model, limits.model), modelPath).tensors,
    modelPath,
  );
  const decoded = { source: source.name, config, state, tokenizer, tokenizerJson, weights };
  if (!options.optimizer) return decoded;
  const optimizerPath = source.pathOf(CHECKPOINT_FILES.optimizer);
  const file = decodeSafetensors(
    await source.read(CHECKPOINT_FILES.optimizer, limits.optimizer),
    optimizerPath,
  );
  return { ...decoded, optimizer: checkMoments(file, weights, state, optimizerPath) };
}

function parseJson(
  bytes: Uint8Array,
  source: CheckpointSource,
  which: keyof typeof CHECKPOINT_FILES,
) {
  const path = source.pathOf(CHECKPOINT_FILES[which]);
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
  } catch (error) {
    throw new CheckpointError(
      path,
      `is not valid UTF-8 JSON (${(error as Error).message.split('\n')[0]!.slice(0, 120)}): the checkpoint is damaged`,
      'json',
      error,
    );
  }
}

/** optimizer.safetensors: m.<weight> and v.<weight> for every weight, nothing else. */
function checkMoments(
  file: { tensors: ReadonlyMap<string, SafeTensor>; metadata: Record<string, string> },
  weights: ReadonlyMap<string, WeightData>,
  state: CheckpointState,
  path: string,
): OptimizerMoments {
  const fail = (problem: string, rule: string): never => {
    throw new CheckpointError(path, problem, rule);
  };
  const stepText = file.metadata['step'];
  if (stepText === undefined || !/^\d{1,15}$/.test(stepText)) {
    fail(`metadata "step" must be a non-negative integer, got ${preview(stepText)}`, 'step');
  }
  const step = Number(stepText);
  if (step !== state.iteration) {
    fail(
      `holds the moments of step ${step}, but state.json is at iteration ${state.iteration}: the files are not from one checkpoint`,
      'step',
    );
  }
  if (file.tensors.size !== 2 * weights.size) {
    const expected = new Set([...weights.keys()].flatMap((name) => [`m.${name}`, `v.${name}`]));
    const extra = [...file.tensors.keys()].find((name) => !expected.has(name));
    if (extra !== undefined) fail(`has a tensor "${extra}" that belongs to no weight`, 'tensors');
  }
  const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
  for (const [name, weight] of weights) {
    const pair = (['m', 'v'] as const).map((kind) => {
      const tensor = file.tensors.get(`${kind}.${name}`);
      if (!tensor) return fail(`the moment "${kind}.${name}" is missing`, 'tensors');
      if (tensor.dtype !== 'F32') {
        return fail(`"${kind}.${name}" has dtype ${tensor.dtype}, moments are F32`, 'dtype');
      }
      if (tensor.shape.join(',') !== weight.shape.join(',')) {
        return fail(
          `"${kind}.${name}" has shape [${tensor.shape.join(', ')}], its weight [${weight.shape.join(', ')}]`,
          'shape',
        );
      }
      const data = tensor.data as Float32Array;
      for (let i = 0; i < data.length; i++) {
        const value = data[i]!;
        // m is any finite number; v, a mean of squares, is finite and never negative.
        if (!Number.isFinite(value) || (kind === 'v' && value < 0)) {
          fail(
            `"${kind}.${name}" holds ${value} at index ${i}; moments are finite${kind === 'v' ? ' and ≥ 0' : ''}`,
            'values',
          );
        }
      }
      return data;
    });
    moments.set(name, { m: pair[0]!, v: pair[1]! });
  }
  return { step, moments };
}

/** A checkpoint held in memory (tests, fuzzing, a browser's dropped files). */
export function memorySource(
  name: string,
  files: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>,
): CheckpointSource {
  // Own entries only: a file named "constructor" must not find Object's.
  const get = (file: string) =>
    files instanceof Map
      ? files.get(file)
      : Object.hasOwn(files, file)
        ? (files as Record<string, Uint8Array>)[file]
        : undefined;
  return {
    name,
    pathOf: (file) => `${name}/${file}`,
    async read(file, maxBytes) {
      const bytes = get(file);
      if (bytes === undefined) {
        throw new CheckpointError(
          `${name}/${file}`,
          'missing — not a complete checkpoint',
          'missing',
        );
      }
      if (bytes.length > maxBytes) {
        throw new CheckpointError(
          `${name}/${file}`,
          `is ${bytes.length} bytes, more than this checkpoint's files can hold (${maxBytes})`,
          'size',
        );
      }
      return bytes;
    },
  };
}
