// The messages between the page and the training worker, in one place: the page posts
// PageMessage, the worker posts WorkerEvent. Both sides import these types, so a field that
// changes on one side fails the typecheck on the other.
import type { GPTPresetName } from '@minigpt/model';
import type { TokenizerJSON } from '@minigpt/tokenizer';

/** The backends the page can ask for; `auto` picks WebGPU on a hardware adapter, else wasm, else cpu. */
export type BackendName = 'webgpu' | 'wasm' | 'cpu';
export type BackendRequest = BackendName | 'auto';

/** How the text becomes tokens: one token per character, or byte-level BPE trained on the text. */
export type TokenizerSetting =
  { readonly kind: 'char' } | { readonly kind: 'bpe'; readonly vocabSize: number };

/**
 * Training settings: a preset and the keys that override it. The names are the trainer's
 * TrainConfig keys (`minigpt train --config`), so they pass through to the trainer unchanged.
 */
export interface TrainSettings {
  readonly preset: GPTPresetName;
  readonly nLayer?: number;
  readonly nHead?: number;
  readonly nEmbd?: number;
  readonly blockSize?: number;
  readonly batchSize?: number;
  readonly maxIters?: number;
  readonly learningRate?: number;
  readonly evalInterval?: number;
  readonly evalIters?: number;
  /** Save a checkpoint to OPFS every this many iterations (and at the end). */
  readonly checkpointInterval?: number;
  readonly seed?: number;
}

/** A text to train on: pasted, from a dropped .txt file, or a bundled sample. */
export interface TrainingText {
  readonly kind: 'text';
  readonly text: string;
  /** Names the text in messages: 'pasted text', the file's name, 'sample: …'. */
  readonly source: string;
}

export interface StartMessage {
  readonly type: 'start';
  readonly data: TrainingText;
  /** How to tokenize the text (unless `tokenizerJson` gives the tokenizer). */
  readonly tokenizer: TokenizerSetting;
  readonly config: TrainSettings;
  readonly backend: BackendRequest;
  /** wasm threads; absent: one per logical core (tfjs-backend-wasm's default). */
  readonly wasmThreads?: number;
  /** The run's OPFS folder (`runs/<runId>`); the page makes one per Start. */
  readonly runId: string;
  /**
   * The tokenizer to encode the text with, instead of training one (`tokenizer` is then
   * ignored): a checkpoint's, so its run can continue on the same tokens.
   */
  readonly tokenizerJson?: TokenizerJSON;
}

/**
 * Continue a checkpoint made elsewhere (`minigpt train` in Node, or this page's download):
 * its files (a zip of the checkpoint folder, or the five files) and the text it was trained
 * on. The trainer resumes only on the same data (it checks the text's sha256 against the
 * checkpoint's), so the text comes with it.
 */
export interface ContinueCheckpointMessage {
  readonly type: 'continue-checkpoint';
  readonly runId: string;
  /** File name → bytes: one `.zip`, or model.safetensors, optimizer.safetensors, config.json, tokenizer.json, state.json. */
  readonly files: Readonly<Record<string, Uint8Array>>;
  readonly data: TrainingText;
  /** Overrides a resume may change (maxIters, the intervals). */
  readonly config?: Partial<
    Pick<TrainSettings, 'maxIters' | 'evalInterval' | 'checkpointInterval'>
  >;
  readonly backend: BackendRequest;
  readonly wasmThreads?: number;
}

/** Continue the run stored in OPFS (its text and settings are stored with it). */
export interface ResumeRunMessage {
  readonly type: 'resume-run';
  readonly runId: string;
  readonly wasmThreads?: number;
  /** Overrides of the stored settings a resume may change (maxIters, the intervals). */
  readonly config?: Partial<
    Pick<TrainSettings, 'maxIters' | 'evalInterval' | 'checkpointInterval'>
  >;
  readonly backend?: BackendRequest;
}

/** A run the page left in OPFS, found when it loads. */
export interface StoredRun {
  readonly runId: string;
  readonly source: string;
  readonly settings: TrainSettings;
  readonly tokenizer: TokenizerSetting;
  /** The newest checkpoint's iteration; undefined when none was saved yet. */
  readonly iteration: number | undefined;
  readonly savedAt: string;
  /** What the run's folder takes in OPFS: the sum of its files' sizes. */
  readonly bytes: number;
}

export interface SampleRequest {
  readonly type: 'sample';
  /** Echoed in the answer, so the page matches answers to requests. */
  readonly id: number;
  readonly prompt: string;
  readonly maxNewTokens: number;
  /** 0: greedy. */
  readonly temperature: number;
  readonly seed?: number;
}

/**
 * Build the ONNX export of the current weights, or a checkpoint of them (saved to OPFS first),
 * zipped.
 */
export interface DownloadRequest {
  readonly type: 'export' | 'checkpoint-zip';
  readonly id: number;
}

export type PageMessage =
  | StartMessage
  | DownloadRequest
  | ResumeRunMessage
  | ContinueCheckpointMessage
  | { readonly type: 'find-runs' }
  /** Deletes a stored run's OPFS folder; refused for a run in use (here or in another tab). */
  | { readonly type: 'discard-run'; readonly runId: string }
  | { readonly type: 'pause' }
  | { readonly type: 'resume' }
  | SampleRequest;

