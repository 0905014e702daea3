// Public entry of @minigpt/runner-web: load an exported minigpt model with onnxruntime-web.
export {
  hasWebGpuAdapter,
  loadModel,
  WebRunnerError,
  type ModelSource,
  type WebDevice,
  type WebLoadOptions,
  type WebLoadedModel,
} from './load.js';
export type { Generation, GenerationOptions, GenerationStats } from '@minigpt/runtime';
