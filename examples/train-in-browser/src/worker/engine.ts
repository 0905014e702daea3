// The training engine of the worker: @minigpt/trainer's Trainer over @minigpt/data's
// prepareText and @minigpt/checkpoint's OPFS storage. The worker pulls one event at a time
// from `events()` (a step, an evaluation, a checkpoint) and posts it; it pauses by not
// pulling. Sampling runs between two pulls, on the model's current weights.
import {
  CHECKPOINTS_DIR,
  CHECKPOINT_FILES,
  JSON_FILE_LIMIT,
  TOKENIZER_FILE_LIMIT,
  checkpointFileLimits,
  checkpointName,
  memorySource,
  opfsStorage,
  readCheckpoint,
  readRunPointer,
  setRunPointer,
  writeRunCheckpoint,
  type OpfsDirectoryHandle,
  type RunStorage,
} from '@minigpt/checkpoint';
import { prepareText } from '@minigpt/data';
import { exportFiles } from '@minigpt/export-onnx';
import { countParameters } from '@minigpt/model';
import { tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import {
  Trainer,
  browserCandidates,
  summarizeAdapter,
  type GpuLike,
  type TrainerEvent,
} from '@minigpt/trainer';
import * as tf from '@tensorflow/tfjs';
import { unzipSync, zipSync } from 'fflate';
import type {
  BackendReport,
  ContinueCheckpointMessage,
  EvalEvent,
  RunReport,
  SampleRequest,
  StartMessage,
  StoredRun,
} from '../protocol.js';
import { wasmDetails, withWasmThreads } from './wasm-setup.js';

/** A step as the engine reports it; the worker adds wall-clock figures. */
export interface EngineStep {
  readonly type: 'step';
  readonly iteration: number;
  readonly loss: number;
  readonly lr: number;
  readonly tokens: number;
}

/** A checkpoint the trainer wrote to the run's OPFS folder. */
export interface EngineCheckpoint {
  readonly type: 'checkpoint';
  readonly iteration: number;
  readonly location: string;
}

export interface Engine {
  /** The run's OPFS folder (`runs/<runId>`), locked by the trainer while the engine lives. */
  readonly runId: string;
  readonly backend: BackendReport;
  readonly run: RunReport;
  /** Iterations done so far. */
  readonly iteration: number;
  /**
   * Trains to maxIters. Each `next()` does one unit of work (a step, an evaluation, a
   * checkpoint) and yields its event; the worker pauses by not pulling the next one.
   */
  events(): AsyncGenerator<EngineStep | EvalEvent | EngineCheckpoint>;
  /** Continues `prompt` with the current weights. */
  sample(request: SampleRequest): Promise<{ text: string; newTokens: number }>;
  /** The trainer itself (export and checkpoint download read its model and storage). */
  readonly trainer: Trainer;
  readonly tokenizer: Tokenizer;
  /** The ONNX export of the current weights, zipped (the export directory's layout). */
  exportZip(): Promise<ZipResult>;
  /**
   * A checkpoint of the current iteration, zipped as a checkpoint directory: saved first
   * through the trainer (into the run's OPFS folder, as its interval checkpoints) unless
   * `saveCurrent` is false, when the newest checkpoint already saved is zipped.
   */
  checkpointZip(options: { readonly saveCurrent: boolean }): Promise<ZipResult>;
  dispose(): void;
}

export interface ZipResult {
  readonly name: string;
  readonly zip: Uint8Array;
  readonly paths: readonly string[];
  readonly iteration: number;
  readonly runnable?: {
    readonly model: Uint8Array;
    readonly manifest: object;
    readonly vocab: object;
  };
}

/** The files of a folder, zipped under `folder/` (fflate, deflate level 6). */
function zipFolder(folder: string, files: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const entries: Record<string, Uint8Array> = {};
  for (const [path, bytes] of files) entries[`${folder}/${path}`] = bytes;
  return zipSync(entries, { level: 6 });
}

/** A bad input the page shows as it is: no checkpoint to resume, a zip that is not a checkpoint. */
export class InputError extends Error {
  override name = 'InputError';
}

/** The OPFS folder the page keeps its runs in: one sub-folder per run. */
export const RUNS_FOLDER = 'runs';

/** The backends as the page bundles them (a variable specifier cannot be bundled). */
const candidates = browserCandidates({
  webgpu: () => import('@tensorflow/tfjs-backend-webgpu'),
  wasm: () => import('@tensorflow/tfjs-backend-wasm'),
});

/** The run's folder in OPFS (`runs/<id>`), created when missing, as a RunStorage. */
export async function runStorage(runId: string): Promise<RunStorage> {
  const root = (await navigator.storage.getDirectory()) as unknown as OpfsDirectoryHandle;
  const runs = await root.getDirectoryHandle(RUNS_FOLDER, { create: true });
  const folder = await runs.getDirectoryHandle(runId, { create: true });
  return opfsStorage(folder, `opfs:${RUNS_FOLDER}/${runId}`);
}

/** Removes the run's folder from OPFS (a fresh start in a folder that holds a run). */
export async function removeRunFolder(runId: string): Promise<void> {
  const root = await navigator.storage.getDirectory();
  const runs = await root.getDirectoryHandle(RUNS_FOLDER, { create: true });
  await runs.removeEntry(runId, { recursive: true }).catch((error: unknown) => {
    if ((error as { name?: string }).name !== 'NotFoundError') throw error;
  });
}

export interface EngineOptions {
  /** The OPFS run folder's name. */
  readonly runId: string;
  /** Continue the run stored there (Trainer.resume) instead of starting fresh. */
  readonly resume?: boolean;
}

export async function startEngine(start: StartMessage, options: EngineOptions): Promise<Engine> {
  const data = await prepareText(start.data.text, {
    tokenizer: start.tokenizerJson
      ? tokenizerFromJSON(start.tokenizerJson, `${start.data.source}: the checkpoint's tokenizer`)
      : start.tokenizer.kind,
    ...(start.tokenizer.kind === 'bpe' ? { vocabSize: start.tokenizer.vocabSize } : {}),
    source: start.data.source,
  });
  const tokenizer = data.tokenizer;
  if (!options.resume) await removeRunFolder(options.runId);
  const storage = await runStorage(options.runId);
  if (options.resume && !(await readRunPointer(storage, 'latest'))) {
    throw new InputError(`${storage.location}: no checkpoint to resume from`);
  }
  const trainerOptions = {
    data,
    storage,
    config: { ...start.config },
    backend: start.backend,
    backendCandidates: candidates,
  };
  // The trainer picks the backend (tf.setBackend) inside: the wasm module starts there.
  const trainer = await withWasmThreads(
    () => (options.resume ? Trainer.resume(trainerOptions) : Trainer.start(trainerOptions)),
    start.wasmThreads,
  );
  try {
    const run = trainer.run();
    const first = await run.next();
    if (first.done || first.value.type !== 'start') throw new Error('the trainer did not start');
    const started = first.value;
    const backend: BackendReport = {
      name: started.backend as BackendReport['name'],
      tfjsBackend: tf.getBackend(),
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
      ...(started.backend === 'wasm'
        ? { wasm: { ...(await wasmDetails()), kernels: kernelsReport(started.nativeKernels) } }
        : {}),
      ...(started.backend === 'webgpu' ? { adapter: await adapterDescription() } : {}),
      skipped: started.skippedBackends.map(({ name, reason }) => ({
        name: name as BackendReport['name'],
        reason,
      })),
    };
    const { config } = started;
    const report: RunReport = {
      source: start.data.source,
      tokenizer: tokenizer.type,
      vocabSize: tokenizer.vocabSize,
      trainTokens: data.train.length,
      valTokens: data.val.length,
      parameters: countParameters(started.model),
      nLayer: config.nLayer,
      nHead: config.nHead,
      nEmbd: config.nEmbd,
      blockSize: config.blockSize,
      batchSize: config.batchSize,
      maxIters: config.maxIters,
      evalInterval: config.evalInterval,
      evalIters: config.evalIters,
      checkpointInterval: config.checkpointInterval,
      startIteration: started.startIteration,
    };
    let iteration = started.startIteration;
    const tokens = config.batchSize * config.blockSize * config.gradientAccumulationSteps;
    return {
      runId: options.runId,
      backend,
      run: report,
      trainer,
      tokenizer,
      get iteration() {
        return iteration;
      },
      async *events() {
        for (;;) {
          const next = await run.next();
          if (next.done) return;
          const mapped = mapEvent(next.value, tokens);
          if (mapped.type === 'step') iteration = mapped.iteration;
          if (mapped.type !== 'none') yield mapped;
        }
      },
      async sample(request) {
        const prompt = request.prompt.length > 0 ? tokenizer.encode(request.prompt) : [];
        // An empty prompt starts from a line break when the vocabulary has one, else token 0.
        const context = prompt.length > 0 ? prompt : startToken(tokenizer);
        const ids = trainer.model.generate(context, request.maxNewTokens, {
          temperature: request.temperature,
          seed: request.seed ?? 1337,
        });
        return { text: tokenizer.decode(ids), newTokens: ids.length };
      },
      async exportZip() {
        const at = iteration;
        const weights = await trainer.model.weightData();
        const exported = exportFiles({
          config: trainer.modelConfig,
          weights,
          tokenizer: tokenizer.toJSON(),
          source: `${start.data.source}, iteration ${at}`,
        });
        const folder = `minigpt-export-iter-${String(at).padStart(6, '0')}`;
        const decoder = new TextDecoder();
        const json = (path: string) =>
          JSON.parse(decoder.decode(exported.files.get(path)!)) as object;
        return {
          name: `${folder}.zip`,
          zip: zipFolder(folder, exported.files),
          paths: [...exported.files.keys()].map((path) => `${folder}/${path}`),
          iteration: at,
          runnable: {
            model: exported.files.get(exported.manifest.files.model)!,
            manifest: json('minigpt.json'),
            vocab: json(exported.manifest.files.vocab),
          },
        };
      },
      async checkpointZip({ saveCurrent }) {
        // The current weights are what a user downloading mid-run means, not the last
        // interval's: the trainer saves them as a checkpoint (nothing when this iteration is
        // already saved), which then stays in OPFS as the run's newest for a reload to resume.
        const latest = saveCurrent
          ? checkpointName((await trainer.saveCheckpoint()).iter)
          : await readRunPointer(storage, 'latest');
        if (!latest) {
          throw new InputError(
            `no checkpoint saved yet in ${storage.location}: one is written every ${config.checkpointInterval} iterations`,
          );
        }
        const sizes = checkpointFileLimits(trainer.modelConfig);
        const limits: Record<string, number> = {
          [CHECKPOINT_FILES.model]: sizes.model,
          [CHECKPOINT_FILES.optimizer]: sizes.optimizer,
          [CHECKPOINT_FILES.config]: JSON_FILE_LIMIT,
          [CHECKPOINT_FILES.state]: JSON_FILE_LIMIT,
          [CHECKPOINT_FILES.tokenizer]: TOKENIZER_FILE_LIMIT,
        };
        const files = new Map<string, Uint8Array>();
        for (const file of Object.values(CHECKPOINT_FILES)) {
          const bytes = await storage.readFile(
            `${CHECKPOINTS_DIR}/${latest}/${file}`,
            limits[file]!,
          );
          if (!bytes)
            throw new Error(`${storage.pathOf(`${CHECKPOINTS_DIR}/${latest}/${file}`)} is missing`);
          files.set(file, bytes);
        }
        const state = JSON.parse(new TextDecoder().decode(files.get(CHECKPOINT_FILES.state))) as {
          iteration: number;
        };
        return {
          name: `minigpt-${latest}.zip`,
          zip: zipFolder(latest, files),
          paths: [...files.keys()].map((path) => `${latest}/${path}`),
          iteration: state.iteration,
        };
      },
      dispose() {
        void run.return(undefined);
        trainer.dispose();
      },
    };
  } catch (error) {
    trainer.dispose();
    throw error;
  }
}

/** The trainer's event as the protocol's; `none` for those the page does not show. */
function mapEvent(
  event: TrainerEvent,
  tokens: number,
): EngineStep | EvalEvent | EngineCheckpoint | { readonly type: 'none' } {
  switch (event.type) {
    case 'step':
      return { type: 'step', iteration: event.iter, loss: event.loss, lr: event.lr, tokens };
    case 'eval':
      return {
        type: 'eval',
        iteration: event.iter,
        trainLoss: event.trainLoss,
        valLoss: event.valLoss,
      };
    case 'checkpoint':
      return { type: 'checkpoint', iteration: event.iter, location: event.dir };
    default:
      return { type: 'none' };
  }
}

/** The WebGPU adapter, as the page names it: "google swiftshader (software)". */
async function adapterDescription(): Promise<string> {
  const gpu = (navigator as { gpu?: GpuLike }).gpu;
  const adapter = await gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return 'unknown adapter';
  const summary = summarizeAdapter(adapter);
  const name =
    [summary.vendor, summary.architecture, summary.description].filter(Boolean).join(' ') ||
    'unknown adapter';
  return summary.software ? `${name}; software` : name;
}

function startToken(tokenizer: Tokenizer): number[] {
  try {
    const ids = tokenizer.encode('\n');
    return ids.length > 0 ? ids : [0];
  } catch {
    return [0];
  }
}

/** The page's record of a run, beside the trainer's files in its folder: text and settings. */
export const PAGE_RUN_FILE = 'page-run.json';

async function runFolder(runId: string): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  const runs = await root.getDirectoryHandle(RUNS_FOLDER, { create: true });
  return runs.getDirectoryHandle(runId, { create: true });
}

