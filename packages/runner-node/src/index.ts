// Public entry of @minigpt/runner-node: load an exported minigpt model with onnxruntime-node.
export {
  loadModel,
  RunnerError,
  type Device,
  type LoadModelOptions,
  type LoadedModel,
} from './load.js';
export type { Generation, GenerationOptions, GenerationStats } from '@minigpt/runtime';
