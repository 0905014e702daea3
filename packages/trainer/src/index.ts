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
export {
  DEFAULT_TRAIN_CONFIG,
  RESUME_OVERRIDABLE_KEYS,
  ResumeConfigError,
  TRAIN_PRESETS,
  TrainConfigError,
  modelConfigOf,
  resolveTrainConfig,
  resumeTrainConfig,
  type ResumeConflict,
  type TrainConfig,
} from './config.js';
export {
  ALWAYS_AFFORDED_EVAL_SECONDS,
  MIN_CAPPED_EVAL_ITERS,
  affordableEvalIters,
  countEvaluations,
  estimateRunTime,
  type RunTimeEstimate,
  type RunTimingInput,
} from './estimate.js';
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
  BACKEND_ORDER,
  BROWSER_CANDIDATES,
  BackendError,
  browserCandidates,
  installHint,
  selectBackend,
  wasmFeatures,
  type BackendCandidate,
  type BackendChoice,
  type BackendName,
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
