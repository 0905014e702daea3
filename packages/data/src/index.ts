// Public entry of @minigpt/data, browser-safe (no Node APIs): prepare a text in memory, hold
// token splits as TokenDatasets (from arrays or .bin Files/Blobs) and sample seeded batches,
// check meta.json. Files and directories on disk are in '@minigpt/data/node'.
export {
  TokenDataset,
  type Batch,
  type BlobDatasetOptions,
  type TokenDatasetOptions,
} from './dataset.js';
export { DataError, type DataRemedy } from './errors.js';
export {
  DATA_FORMAT_VERSION,
  FILE_NAMES,
  parseMeta,
  type DataMeta,
  type Split,
  type TokenDtype,
} from './meta.js';
export {
  prepareText,
  type PreparedData,
  type PrepareTextOptions,
  type TokenizerChoice,
} from './prepare.js';
export type { NewlineMode } from './text.js';