/** Stores the start message (text, tokenizer, settings) so a reload can resume the run. */
export async function saveRunRecord(start: StartMessage): Promise<void> {
  const folder = await runFolder(start.runId);
  const file = await folder.getFileHandle(PAGE_RUN_FILE, { create: true });
  const writable = await file.createWritable();
  // The thread count is the page's (its URL), not the run's: undefined drops it from the JSON.
  const record = { ...start, wasmThreads: undefined, savedAt: new Date().toISOString() };
  await writable.write(JSON.stringify(record));
  await writable.close();
}

/** The start message stored with run `runId`. */
export async function readRunRecord(
  runId: string,
): Promise<(StartMessage & { readonly savedAt: string }) | undefined> {
  const folder = await runFolder(runId);
  try {
    const file = await (await folder.getFileHandle(PAGE_RUN_FILE)).getFile();
    return JSON.parse(await file.text()) as StartMessage & { savedAt: string };
  } catch (error) {
    if ((error as { name?: string }).name === 'NotFoundError') return undefined;
    throw error;
  }
}

/** The runs in OPFS with their text stored, newest first, with their newest checkpoint. */
export async function findStoredRuns(): Promise<StoredRun[]> {
  const root = await navigator.storage.getDirectory();
  const runs = await root.getDirectoryHandle(RUNS_FOLDER, { create: true });
  const found: StoredRun[] = [];
  for await (const [name, handle] of (
    runs as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }
  ).entries()) {
    if (handle.kind !== 'directory') continue;
    const record = await readRunRecord(name).catch(() => undefined);
    if (!record) continue;
    const storage = opfsStorage(
      handle as unknown as OpfsDirectoryHandle,
      `opfs:${RUNS_FOLDER}/${name}`,
    );
    const latest = await readRunPointer(storage, 'latest').catch(() => undefined);
    const iteration = latest ? Number(/(\d+)$/.exec(latest)?.[1]) : undefined;
    found.push({
      runId: name,
      bytes: await folderBytes(handle as unknown as DirectoryEntries),
      source: record.data.source,
      settings: record.config,
      tokenizer: record.tokenizer,
      iteration: iteration !== undefined && Number.isFinite(iteration) ? iteration : undefined,
      savedAt: record.savedAt,
    });
  }
  return found.sort((a, b) => b.savedAt.localeCompare(a.savedAt));
}

