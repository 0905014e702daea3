// Public entry of @minigpt/export-onnx: checkpoint → ONNX export directory.
export {
  exportCheckpoint,
  exportModel,
  ExportError,
  EXPORT_FILES,
  EXPORT_FORMAT_VERSION,
  type ExportCheckpointOptions,
  type ExportCheckpointResult,
  type ExportedModel,
} from './export.js';
export { GRAPH_NAMES, IR_VERSION, OPSET, buildGptGraph, type Weight } from './gpt-graph.js';
export { huggingFaceConfig, huggingFaceTokenizer } from './huggingface.js';
