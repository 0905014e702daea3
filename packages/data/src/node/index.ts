// Node entry of @minigpt/data: binarize a text file into a prepared directory, and open one —
// meta.json, a split as a TokenDataset (in memory, or read row by row for splits larger than
// RAM), or all of it as PreparedData. The browser-safe parts are in '@minigpt/data'.
export {
  binarize,
  type BinarizeOptions,
  type BinarizeProgress,
  type BinarizeResult,
} from './binarize.js';
export { readMeta } from './meta.js';
export {
  openPreparedData,
  openTokenDataset,
  readDataTokenizer,
  type OpenDatasetOptions,
} from './open.js';
export {
  MAX_TOKENIZER_FILE_BYTES,
  TOKENIZER_LAYOUTS,
  readTokenizerFiles,
  type TokenizerFiles,
} from './tokenizer-files.js';
