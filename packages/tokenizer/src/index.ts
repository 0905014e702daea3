// Public entry of @minigpt/tokenizer: the Tokenizer contract, the char and BPE kinds, the
// loaders of GPT-2-style files from elsewhere, and the registry that loads any kind from JSON.
// No third-party dependencies; Node and browsers.
export {
  TokenizerError,
  UnknownCharacterError,
  type StreamEncoder,
  type Tokenizer,
  type TokenizerJSON,
} from './tokenizer.js';
export {
  CharTokenizer,
  CharVocabularyBuilder,
  MAX_CHAR_VOCAB_SIZE,
  type CharTokenizerJSON,
  type CharTokenizerOptions,
  type UnknownCharacterPolicy,
} from './char.js';
export {
  BpeTokenizer,
  MAX_MERGES,
  MAX_SPECIAL_TOKENS,
  MAX_SPECIAL_TOKEN_LENGTH,
  MAX_TOKEN_BYTES,
  type BpeEncodeOptions,
  type BpeTokenizerJSON,
  type BpeTrainOptions,
} from './bpe.js';
export { BpeTrainer } from './bpe-train.js';
export {
  GPT2_BYTE_CHARACTERS,
  MAX_MERGES_TEXT_LENGTH,
  bpeFromHuggingFace,
  bpeFromVocabMerges,
} from './huggingface.js';
export {
  GPT2_SPLIT_PATTERN,
  GPT4_SPLIT_PATTERN,
  SPLIT_PATTERNS,
  isTrustedSplitPattern,
  registerSplitPattern,
} from './pretokenize.js';
export {
  registerTokenizer,
  registeredTokenizerTypes,
  tokenizerFromJSON,
  type TokenizerKind,
} from './registry.js';