export type TrainingState = 'idle' | 'preparing' | 'training' | 'paused' | 'done' | 'failed';

/** Which backend runs, how, and why each faster one was skipped. */
export interface BackendReport {
  readonly name: BackendName;
  /** tf.getBackend() in the worker. */
  readonly tfjsBackend: string;
  readonly crossOriginIsolated: boolean;
  readonly sharedArrayBuffer: boolean;
  /** On wasm: what the browser supports and how many threads XNNPACK's pool runs. */
  readonly wasm?: {
    readonly simd: boolean;
    readonly threadsSupported: boolean;
    readonly threads: number;
    /**
     * Whether @minigpt/wasm-kernels' WebAssembly kernels run the matMuls and fused ops (the
     * trainer installs them), or why not.
     */
    readonly kernels?:
      { readonly installed: true } | { readonly installed: false; readonly reason: string };
  };
  /** On WebGPU: the adapter's description (vendor, architecture). */
  readonly adapter?: string;
  readonly skipped: ReadonlyArray<{ readonly name: BackendName; readonly reason: string }>;
}

/** The run as the worker set it up: data, tokenizer, model and training settings. */
export interface RunReport {
  readonly source: string;
  readonly tokenizer: string;
  readonly vocabSize: number;
  readonly trainTokens: number;
  readonly valTokens: number;
  readonly parameters: number;
  readonly nLayer: number;
  readonly nHead: number;
  readonly nEmbd: number;
  readonly blockSize: number;
  readonly batchSize: number;
  readonly maxIters: number;
  readonly evalInterval: number;
  readonly evalIters: number;
  readonly checkpointInterval: number;
  /** 0 for a fresh run; the checkpoint's iteration for a resumed one. */
  readonly startIteration: number;
}

export interface StepEvent {
  readonly type: 'step';
  /** Iterations done, this one included (1 after the first step). */
  readonly iteration: number;
  readonly maxIters: number;
  readonly loss: number;
  readonly lr: number;
  /** Tokens one step trains on (batchSize × blockSize). */
  readonly tokens: number;
  /** Training time so far, pauses excluded. */
  readonly elapsedMs: number;
  /** Over the last steps (wall time, worker overhead included). */
  readonly tokensPerSec: number;
}

export interface EvalEvent {
  readonly type: 'eval';
  readonly iteration: number;
  readonly trainLoss: number;
  readonly valLoss: number;
}

export type WorkerEvent =
  | {
      readonly type: 'status';
      readonly state: TrainingState;
      readonly iteration: number;
      readonly message: string;
    }
  | { readonly type: 'ready'; readonly backend: BackendReport; readonly run: RunReport }
  | StepEvent
  | EvalEvent
  | { readonly type: 'checkpoint'; readonly iteration: number; readonly location: string }
  | {
      readonly type: 'runs';
      readonly runs: readonly StoredRun[];
      /** navigator.storage.estimate(): what the whole site takes, and its quota. */
      readonly storage?: { readonly usage: number; readonly quota: number };
    }
  | {
      readonly type: 'zip';
      readonly id: number;
      readonly kind: 'export' | 'checkpoint-zip';
      /** The zip's name for the download, e.g. `minigpt-export-iter-000030.zip`. */
      readonly name: string;
      readonly zip: Uint8Array;
      /** The paths in the zip. */
      readonly paths: readonly string[];
      /** For an export: what runner-web needs to run it in the page. */
      readonly runnable?: {
        readonly model: Uint8Array;
        readonly manifest: object;
        readonly vocab: object;
      };
      readonly iteration: number;
      readonly ms: number;
    }
  | {
      readonly type: 'sample';
      readonly id: number;
      readonly text: string;
      readonly newTokens: number;
      readonly ms: number;
    }
  | {
      readonly type: 'error';
      readonly during: 'start' | 'train' | 'sample' | 'export' | 'discard';
      /** The sample request's id, for a sample error. */
      readonly id?: number;
      readonly name: string;
      readonly message: string;
    };

/** The page's one-line account of the backend: "wasm (threads: 2, SIMD) — webgpu skipped: no hardware adapter". */
export function describeBackend(report: BackendReport): string {
  let line: string = report.name;
  if (report.wasm) {
    const features = [`threads: ${report.wasm.threads}`];
    if (report.wasm.simd) features.push('SIMD');
    if (report.wasm.kernels?.installed) features.push('minigpt kernels');
    line += ` (${features.join(', ')})`;
    if (report.wasm.kernels && !report.wasm.kernels.installed)
      line += ` — tfjs's own kernels: ${report.wasm.kernels.reason}`;
    if (!report.wasm.threadsSupported) {
      line += report.crossOriginIsolated
        ? ' — one thread: this browser has no wasm threads'
        : ' — one thread: the page is not cross-origin isolated (COOP/COEP headers missing)';
    }
  }
  if (report.adapter) line += ` (${report.adapter})`;
  for (const { name, reason } of report.skipped) line += ` — ${name} skipped: ${reason}`;
  return line;
}
