// Public entry of @minigpt/data: binarize a text into token files, open them, sample batches.
export {
  binarize,
  type BinarizeOptions,
  type BinarizeProgress,
  type BinarizeResult,
  type TokenizerChoice,
} from './binarize.js';
export { TokenDataset, type Batch, type OpenDatasetOptions } from './dataset.js';
export { DataError, type DataRemedy } from './errors.js';
export {
  DATA_FORMAT_VERSION,
  FILE_NAMES,
  readMeta,
  type DataMeta,
  type Split,
  type TokenDtype,
} from './meta.js';
export type { NewlineMode } from './text-reader.js';
