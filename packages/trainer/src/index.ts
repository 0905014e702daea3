// Public entry of @minigpt/trainer: the Trainer, its config and presets, AdamW, the LR
// schedule, run-time estimates, backend selection, and loading a checkpoint for sampling (the
// format itself is @minigpt/checkpoint's). No Node API: it runs in browsers and Web Workers.
// Node's directories, backends and native kernels are in '@minigpt/trainer/node'.
export {
  Trainer,
  TrainingError,
  rowsThatFit,
  type InitialWeights,
  type NativeKernelsStatus,
  type TrainerEvent,
  type TrainerOptions,
} from './trainer.js';
// The config, presets and run-time arithmetic, also on their own (no TensorFlow.js) as
// '@minigpt/trainer/config'.
export * from './config-entry.js';
export {
  AdamW,
  decaysWeight,
  FUSED_ADAMW,
  FUSED_SUM_OF_SQUARES,
  type AdamWOptions,
  type AdamWState,
} from './adamw.js';
export { learningRateAt } from './schedule.js';
export {
  BROWSER_CANDIDATES,
  BackendError,
  browserCandidates,
  selectBackend,
  wasmFeatures,
  type BackendCandidate,
  type BackendChoice,
  type BrowserBackendLoaders,
} from './backend.js';
export {
  loadBrowserWebGpu,
  summarizeAdapter,
  type AdapterLike,
  type BrowserWebGpuParts,
  type GpuLike,
  type WebGpuAdapterSummary,
} from './webgpu-adapter.js';
export { loadCheckpointFrom, type LoadedCheckpoint } from './load.js';
export {
  LOSS_CURVE_FILE,
  METRICS_FILE,
  lossCurveSvg,
  readMetrics,
  type EvalRecord,
  type MetricsRecord,
  type StepRecord,
} from './metrics.js';
