// Loads an export directory (minigpt.json, model.onnx, vocab.json) with onnxruntime-node and
// exposes it as a DecoderSession for @minigpt/runtime. CPU always; CUDA when onnxruntime-node
// was installed with its CUDA files, else it says so and runs on CPU. It reads nothing outside
// the directory, and sizes nothing from manifest numbers the graph contradicts.
import { MinigptError } from '@minigpt/errors';
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import {
  cacheNames,
  checkGraphAgainstManifest,
  graphSignatureOf,
  generate,
  parseManifest,
  type DecoderSession,
  type ExportManifest,
  type Generation,
  type GenerationOptions,
} from '@minigpt/runtime';
import { tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import * as ort from 'onnxruntime-node';

export type Device = 'cpu' | 'cuda';

export interface LoadModelOptions {
  /** Default 'cpu'. 'cuda' falls back to CPU (with `onWarning`) when CUDA cannot start. */
  readonly device?: Device;
  readonly onWarning?: (message: string) => void;
  /** Threads for one operator on CPU (default: onnxruntime's, one per core). */
  readonly intraOpThreads?: number;
  /**
   * Creates the onnxruntime session (default `ort.InferenceSession.create`). Tests inject one
   * to model a machine with or without an execution provider, whatever this machine has.
   */
  readonly createSession?: (
    path: string,
    options: ort.InferenceSession.SessionOptions,
  ) => Promise<ort.InferenceSession>;
}

/** A manifest is ~1 kB; a bigger file is not read into memory to find that out. */
const MANIFEST_MAX_BYTES = 1 << 20;
/** A 4M-entry byte-level BPE is ~64 MB of JSON; the same bound as a checkpoint's tokenizer. */
const VOCAB_MAX_BYTES = 128 << 20;

export class RunnerError extends MinigptError {
  override name = 'RunnerError';
}

/** Preallocated cache buffers of one generation: two sides per cache input. */
interface CacheBuffers {
  readonly sides: Array<[Float32Array, Float32Array]>;
  /** Serial of the newest state using these buffers. */
  latest: number;
}

/** The cache a decode step carries: how many positions, in which side of which buffers. */
interface CacheState {
  readonly length: number;
  readonly side: 0 | 1;
  readonly serial: number;
  readonly buffers: CacheBuffers;
}

export interface LoadedModel {
  readonly manifest: ExportManifest;
  readonly tokenizer: Tokenizer;
  readonly session: DecoderSession<CacheState>;
  /** The device the session really runs on. */
  readonly device: Device;
  generate(prompt: string, options?: GenerationOptions): Generation;
  dispose(): Promise<void>;
}

export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const root = resolve(dir);
  const manifestPath = join(root, 'minigpt.json');
  const realRoot = await realpath(root).catch(() => {
    throw new RunnerError(
      `${manifestPath}: not found — is this an export directory (written by \`minigpt export\`)?`,
      { file: manifestPath, rule: 'missing' },
    );
  });
  const manifestFile = await fileInside(realRoot, root, 'minigpt.json');
  const manifest = parseManifest(
    await readJson(manifestFile, MANIFEST_MAX_BYTES, 'a minigpt.json is about a kilobyte'),
    manifestPath,
  );
  // parseManifest allows plain file names only; fileInside also refuses a symlink out.
  const vocabFile = await fileInside(realRoot, root, manifest.files.vocab);
  const tokenizer = tokenizerFromJSON(
    await readJson(vocabFile, VOCAB_MAX_BYTES, 'a tokenizer file is at most tens of megabytes'),
    vocabFile.path,
  );
  if (tokenizer.vocabSize !== manifest.model.vocabSize) {
    throw new RunnerError(
      `${vocabFile.path}: the tokenizer has ${tokenizer.vocabSize} tokens but the model (minigpt.json) has ${manifest.model.vocabSize}: they are not from the same export`,
      { file: vocabFile.path, rule: 'vocab-size' },
    );
  }
  const modelFile = await fileInside(realRoot, root, manifest.files.model);
  const modelPath = modelFile.path;
  if (modelFile.real === undefined)
    throw new RunnerError(
      `${modelPath}: not found. Export the checkpoint again with \`minigpt export\``,
      { file: modelPath, rule: 'missing' },
    );
  const { real: modelReal, size } = modelFile;

  const requested = options.device ?? 'cpu';
  let device: Device = requested;
  let ortSession: ort.InferenceSession;
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
  };
  const create = options.createSession ?? ((path, opts) => ort.InferenceSession.create(path, opts));
  try {
    ortSession = await create(modelReal, { ...sessionOptions, executionProviders: [requested] });
  } catch (error) {
    if (requested === 'cuda') {
      options.onWarning?.(
        `CUDA is not available (${firstLine(error)}); running on CPU. For CUDA, install onnxruntime-node with its CUDA files: npm i onnxruntime-node --onnxruntime-node-install=cuda12`,
      );
      device = 'cpu';
      try {
        ortSession = await create(modelReal, { ...sessionOptions, executionProviders: ['cpu'] });
      } catch (cpuError) {
        throw damaged(modelPath, -1, cpuError);
      }
    } else {
      throw damaged(modelPath, size, error);
    }
  }
  // Before any cache buffer exists: the buffers are sized from the manifest's numbers.
  try {
    checkGraphAgainstManifest(
      manifest,
      graphSignatureOf(ortSession),
      modelPath,
      (message) => new RunnerError(message, { file: modelPath, rule: 'graph' }),
    );
  } catch (error) {
    await ortSession.release();
    throw error;
  }
  const session = createDecoderSession(ortSession, manifest);
  return {
    manifest,
    tokenizer,
    session,
    device,
    generate: (prompt, generationOptions) =>
      generate(session, tokenizer, prompt, generationOptions),
    dispose: () => ortSession.release(),
  };
}

