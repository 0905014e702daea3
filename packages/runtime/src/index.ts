// Public entry of @minigpt/runtime: generation over any DecoderSession (onnxruntime-node,
// onnxruntime-web, or your own), sampling, and the export format's manifest checks.
export {
  generate,
  GenerationError,
  type Generation,
  type GenerationOptions,
  type GenerationStats,
} from './generate.js';
export { sampleToken, type SamplingOptions } from './sampling.js';
export type { DecoderSession } from './session.js';
export {
  ManifestError,
  MANIFEST_FORMAT_VERSION,
  cacheNames,
  layerName,
  type CacheNames,
  parseManifest,
  type ExportManifest,
} from './manifest.js';