/** The part of FileSystemDirectoryHandle that walks a folder (not in TypeScript's DOM types). */
interface DirectoryEntries {
  entries(): AsyncIterable<[string, FileSystemHandle]>;
}

/** The bytes of the files in `folder` and its sub-folders: what a run takes in OPFS. */
async function folderBytes(folder: DirectoryEntries): Promise<number> {
  let total = 0;
  for await (const [, handle] of folder.entries()) {
    try {
      total +=
        handle.kind === 'directory'
          ? await folderBytes(handle as unknown as DirectoryEntries)
          : (await (handle as FileSystemFileHandle).getFile()).size;
    } catch (error) {
      // A file the trainer replaced or pruned meanwhile (a run training in another tab).
      if ((error as { name?: string }).name !== 'NotFoundError') throw error;
    }
  }
  return total;
}

/** What the whole site takes in this browser's storage, and its quota (when the browser says). */
export async function storageEstimate(): Promise<{ usage: number; quota: number } | undefined> {
  const estimate = await navigator.storage.estimate?.().catch(() => undefined);
  if (estimate?.usage === undefined || estimate.quota === undefined) return undefined;
  return { usage: estimate.usage, quota: estimate.quota };
}

/**
 * Deletes stored run `runId`'s folder from OPFS, checkpoints and all. Refused for the run
 * this worker trains (`activeRunId`), and — through the run's lock, which its trainer holds
 * while it lives — for a run open in another tab or worker: a run in use is never deleted.
 */
