// Public entry of @minigpt/export-onnx: checkpoint → ONNX export directory.
export {
  exportCheckpoint,
  exportModel,
  writeExport,
  type ExportSource,
  ExportError,
  EXPORT_FILES,
  EXPORT_FORMAT_VERSION,
  type ExportCheckpointOptions,
  type ExportCheckpointResult,
  type ExportedModel,
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
