// Loads an export directory (minigpt.json, model.onnx, vocab.json) with onnxruntime-node and
// exposes it as a DecoderSession for @minigpt/runtime. CPU always; CUDA when onnxruntime-node
// was installed with its CUDA files, else it says so and runs on CPU.
import { MinigptError } from '@minigpt/errors';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  cacheNames,
  generate,
  layerName,
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
}

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
  const manifest = parseManifest(await readJson(manifestPath), manifestPath);
  const vocabPath = join(root, manifest.files.vocab);
  const tokenizer = tokenizerFromJSON(await readJson(vocabPath), vocabPath);
  if (tokenizer.vocabSize !== manifest.model.vocabSize) {
    throw new RunnerError(
      `${vocabPath}: the tokenizer has ${tokenizer.vocabSize} tokens but the model (minigpt.json) has ${manifest.model.vocabSize}: they are not from the same export`,
    );
  }
  const modelPath = join(root, manifest.files.model);
  const size = await stat(modelPath)
    .then((s) => s.size)
    .catch(() => -1);
  if (size < 0)
    throw new RunnerError(
      `${modelPath}: not found. Export the checkpoint again with \`minigpt export\``,
    );

  const requested = options.device ?? 'cpu';
  let device: Device = requested;
  let ortSession: ort.InferenceSession;
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
  };
  try {
    ortSession = await ort.InferenceSession.create(modelPath, {
      ...sessionOptions,
      executionProviders: [requested],
    });
  } catch (error) {
    if (requested === 'cuda') {
      options.onWarning?.(
        `CUDA is not available (${firstLine(error)}); running on CPU. For CUDA, install onnxruntime-node with its CUDA files: npm i onnxruntime-node --onnxruntime-node-install=cuda12`,
      );
      device = 'cpu';
      ortSession = await createOrExplain(modelPath, sessionOptions);
    } else {
      throw damaged(modelPath, size, error);
    }
  }
  const expected = [
    manifest.inputs.inputIds,
    layerName(manifest.inputs.pastKey, 0),
    manifest.outputs.logits,
  ];
  const missing = expected.filter(
    (n) => !ortSession.inputNames.includes(n) && !ortSession.outputNames.includes(n),
  );
  if (missing.length > 0) {
    throw new RunnerError(
      `${modelPath}: the graph lacks ${missing.join(', ')} that minigpt.json names: model.onnx and minigpt.json are not from the same export`,
    );
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

async function createOrExplain(
  modelPath: string,
  sessionOptions: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(modelPath, {
      ...sessionOptions,
      executionProviders: ['cpu'],
    });
  } catch (error) {
    throw damaged(modelPath, -1, error);
  }
}

function damaged(modelPath: string, size: number, error: unknown): RunnerError {
  return new RunnerError(
    `${modelPath}: onnxruntime cannot load it${size >= 0 ? ` (${size} bytes)` : ''} — truncated or damaged? (${firstLine(error)}). Export the checkpoint again with \`minigpt export\``,
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

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new RunnerError(
      `${path}: not found — is this an export directory (written by \`minigpt export\`)?`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new RunnerError(`${path}: not valid JSON (damaged?)`);
  }
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error)
    .split('\n')[0]!
    .slice(0, 300);
}
