// Node entry of @minigpt/trainer: training from a prepared directory into an output
// directory (what `minigpt train` runs), the backends only Node has (tfjs-node, WebGPU on
// Dawn, the native kernels on wasm), and loading a checkpoint directory.
export { NODE_CANDIDATES, startTraining, type NodeTrainerOptions } from './start.js';
export { loadCheckpoint } from './load.js';
export { readInitialWeights, type ReadInitialWeightsOptions } from './init-from.js';
export {
  loadWebGpu,
  probeWebGpu,
  probeWebGpuQuietly,
  type QuietProbeOptions,
  type WebGpuLoaderParts,
} from './webgpu.js';
