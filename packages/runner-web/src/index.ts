// Public entry of @minigpt/runner-web: load an exported minigpt model with onnxruntime-web.
export {
  hasWebGpuAdapter,
  loadModel,
  WebRunnerError,
  type ModelSource,
  type ModelDtype,
  type WebDevice,
  type WebLoadOptions,
  type WebLoadedModel,
} from './load.js';
export type {
  BatchGeneration,
  BatchGenerationOptions,
  Generation,
  GenerationOptions,
  GenerationStats,
  RowOptions,
} from '@minigpt/runtime';
