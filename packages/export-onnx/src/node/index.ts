// Node entry of @minigpt/export-onnx: export directories on disk, from a checkpoint
// directory (exportCheckpoint, what `minigpt export` runs) or a model in memory (writeExport).
export {
  exportCheckpoint,
  writeExport,
  type ExportCheckpointOptions,
  type ExportCheckpointResult,
} from './export.js';
