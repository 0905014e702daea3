// Public entry of @minigpt/export-onnx: a model → the files of an ONNX export directory, in
// memory, on any platform (no Node API, no TensorFlow.js). Writing an export directory from
// a checkpoint directory is '@minigpt/export-onnx/node'.
export {
  exportFiles,
  exportModel,
  type ExportSource,
  ExportError,
  EXPORT_FILES,
  EXPORT_FORMAT_VERSION,
  type ExportedModel,
  type ExportFiles,
  type ExportModelOptions,
} from './export.js';
export {
  GRAPH_DIMS,
  GRAPH_NAMES,
  IR_VERSION,
  OPSET,
  buildGptGraph,
  type GraphOptions,
  type Weight,
} from './gpt-graph.js';
export {
  charUnknownToken,
  huggingFaceConfig,
  huggingFaceGenerationConfig,
  huggingFaceTokenizer,
  huggingFaceTokenizerConfig,
  type HuggingFaceConfigOptions,
} from './huggingface.js';
