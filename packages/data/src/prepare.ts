// A text in memory → the tokens, split, tokenizer and meta that binarize writes for the same
// text, without files: for a page that prepares pasted or dropped text. The rules that decide
// those bytes (where the split falls, how the tokenizer is built, the minimum split size, the
// meta) live here once and binarize (./node/binarize.ts) uses them too.
import {
  BpeTokenizer,
  CharVocabularyBuilder,
  type StreamEncoder,
  type Tokenizer,
} from '@minigpt/tokenizer';
import { TokenDataset } from './dataset.js';
import { DataError } from './errors.js';
import { DATA_FORMAT_VERSION, dtypeFor, type DataMeta, type Split } from './meta.js';
import {
  NewlineNormalizer,
  Utf8Checker,
  countCodePoints,
  findLoneSurrogate,
  invalidUtf8Problem,
  offsetOfCodePoint,
  type NewlineMode,
} from './text.js';

export type TokenizerChoice = 'char' | 'bpe';

/** Prepared data: the meta, the tokenizer and both splits, from a directory or from memory. */
export interface PreparedData {
  readonly meta: DataMeta;
  readonly tokenizer: Tokenizer;
  readonly train: TokenDataset;
  readonly val: TokenDataset;
  /** Names the data in messages: a directory's path, or 'pasted text'. */
  readonly location: string;
}

export interface PrepareTextOptions {
  /** A kind to build from the text (default `'char'`), or a ready tokenizer to use as is. */
  readonly tokenizer?: TokenizerChoice | Tokenizer;
  /** BPE only: vocabulary size to train to (default 4096). */
  readonly vocabSize?: number;
  /** Share of the text (by characters, taken from the end) that goes to val. Default 0.1. */
  readonly valFraction?: number;
  /** Default `'universal'`: \r\n and \r read as \n, like Python's open() in nanoGPT. */
  readonly newlines?: NewlineMode;
  /** Each split must hold at least this many tokens (blockSize + 1 for training). Default 2. */
  readonly minTokensPerSplit?: number;
  /**
   * Names the text in errors, in `location` and in meta.json's `source.file` (as binarize
   * records the input's file name). Default `'pasted text'`.
   */
  readonly source?: string;
}

export const DEFAULT_VAL_FRACTION = 0.1;
export const DEFAULT_BPE_VOCAB_SIZE = 4096;
export const DEFAULT_MIN_TOKENS_PER_SPLIT = 2;
const DEFAULT_SOURCE = 'pasted text';
/** meta.json's bound on `source.file`. */
const MAX_SOURCE_LENGTH = 4096;

/**
 * Tokenizes `text` and splits it as binarize would the same text in a file: the same ids in
 * train and val, the same tokenizer, the same meta (sha256 and byte count of the UTF-8 bytes,
 * through `globalThis.crypto.subtle`). A `Uint8Array` is read as UTF-8 (invalid bytes are a
 * DataError with their offset); a leading byte-order mark is kept as text, as binarize does.
 */
export async function prepareText(
  text: string | Uint8Array,
  options: PrepareTextOptions = {},
): Promise<PreparedData> {
  const source = options.source ?? DEFAULT_SOURCE;
  if (typeof source !== 'string' || source.length === 0 || source.length > MAX_SOURCE_LENGTH) {
    throw new RangeError(`prepareText: source must be 1 to ${MAX_SOURCE_LENGTH} characters`);
  }
  const valFraction = options.valFraction ?? DEFAULT_VAL_FRACTION;
  const newlines = options.newlines ?? 'universal';
  const minTokens = options.minTokensPerSplit ?? DEFAULT_MIN_TOKENS_PER_SPLIT;
  checkValFraction(source, valFraction);

  const bytes = typeof text === 'string' ? utf8Bytes(text, source) : text;
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError('prepareText: text must be a string or a Uint8Array of UTF-8');
  }
  if (bytes.length === 0) throw new DataError(source, 'is empty', 'Pass a non-empty text');
  const decoded = typeof text === 'string' ? text : decodeUtf8(bytes, source);
  const normalized = new NewlineNormalizer(newlines).push(decoded, true);
  const characters = countCodePoints(normalized);
  if (characters === 0) throw noTextError(source, 'Pass a non-empty text');
  const trainCharacters = trainCharactersOf(characters, valFraction);
  const cut = offsetOfCodePoint(normalized, trainCharacters);
  const parts: Record<Split, string> = {
    train: normalized.slice(0, cut),
    val: normalized.slice(cut),
  };

  const choice = options.tokenizer ?? 'char';
  let tokenizer: Tokenizer;
  if (typeof choice === 'object') tokenizer = choice;
  else if (choice === 'char') {
    const vocabulary = new CharVocabularyBuilder();
    vocabulary.add(normalized);
    tokenizer = vocabulary.build();
  } else if (choice === 'bpe') {
    const trainer = BpeTokenizer.trainer();
    trainer.push(parts.train); // the train split only, as binarize
    tokenizer = BpeTokenizer.finishTraining(trainer, options.vocabSize ?? DEFAULT_BPE_VOCAB_SIZE);
  } else {
    throw unknownTokenizerError(source, choice);
  }

  const dtype = dtypeFor(tokenizer.vocabSize);
  const ids = {} as Record<Split, Uint16Array | Uint32Array>;
  for (const split of ['train', 'val'] as const) {
    const encoder = streamEncoderOf(tokenizer);
    const list = encoder.push(parts[split]);
    for (const id of encoder.end()) list.push(id);
    ids[split] = dtype === 'uint16' ? Uint16Array.from(list) : Uint32Array.from(list);
  }
  checkSplitSizes(source, { train: ids.train.length, val: ids.val.length }, minTokens);

  const meta = dataMetaOf({
    tokenizer,
    trainTokens: ids.train.length,
    valTokens: ids.val.length,
    trainCharacters,
    characters,
    valFraction,
    newlines,
    source: { file: source, bytes: bytes.length, sha256: await sha256Hex(bytes) },
  });
  // The ids come from the tokenizer itself: below its vocabSize by construction.
  const dataset = (split: Split) =>
    TokenDataset.fromTokens(ids[split], {
      split,
      vocabSize: tokenizer.vocabSize,
      source: `${source} (${split} split)`,
      checkIds: false,
    });
  return { meta, tokenizer, train: dataset('train'), val: dataset('val'), location: source };
}

