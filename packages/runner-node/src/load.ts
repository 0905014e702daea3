// Loads an export directory (minigpt.json, onnx/model.onnx, tokenizer.minigpt.json) with
// onnxruntime-node and exposes it as a DecoderSession for @minigpt/runtime: a thin adapter, as
// the cache bookkeeping is the runtime's (createOnnxDecoder). CPU always; CUDA when
// onnxruntime-node was installed with its CUDA files, else it says so and runs on CPU. It
// reads nothing outside the directory, and sizes nothing from manifest numbers the graph
// contradicts.
import { MinigptError } from '@minigpt/errors';
import { readFile, realpath, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve, sep } from 'node:path';
import {
  modelFileFor,
  tokenizerMismatch,
  type ModelDtype,
  cacheRowsOutputs,
  checkGraphAgainstManifest,
  createOnnxDecoder,
  createSessionWithCacheRows,
  graphSignatureOf,
  generate,
  generateBatch,
  parseManifest,
  type BatchGeneration,
  type BatchGenerationOptions,
  type DecoderSession,
  type ExportManifest,
  type Generation,
  type GenerationOptions,
  type OnnxCacheState,
  type OrtBinding,
} from '@minigpt/runtime';
import { tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import * as ort from 'onnxruntime-node';
import { physicalCoreCount } from './cores.js';
import { ThreadChoice, type ThreadChoiceCounts, type ThreadLane } from './thread-choice.js';

export type { ModelDtype, ThreadChoiceCounts };

export type Device = 'cpu' | 'cuda';
/** onnxruntime's log levels, most to least verbose. */
export type OrtLogLevel = 'verbose' | 'info' | 'warning' | 'error' | 'fatal';

export interface LoadModelOptions {
  /** Default 'cpu'. 'cuda' falls back to CPU (with `onWarning`) when CUDA cannot start. */
  readonly device?: Device;
  readonly onWarning?: (message: string) => void;
  /** Default 'fp32'. 'q8' loads onnx/model_quantized.onnx (names as transformers.js's dtype). */
  readonly dtype?: ModelDtype;
  /**
   * What onnxruntime itself prints to stderr. Default 'fatal', which in practice is nothing:
   * what it logs as an error reaches the caller anyway, as a thrown error or as `onWarning`
   * (a CUDA library it cannot load). 'warning' is onnxruntime's own default. Its process-wide
   * level (`ort.env.logLevel`) is read once, when the process's first session is created; a
   * level an app set there itself (anything but the default 'warning') is kept unless this
   * option is given.
   */
  readonly logLevel?: OrtLogLevel;
  /**
   * Threads for one operator on CPU. A number fixes the pool's size; 'default' is
   * onnxruntime's pool (a thread per physical core, as onnxruntime counts them). 'adaptive'
   * opens the model twice, with a pool of a thread per core (as the Linux kernel counts them;
   * onnxruntime's pool elsewhere) and with one thread, and runs each decode step on the one
   * that measured faster for its batch size, measuring again every so often and as soon as
   * steps slow down (another process took a core): README, "Threads". The default is
   * 'adaptive' on CPU for a model file up to {@link ADAPTIVE_MAX_MODEL_BYTES} on a machine of
   * 2 or more cores, else 'default'.
   */
  readonly intraOpThreads?: number | 'adaptive' | 'default';
  /**
   * How long onnxruntime's idle intra-op threads spin, waiting for the next operator, before
   * they sleep. Default {@link DEFAULT_SPIN_MICROSECONDS} µs (`session.intra_op.spin_duration_us`):
   * long enough to catch the next operator of a step, short enough that between steps the
   * pool sleeps instead of taking turns with another process's work on a shared core. A
   * number sets another bound (whole microseconds, 1 to {@link MAX_SPIN_MICROSECONDS}); false never spins
   * (`session.intra_op.allow_spinning` '0'); true leaves onnxruntime's own spinning, unbounded
   * by time, which with one core busy ran at half the speed of a single quiet thread. The
   * trade-off, measured, is in the README ("Under load").
   */
  readonly spinning?: boolean | number;
  /**
   * Creates the onnxruntime session (default `ort.InferenceSession.create`). Tests inject one
   * to model a machine with or without an execution provider, whatever this machine has.
   */
  readonly createSession?: (
    model: Uint8Array,
    options: ort.InferenceSession.SessionOptions,
  ) => Promise<ort.InferenceSession>;
}

/**
 * loadModel's default bound on an idle intra-op thread's spin. On a 2-core Zen 3 host
 * (bench/under-load.bench.mjs, 2026-11-30) 25 µs kept the quiet speed of onnxruntime's own
 * spinning, and with the other core busy decoded 1.06–1.41× faster than it: 0.95× of one quiet
 * thread at batch 16, 0.65–0.82× at batch 1, where onnxruntime's own spinning gave 0.57–0.68×.
 */
export const DEFAULT_SPIN_MICROSECONDS = 25;
/** The largest spin bound `spinning` takes, in microseconds (a second). */
export const MAX_SPIN_MICROSECONDS = 1_000_000;

/**
 * The largest model file loadModel opens twice by default for `intraOpThreads: 'adaptive'`:
 * the second session holds its own copy of the weights. GPT-2 small's int8 file (~0.2 GB)
 * is under it, its float32 file (~0.5 GB) over it. The gain is largest for small models,
 * whose steps are too short to share well between threads.
 */
export const ADAPTIVE_MAX_MODEL_BYTES = 256 * 1024 * 1024;

/** The most intra-op threads `intraOpThreads` takes. */
export const MAX_INTRA_OP_THREADS = 1024;

/** loadModel's intraOpThreads, checked: a whole number of threads, 'adaptive' or 'default'. */
function intraOpThreadsOption(
  threads: number | 'adaptive' | 'default' | undefined,
): number | 'adaptive' | 'default' | undefined {
  if (threads === undefined || threads === 'adaptive' || threads === 'default') return threads;
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_INTRA_OP_THREADS)
    throw new RangeError(
      `loadModel: intraOpThreads must be 'adaptive', 'default' or a whole number of threads from 1 to ${MAX_INTRA_OP_THREADS}, not ${String(threads)}`,
    );
  return threads;
}