/** onnxruntime-node's view of the graph's inputs and outputs, as the runtime's check reads it. */
/** A file of the export directory: the path to show, and where it really is (if it exists). */
interface DirectoryFile {
  readonly path: string;
  readonly real?: string;
  readonly size: number;
}

/**
 * `name` in the export directory, resolved through symlinks, refused unless it stays inside
 * the directory and is a regular file (a FIFO or device would block the read). `name` is
 * one the manifest allowed (a plain file name), so only a symlink can lead out. A missing
 * file has no `real`: the caller says what is missing.
 */
async function fileInside(realRoot: string, root: string, name: string): Promise<DirectoryFile> {
  const path = join(root, name);
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    return { path, size: -1 };
  }
  const prefix = realRoot.endsWith(sep) ? realRoot : realRoot + sep;
  if (!real.startsWith(prefix)) {
    throw new RunnerError(
      `${path}: leads outside the export directory (to ${real}) — a symlink out? Nothing outside ${root} is read because its files say so. Copy the file into the directory in place of the link`,
      { file: path, rule: 'outside-directory' },
    );
  }
  const info = await stat(real);
  if (!info.isFile()) {
    throw new RunnerError(
      `${path}: not a regular file (${info.isDirectory() ? 'a directory' : 'a device, FIFO or socket'}). Export the checkpoint again with \`minigpt export\``,
      { file: path, rule: 'not-a-file' },
    );
  }
  return { path, real, size: info.size };
}

function damaged(modelPath: string, size: number, error: unknown): RunnerError {
  return new RunnerError(
    `${modelPath}: onnxruntime cannot load it${size >= 0 ? ` (${size} bytes)` : ''} — truncated or damaged? (${firstLine(error)}). Export the checkpoint again with \`minigpt export\``,
    { file: modelPath, rule: 'damaged', cause: error },
  );
}

/**
 * Each generation's cache lives in two preallocated buffers per cache input (ping-pong): a
 * step reads the past from one side and onnxruntime writes the present straight into the
 * other, so no cache-sized arrays are allocated or copied out per token (that took ~15 % of
 * a decode step). Buffers belong to one chain of states and return to a pool on release, so
 * concurrent generations never share them.
 */