function utf8Bytes(text: string, source: string): Uint8Array {
  // TextEncoder would turn a lone surrogate into U+FFFD: the tokens would not be the text's.
  const lone = findLoneSurrogate(text);
  if (lone >= 0) {
    throw new DataError(
      source,
      `holds a lone surrogate (U+${text.charCodeAt(lone).toString(16).toUpperCase()}) at UTF-16 index ${lone}: it is not valid Unicode text`,
      'Pass text that came from a UTF-8 decoder',
    );
  }
  return new TextEncoder().encode(text);
}

function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    // ignoreBOM keeps a leading U+FEFF as text, as Python's 'utf-8' codec (and binarize) does.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    const checker = new Utf8Checker();
    const offset = checker.push(bytes);
    throw invalidUtf8Error(source, offset >= 0 ? offset : checker.end());
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

// The rules binarize shares. Same messages from both, so a user sees one wording.

export function checkValFraction(source: string, valFraction: number): void {
  if (!(valFraction > 0 && valFraction < 1)) {
    throw new DataError(
      source,
      `valFraction must be between 0 and 1 (exclusive), got ${valFraction}`,
    );
  }
}

/** Characters in the train split: nanoGPT's int(n * 0.9) for the default (1 - 0.1 === 0.9). */
export function trainCharactersOf(characters: number, valFraction: number): number {
  return Math.floor(characters * (1 - valFraction));
}

export function noTextError(source: string, hint: string): DataError {
  return new DataError(source, 'holds no text (after reading it as UTF-8)', hint);
}

export function invalidUtf8Error(source: string, offset: number): DataError {
  return new DataError(
    source,
    invalidUtf8Problem(offset),
    'The file must be UTF-8 text; convert it first (for example: iconv -f LATIN1 -t UTF-8 in > out)',
  );
}

export function unknownTokenizerError(source: string, choice: unknown): DataError {
  return new DataError(source, `unknown tokenizer ${JSON.stringify(choice)}; use 'char' or 'bpe'`);
}

export function checkSplitSizes(
  source: string,
  tokens: Readonly<Record<Split, number>>,
  minTokens: number,
): void {
  for (const split of ['train', 'val'] as const) {
    if (tokens[split] < minTokens) {
      throw new DataError(
        source,
        `the ${split} split has ${tokens[split]} tokens, fewer than the ${minTokens} needed for one training block`,
        'Use a longer text, or a different valFraction',
      );
    }
  }
}

export function streamEncoderOf(tokenizer: Tokenizer): StreamEncoder {
  if (tokenizer.createStreamEncoder) return tokenizer.createStreamEncoder();
  // A tokenizer that cannot stream gets the whole split at once (memory grows with the text).
  const pieces: string[] = [];
  return {
    push: (piece) => {
      pieces.push(piece);
      return [];
    },
    end: () => tokenizer.encode(pieces.splice(0).join('')),
  };
}

export function dataMetaOf(parts: {
  readonly tokenizer: Tokenizer;
  readonly trainTokens: number;
  readonly valTokens: number;
  readonly trainCharacters: number;
  readonly characters: number;
  readonly valFraction: number;
  readonly newlines: NewlineMode;
  readonly source: DataMeta['source'];
}): DataMeta {
  return {
    format: 'minigpt-data',
    formatVersion: DATA_FORMAT_VERSION,
    dtype: dtypeFor(parts.tokenizer.vocabSize),
    vocabSize: parts.tokenizer.vocabSize,
    tokenizer: parts.tokenizer.type,
    trainTokens: parts.trainTokens,
    valTokens: parts.valTokens,
    trainCharacters: parts.trainCharacters,
    valCharacters: parts.characters - parts.trainCharacters,
    valFraction: parts.valFraction,
    newlines: parts.newlines,
    source: parts.source,
  };
}