/** The session options for loadModel's `spinning`. */
function spinningOptions(spinning: boolean | number): ort.InferenceSession.SessionOptions {
  if (spinning === true) return {};
  if (spinning === false) return { extra: { session: { intra_op: { allow_spinning: '0' } } } };
  if (!Number.isInteger(spinning) || spinning < 1 || spinning > MAX_SPIN_MICROSECONDS)
    throw new RangeError(
      `loadModel: spinning must be true, false or whole microseconds from 1 to ${MAX_SPIN_MICROSECONDS}, not ${String(spinning)}`,
    );
  return { extra: { session: { intra_op: { spin_duration_us: String(spinning) } } } };
}

/** Session log severities: 0 verbose … 4 fatal. */
const ORT_LOG_SEVERITY = { verbose: 0, info: 1, warning: 2, error: 3, fatal: 4 } as const;

/** A manifest is ~1 kB; a bigger file is not read into memory to find that out. */
const MANIFEST_MAX_BYTES = 1 << 20;
/** A 4M-entry byte-level BPE is ~64 MB of JSON; the same bound as a checkpoint's tokenizer. */
const VOCAB_MAX_BYTES = 128 << 20;

export class RunnerError extends MinigptError {
  override name = 'RunnerError';
}

export interface LoadedModel {
  readonly manifest: ExportManifest;
  readonly tokenizer: Tokenizer;
  readonly session: DecoderSession<OnnxCacheState>;
  /** The device the session really runs on. */
  readonly device: Device;
  /** The graph loaded. */
  readonly dtype: ModelDtype;
  /**
   * How operators are threaded on CPU: 'adaptive' (two sessions, ThreadChoice), a fixed
   * count (given, or the adaptive pool's when its one-thread twin could not be made), or
   * 'default' (onnxruntime's pool; and on CUDA).
   */
  readonly intraOpThreads: number | 'adaptive' | 'default';
  /** With 'adaptive': the steps run so far on the pool ('wide') and on one thread ('narrow'). */
  threadSteps(): ThreadChoiceCounts | undefined;
  generate(prompt: string, options?: GenerationOptions): Generation;
  /** Several prompts in one batch (left-padded): each row streams, stops and samples on its own. */
  generateBatch(prompts: readonly string[], options?: BatchGenerationOptions): BatchGeneration;
  dispose(): Promise<void>;
}