function createDecoderSession(
  session: ort.InferenceSession,
  manifest: ExportManifest,
): DecoderSession<CacheState> {
  const { nHead, nEmbd, vocabSize, blockSize } = manifest.model;
  const headSize = nEmbd / nHead;
  const slot = nHead * blockSize * headSize; // floats in one (1, nh, blockSize, hs) cache
  const names = cacheNames(manifest);
  const pool: CacheBuffers[] = [];
  const newBuffers = (): CacheBuffers => ({
    sides: names.map(
      () => [new Float32Array(slot), new Float32Array(slot)] as [Float32Array, Float32Array],
    ),
    latest: 0,
  });
  return {
    blockSize,
    vocabSize,
    async forward(ids, state) {
      const buffers = state?.buffers ?? pool.pop() ?? newBuffers();
      if (state && state.serial !== buffers.latest) {
        throw new Error('DecoderSession: only the newest state of a generation can be continued');
      }
      const past = state?.length ?? 0;
      const total = past + ids.length;
      if (total > blockSize)
        throw new RangeError(`a context of ${total} tokens exceeds blockSize ${blockSize}`);
      const readSide = state?.side ?? 0;
      const writeSide = readSide === 0 ? 1 : 0;
      const feeds: Record<string, ort.Tensor> = {
        [manifest.inputs.inputIds]: new ort.Tensor(
          'int64',
          BigInt64Array.from(ids, (id) => BigInt(id)),
          [1, ids.length],
        ), // (1, T)
      };
      const fetches: Record<string, ort.Tensor | null> = { [manifest.outputs.logits]: null };
      names.forEach(({ input, output }, index) => {
        const sides = buffers.sides[index]!;
        feeds[input] = new ort.Tensor(
          'float32',
          sides[readSide].subarray(0, nHead * past * headSize),
          [1, nHead, past, headSize],
        ); // (1, nh, P, hs)
        fetches[output] = new ort.Tensor(
          'float32',
          sides[writeSide].subarray(0, nHead * total * headSize),
          [1, nHead, total, headSize],
        ); // (1, nh, P+T, hs)
      });
      const results = await session.run(feeds, fetches);
      const logits = results[manifest.outputs.logits]!.data as Float32Array; // (1, T, V)
      buffers.latest++;
      return {
        logits: logits.slice((ids.length - 1) * vocabSize),
        state: { length: total, side: writeSide, serial: buffers.latest, buffers },
      };
    },
    release(state) {
      // Older states of the chain share its buffers: only the newest one gives them back.
      if (state.serial === state.buffers.latest && pool.length < 4) {
        state.buffers.latest++;
        pool.push(state.buffers);
      }
    },
  };
}

/** Parses a JSON file of the export, refusing one over `maxBytes` before reading it. */
async function readJson(file: DirectoryFile, maxBytes: number, expected: string): Promise<unknown> {
  if (file.real === undefined) {
    throw new RunnerError(
      `${file.path}: not found — is this an export directory (written by \`minigpt export\`)?`,
      { file: file.path, rule: 'missing' },
    );
  }
  if (file.size > maxBytes) {
    throw new RunnerError(
      `${file.path}: ${file.size} bytes, but ${expected}: over ${maxBytes} bytes it is not one. Export the checkpoint again with \`minigpt export\``,
      { file: file.path, rule: 'too-large' },
    );
  }
  let text: string;
  try {
    text = await readFile(file.real, 'utf8');
  } catch (error) {
    throw new RunnerError(`${file.path}: cannot be read (${firstLine(error)})`, {
      file: file.path,
      rule: 'unreadable',
      cause: error,
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new RunnerError(`${file.path}: not valid JSON (damaged?)`, {
      file: file.path,
      rule: 'json',
    });
  }
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error)
    .split('\n')[0]!
    .slice(0, 300);
}
