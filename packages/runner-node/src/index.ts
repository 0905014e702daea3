// Public entry of @minigpt/runner-node: load an exported minigpt model with onnxruntime-node.
export {
  loadModel,
  ADAPTIVE_MAX_MODEL_BYTES,
  MAX_INTRA_OP_THREADS,
  DEFAULT_SPIN_MICROSECONDS,
  MAX_SPIN_MICROSECONDS,
  RunnerError,
  type Device,
  type ModelDtype,
  type LoadModelOptions,
  type LoadedModel,
  type OrtLogLevel,
  type ThreadChoiceCounts,
} from './load.js';
export type {
  BatchGeneration,
  BatchGenerationOptions,
  Generation,
  GenerationOptions,
  GenerationStats,
  RowOptions,
} from '@minigpt/runtime';