export async function discardStoredRun(
  runId: string,
  activeRunId: string | undefined,
): Promise<void> {
  if (runId === activeRunId) {
    throw new InputError(
      `${RUNS_FOLDER}/${runId} is the run this page is training: it is kept while the page is open`,
    );
  }
  const root = await navigator.storage.getDirectory();
  const runs = await root.getDirectoryHandle(RUNS_FOLDER, { create: true });
  let folder: FileSystemDirectoryHandle;
  try {
    folder = await runs.getDirectoryHandle(runId);
  } catch (error) {
    if ((error as { name?: string }).name === 'NotFoundError') return; // discarded already
    throw error;
  }
  const storage = opfsStorage(
    folder as unknown as OpfsDirectoryHandle,
    `opfs:${RUNS_FOLDER}/${runId}`,
  );
  // Throws RunLockedError ("in use by …") while a trainer anywhere in this origin holds it.
  const lock = await storage.lock({ command: 'train-in-browser: discard the stored run' });
  try {
    await runs.removeEntry(runId, { recursive: true });
  } finally {
    lock.release();
  }
}

/** The five files of a checkpoint from what the page was given: one zip, or the files. */
export function checkpointFilesFrom(
  given: Readonly<Record<string, Uint8Array>>,
): Map<string, Uint8Array> {
  const names = Object.keys(given);
  let files: Record<string, Uint8Array> = { ...given };
  if (names.length === 1 && names[0]!.toLowerCase().endsWith('.zip')) {
    try {
      files = unzipSync(given[names[0]!]!);
    } catch (error) {
      throw new InputError(`${names[0]}: not a zip file (${(error as Error).message})`);
    }
  }
  // A zip holds the checkpoint folder (ckpt-…/model.safetensors) or the bare files.
  const byName = new Map<string, Uint8Array>();
  for (const [path, bytes] of Object.entries(files)) {
    if (path.endsWith('/')) continue;
    byName.set(path.slice(path.lastIndexOf('/') + 1), bytes);
  }
  const wanted = Object.values(CHECKPOINT_FILES);
  const missing = wanted.filter((name) => !byName.has(name));
  if (missing.length > 0) {
    throw new InputError(
      `${names.join(', ')}: not a checkpoint — ${missing.join(', ')} missing (a checkpoint has ${wanted.join(', ')})`,
    );
  }
  return new Map(wanted.map((name) => [name, byName.get(name)!]));
}