export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  // A bad option is refused before any file is read.
  const spinning = spinningOptions(options.spinning ?? DEFAULT_SPIN_MICROSECONDS);
  const threads = intraOpThreadsOption(options.intraOpThreads);
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
  // parseManifest allows paths of plain names only ('onnx/model.onnx': no '..', no root);
  // fileInside also refuses a symlink out, of the file or of a folder on its path.
  const vocabFile = await fileInside(realRoot, root, manifest.files.vocab);
  const tokenizer = tokenizerFromJSON(
    await readJson(vocabFile, VOCAB_MAX_BYTES, 'a tokenizer file is at most tens of megabytes'),
    vocabFile.path,
  );
  const mismatch = tokenizerMismatch(tokenizer, manifest);
  if (mismatch) {
    throw new RunnerError(`${vocabFile.path}: ${mismatch}`, {
      file: vocabFile.path,
      rule: 'vocab-size',
    });
  }
  const dtype = options.dtype ?? 'fp32';
  const model = modelFileFor(manifest, dtype);
  if ('missing' in model)
    throw new RunnerError(`${manifestPath}: ${model.missing}`, {
      file: manifestPath,
      rule: 'missing',
    });
  const modelName = model.file;
  const modelFile = await fileInside(realRoot, root, modelName);
  const modelPath = modelFile.path;
  if (modelFile.real === undefined)
    throw new RunnerError(
      `${modelPath}: not found. Export the checkpoint again with \`minigpt export\``,
      { file: modelPath, rule: 'missing' },
    );
  const { real: modelReal, size } = modelFile;

  const requested = options.device ?? 'cpu';
  let device: Device = requested;
  // Adaptive threading: a pool of a thread per core (as the kernel counts cores, where it
  // says; else onnxruntime's own pool) beside a one-thread session. Only on the CPU asked for:
  // a CUDA request that falls back runs on onnxruntime's pool, as before.
  const adaptiveAsked =
    threads === 'adaptive' || (threads === undefined && size <= ADAPTIVE_MAX_MODEL_BYTES);
  // sysfs is read only where the pool it sizes can be made.
  const kernelCores = requested === 'cpu' && adaptiveAsked ? physicalCoreCount() : undefined;
  const poolThreads =
    kernelCores === undefined ? undefined : Math.min(kernelCores, availableParallelism());
  const adaptive =
    requested === 'cpu' && adaptiveAsked && (poolThreads ?? availableParallelism()) >= 2;
  if (threads === 'adaptive' && !adaptive)
    options.onWarning?.(
      requested === 'cpu'
        ? `intraOpThreads 'adaptive': this machine has one core, so every step runs on one thread`
        : `intraOpThreads 'adaptive' is for the CPU; on ${requested} onnxruntime's own threading runs`,
    );
  const poolOptions: ort.InferenceSession.SessionOptions =
    adaptive && poolThreads !== undefined ? { intraOpNumThreads: poolThreads } : {};
  let ortSession: ort.InferenceSession;
  // Two loggers: the process's (provider libraries that fail to load, such as CUDA's) and
  // each session's (graph warnings).
  const logLevel = options.logLevel ?? 'fatal';
  if (options.logLevel !== undefined || ort.env.logLevel === 'warning') ort.env.logLevel = logLevel;
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    logSeverityLevel: ORT_LOG_SEVERITY[logLevel],
    ...(typeof threads === 'number' ? { intraOpNumThreads: threads } : {}),
    ...spinning,
  };
  const create =
    options.createSession ?? ((model, opts) => ort.InferenceSession.create(model, opts));
  const graphError = (message: string) =>
    new RunnerError(message, { file: modelPath, rule: 'graph' });
  const checkGraph = (checked: ort.InferenceSession) =>
    checkGraphAgainstManifest(manifest, graphSignatureOf(checked), modelPath, graphError);
  // The runtime keeps the cache in place and fetches only each step's rows, which the
  // published graph computes but does not declare; present is dropped, and with it the
  // Concats that copy the whole cache per step. onnxruntime-node returns a fresh copy of
  // every fetched output even when given a buffer to write it into, and copying the whole
  // present back per token cost more than the step (bench/decode-profile.mjs).
  const bytes: Uint8Array = await readFile(modelReal);
  const open = (provider: Device, extra: ort.InferenceSession.SessionOptions = {}) =>
    createSessionWithCacheRows(
      bytes,
      manifest,
      (model) => create(model, { ...sessionOptions, ...extra, executionProviders: [provider] }),
      checkGraph,
      graphError,
      modelPath,
    );
  try {
    ortSession = await open(requested, poolOptions);
  } catch (error) {
    if (error instanceof MinigptError) throw error;
    if (requested === 'cuda') {
      options.onWarning?.(
        `CUDA is not available (${firstLine(error)}); running on CPU. For CUDA, install onnxruntime-node with its CUDA files: npm i onnxruntime-node --onnxruntime-node-install=cuda12`,
      );
      device = 'cpu';
      try {
        ortSession = await open('cpu');
      } catch (cpuError) {
        if (cpuError instanceof MinigptError) throw cpuError;
        throw damaged(modelPath, -1, cpuError);
      }
    } else {
      throw damaged(modelPath, size, error);
    }
  }
  // Before any cache buffer exists: the buffers are sized from the manifest's numbers.
  try {
    checkGraph(ortSession);
  } catch (error) {
    await ortSession.release();
    throw error;
  }
  // The same graph on one thread. It loaded once already, so a failure here is not the
  // file's (memory, most likely): the model still runs, on the pool alone.
  let narrowSession: ort.InferenceSession | undefined;
  if (adaptive) {
    try {
      narrowSession = await open('cpu', { intraOpNumThreads: 1 });
    } catch (error) {
      options.onWarning?.(
        `a second, one-thread session of ${modelPath} could not be created (${firstLine(error)}); every step runs on the pool`,
      );
    }
  }
  const choice = narrowSession ? new ThreadChoice() : undefined;
  const sessions: Record<ThreadLane, ort.InferenceSession> = {
    wide: ortSession,
    narrow: narrowSession ?? ortSession,
  };
  const inputIds = manifest.inputs.inputIds;
  const binding: OrtBinding<ort.Tensor> = {
    int64: (data, dims) => new ort.Tensor('int64', data, dims),
    float32: (data, dims) => new ort.Tensor('float32', data, dims),
    run: async (feeds, fetches) => {
      const typedFetches = fetches as ort.InferenceSession.FetchesType;
      if (!choice) return (await ortSession.run(feeds, typedFetches)) as Record<string, ort.Tensor>;
      const [batch = 1, tokens = 1] = feeds[inputIds]!.dims; // (B, T)
      const lane = choice.pick(batch, tokens);
      const started = performance.now();
      const results = await sessions[lane].run(feeds, typedFetches);
      choice.record(batch, tokens, lane, performance.now() - started);
      return results as Record<string, ort.Tensor>;
    },
  };
  const session = createOnnxDecoder(
    binding,
    manifest,
    cacheRowsOutputs(manifest).length > 0 ? 'rows-in-place' : 'write-present',
  );
  return {
    manifest,
    tokenizer,
    session,
    device,
    dtype,
    intraOpThreads: choice
      ? 'adaptive'
      : typeof threads === 'number'
        ? threads
        : (poolOptions.intraOpNumThreads ?? 'default'),
    threadSteps: () => choice?.counts(),
    generate: (prompt, generationOptions) =>
      generate(session, tokenizer, prompt, generationOptions),
    generateBatch: (prompts, generationOptions) =>
      generateBatch(session, tokenizer, prompts, generationOptions),
    dispose: async () => {
      // Both, even when the first fails; then its error.
      const released = await Promise.allSettled([ortSession.release(), narrowSession?.release()]);
      for (const result of released) if (result.status === 'rejected') throw result.reason;
    },
  };
}

/** A file of the export directory: the path to show, and where it really is (if it exists). */
interface DirectoryFile {
  readonly path: string;
  readonly real?: string;
  readonly size: number;
}

/**
 * `name` in the export directory, resolved through symlinks, refused unless it stays inside
 * the directory and is a regular file (a FIFO or device would block the read). `name` is
 * one the manifest allowed (plain names joined by '/'), so only a symlink can lead out. A
 * missing file has no `real`: the caller says what is missing.
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
