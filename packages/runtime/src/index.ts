// Public entry of @minigpt/runtime: generation over any DecoderSession (onnxruntime-node,
// onnxruntime-web, or your own), sampling, the export format's manifest checks, and the
// check of a loaded graph's signature against its manifest.
export {
  generate,
  generateBatch,
  GenerationError,
  type BatchGeneration,
  type BatchGenerationOptions,
  type Generation,
  type GenerationOptions,
  type GenerationStats,
  type RowOptions,
} from './generate.js';
export { sampleToken, type SamplingOptions } from './sampling.js';
export type { DecoderInput, DecoderSession } from './session.js';
export {
  cacheRowsModel,
  cacheRowsOutputs,
  CACHE_ROWS_OUTPUT,
  createOnnxDecoder,
  GROWTH_SLOTS,
  cacheCapacity,
  createSessionWithCacheRows,
  type CacheStrategy,
  type OnnxCacheState,
  type OrtBinding,
  type OrtTensorLike,
} from './onnx-decoder.js';
export {
  ManifestError,
  MANIFEST_FORMAT_VERSION,
  MANIFEST_LIMITS,
  cacheNames,
  layerName,
  modelFileFor,
  tokenizerMismatch,
  type ModelDtype,
  type CacheNames,
  parseManifest,
  type ExportManifest,
} from './manifest.js';
export {
  checkGraphAgainstManifest,
  graphSignatureOf,
  type GraphSignature,
  type SessionValueMetadata,
  type ValueInfo,
} from './graph.js';
export { ProtoWriter, readFields, type ProtoField } from './protobuf.js';
export {
  OnnxDataType,
  PAST_ATTENTION_BRANCH,
  editGraphOutputs,
  encodeNode,
  encodeValueInfo,
  type GraphOutputEdit,
  type OnnxAttribute,
  type OnnxNode,
  type OnnxDataTypeValue,
  type OnnxValueInfo,
} from './onnx-proto.js';