/**
 * Puts a checkpoint made elsewhere into a new OPFS run folder (checked whole first: schemas,
 * weights and moments against its config) as `checkpoints/<ckpt-iteration>` and
 * `checkpoints/latest`, and returns the start message that resumes it on `message.data`.
 */
export async function importCheckpoint(message: ContinueCheckpointMessage): Promise<StartMessage> {
  const label = Object.keys(message.files).join(', ');
  const files = checkpointFilesFrom(message.files);
  const checked = await readCheckpoint(memorySource(label, files), { optimizer: true });
  const name = checkpointName(checked.state.iteration);
  await removeRunFolder(message.runId);
  const storage = await runStorage(message.runId);
  const lock = await storage.lock({ command: 'train-in-browser: import a checkpoint' });
  try {
    await writeRunCheckpoint(storage, name, files, lock);
    await setRunPointer(storage, 'latest', name, lock);
  } finally {
    lock.release();
  }
  const train = checked.config.train;
  const preset = typeof train['preset'] === 'string' ? train['preset'] : 'baby';
  return {
    type: 'start',
    runId: message.runId,
    data: message.data,
    tokenizer: { kind: 'char' },
    tokenizerJson: checked.tokenizerJson,
    config: { preset: preset as StartMessage['config']['preset'], ...message.config },
    backend: message.backend,
    ...(message.wasmThreads !== undefined ? { wasmThreads: message.wasmThreads } : {}),
  };
}

/** What the trainer's start event says about the kernels, as the page reports it. */
function kernelsReport(
  status: { readonly installed: boolean; readonly reason?: string } | undefined,
): { installed: true } | { installed: false; reason: string } {
  if (status?.installed) return { installed: true };
  return { installed: false, reason: status?.reason ?? 'not installed' };
}
