// Loads GPT-2-style byte-level BPE tokenizers that other tools wrote: a Hugging Face
// `tokenizer.json`, or GPT-2's older `vocab.json` (= encoder.json) + `merges.txt` (=
// vocab.bpe). Those files spell tokens as strings of GPT-2's byte → printable character
// table; here they become a BpeTokenizer whose byte tokens keep the file's ids (a
// permutation of 0–255). The files are untrusted: every key that changes the ids a text gets
// is checked, sizes are bounded before anything is built, and whatever a BpeTokenizer cannot
// reproduce exactly is refused with a TokenizerError naming the file and the key.
import { MAX_VOCAB_SIZE } from './bpe-train.js';
import { BpeTokenizer, MAX_MERGES, MAX_SPECIAL_TOKENS } from './bpe.js';
import { isIndex, jsonError, preview, typeName } from './json.js';
import { GPT2_SPLIT_PATTERN, SPLIT_PATTERNS, isTrustedSplitPattern } from './pretokenize.js';
import { TokenizerError } from './tokenizer.js';

/**
 * Longest `merges.txt` read, in UTF-16 units. GPT-2's is 0.46 MB; vocabularies of 200k tokens
 * take about 3 MB.
 */
export const MAX_MERGES_TEXT_LENGTH = 32 * 1024 * 1024;

/**
 * GPT-2's byte → character table, the spelling of byte tokens in every byte-level BPE file
 * (read here, written by @minigpt/export-onnx): printable Latin-1 bytes stand for themselves, the other 68
 * (controls, space, soft hyphen…) take the code points from U+0100 up, in byte order.
 */
export const GPT2_BYTE_CHARACTERS: readonly string[] = (() => {
  const table: string[] = [];
  let next = 0x100;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || byte >= 0xae;
    table.push(String.fromCharCode(printable ? byte : next++));
  }
  return table;
})();

/** Where a part of the tokenizer came from: the file, and the key path inside it. */
interface Origin {
  readonly source: string;
  /** The key path, also the error's `rule`. */
  readonly key: string;
  /** How messages name it, when not as the quoted key ("line 7", "the vocabulary"). */
  readonly label?: string;
}

function refuse(origin: Origin, problem: string): TokenizerError {
  return jsonError(origin.source, `${origin.label ?? `"${origin.key}"`} ${problem}`, origin.key);
}

function child(origin: Origin, key: string): Origin {
  return { source: origin.source, key: `${origin.key}${key}` };
}

/** What both file layouts come down to, before it is checked against each other. */
interface ByteLevelFiles {
  readonly pattern: string;
  readonly vocab: Map<string, number>;
  readonly merges: ReadonlyArray<readonly [string, string]>;
  /** Added tokens (tokenizer.json) as content → id; null: vocab.json, whose extras are special. */
  readonly added: Map<string, number> | null;
  readonly origins: {
    readonly vocab: Origin;
    readonly merge: (rank: number) => Origin;
    readonly added: Origin;
  };
}

/**
 * A BpeTokenizer from a Hugging Face `tokenizer.json` (the parsed JSON) whose model is
 * byte-level BPE, as GPT-2's is: `model.type` "BPE", `model.vocab` token → id with the 256
 * byte tokens at ids 0–255 and merge i's result at id 256 + i, `model.merges` as "a b"
 * strings or [a, b] pairs, a ByteLevel pre-tokenizer (with `use_regex`, GPT-2's split
 * pattern) or the Sequence [Split with a trusted regex, ByteLevel] that minigpt's exporter
 * writes, and `added_tokens` after the merges, which become special tokens. Anything that
 * changes the ids in a way a BpeTokenizer cannot reproduce (a normalizer, a prefix space, a
 * template post-processor, dropout, …) is refused with a TokenizerError naming `source` and
 * the key. Ignored: `padding` (batches only), `unk_token`, `fuse_unk` and `byte_fallback` (a
 * byte-level vocabulary has no unknown text), offsets settings.
 */
export function bpeFromHuggingFace(json: unknown, source = 'tokenizer.json'): BpeTokenizer {
  const root = expectObjectAt(json, { source, key: 'json', label: 'the file' });
  const at = (key: string): Origin => ({ source, key });
  expectNullish(root['truncation'], at('truncation'), 'would cut the ids of long texts');
  checkNormalizer(root['normalizer'], at('normalizer'));
  const pattern = splitPattern(root['pre_tokenizer'], at('pre_tokenizer'));
  checkOptionalByteLevel(root['post_processor'], at('post_processor'), 'adds or changes ids');
  checkOptionalByteLevel(root['decoder'], at('decoder'), 'would not decode bytes');
  const model = expectObjectAt(root['model'], at('model'));
  const type = model['type'];
  // Files of older `tokenizers` versions leave the type out; vocab + merges is BPE's shape.
  if (type !== 'BPE' && !(type === undefined && 'vocab' in model && 'merges' in model)) {
    throw refuse(
      at('model.type'),
      `is ${preview(type)}; only byte-level BPE models (type "BPE") load as a BpeTokenizer`,
    );
  }
  const dropout = model['dropout'];
  if (dropout !== undefined && dropout !== null && dropout !== 0) {
    throw refuse(
      at('model.dropout'),
      `is ${preview(dropout)}; BPE dropout skips merges at random, so only null or 0 is supported`,
    );
  }
  for (const key of ['continuing_subword_prefix', 'end_of_word_suffix']) {
    const value = model[key];
    if (value !== undefined && value !== null && value !== '') {
      throw refuse(
        at(`model.${key}`),
        `is ${preview(value)}; byte-level BPE marks no word pieces, so only null or "" is supported`,
      );
    }
  }
  const ignoreMerges = model['ignore_merges'];
  if (ignoreMerges !== undefined && ignoreMerges !== false) {
    throw refuse(
      at('model.ignore_merges'),
      `is ${preview(ignoreMerges)}; taking whole words from the vocabulary ahead of the merges is not supported`,
    );
  }
  return build({
    pattern,
    vocab: readVocab(model['vocab'], at('model.vocab')),
    merges: readMergeList(model['merges'], at('model.merges')),
    added: readAddedTokens(root['added_tokens'], at('added_tokens')),
    origins: {
      vocab: at('model.vocab'),
      merge: (rank) => at(`model.merges[${rank}]`),
      added: at('added_tokens'),
    },
  });
}

/**
 * A BpeTokenizer from GPT-2's older pair of files: `vocab` the parsed `vocab.json`
 * (encoder.json: token → id) and `merges` the text of `merges.txt` (vocab.bpe: one "a b"
 * merge per line, in rank order, after an optional `#version` line). The split pattern is
 * GPT-2's. Vocabulary entries that are neither bytes nor merge results (GPT-2's
 * `<|endoftext|>`, id 50256) become special tokens; their ids must follow the merges'.
 */
export function bpeFromVocabMerges(
  vocab: unknown,
  merges: string,
  source: { vocab?: string; merges?: string } = {},
): BpeTokenizer {
  const vocabOrigin: Origin = {
    source: source.vocab ?? 'vocab.json',
    key: 'vocab',
    label: 'the vocabulary',
  };
  const mergesSource = source.merges ?? 'merges.txt';
  const { merges: pairs, firstLine } = readMergesText(merges, mergesSource);
  return build({
    pattern: GPT2_SPLIT_PATTERN,
    vocab: readVocab(vocab, vocabOrigin),
    merges: pairs,
    added: null,
    origins: {
      vocab: vocabOrigin,
      merge: (rank) => ({
        source: mergesSource,
        key: 'merges',
        label: `line ${firstLine + rank} (merge ${rank})`,
      }),
      added: vocabOrigin,
    },
  });
}

/**
 * Checks the pieces against each other and makes the tokenizer: the byte tokens must be ids
 * 0–255, merge i must join two known tokens into the token of id 256 + i, and every other id
 * must be a special token after the merges, with no id left out.
 */
function build(files: ByteLevelFiles): BpeTokenizer {
  const { vocab, origins } = files;
  const byteIds: number[] = [];
  for (let byte = 0; byte < 256; byte++) {
    const token = GPT2_BYTE_CHARACTERS[byte]!;
    const id = vocab.get(token);
    const what = `byte 0x${byte.toString(16).padStart(2, '0')} (${JSON.stringify(token)})`;
    if (id === undefined) {
      throw refuse(
        origins.vocab,
        `has no token for ${what}; a byte-level vocabulary has a token for each of the 256 bytes`,
      );
    }
    if (id > 255) {
      throw refuse(
        origins.vocab,
        `gives the token of ${what} the id ${id}; the 256 byte tokens must have the ids 0–255 (merges come after them)`,
      );
    }
    byteIds.push(id);
  }

  const mergeIds: Array<[number, number]> = [];
  const idOf = (token: string, rank: number, side: string): number => {
    const id = vocab.get(token);
    if (id === undefined || id >= 256 + rank) {
      const why =
        id === undefined ? 'is not in the vocabulary' : `is made by a later merge (id ${id})`;
      throw refuse(
        origins.merge(rank),
        `joins ${preview(token)} as its ${side} token, which ${why}`,
      );
    }
    return id;
  };
  files.merges.forEach(([first, second], rank) => {
    const firstId = idOf(first, rank, 'first');
    const secondId = idOf(second, rank, 'second');
    const madeId = vocab.get(first + second);
    if (madeId !== 256 + rank) {
      const found =
        madeId === undefined
          ? 'is not in the vocabulary'
          : `has the id ${madeId} in the vocabulary`;
      throw refuse(
        origins.merge(rank),
        `makes ${preview(first + second)}, which ${found}; merge i must make the token of id ` +
          `256 + i (${256 + rank}), as GPT-2's files do`,
      );
    }
    mergeIds.push([firstId, secondId]);
  });

  const firstSpecial = 256 + mergeIds.length;
  const specials = new Map<string, number>(files.added ?? []);
  for (const [token, id] of vocab) {
    if (id < firstSpecial) continue;
    const added = files.added?.get(token);
    if (files.added !== null && added !== id) {
      throw refuse(
        origins.vocab,
        `has ${preview(token)} with the id ${id}, which is neither a byte, a merge's result nor ` +
          `an added token${added === undefined ? '' : ` (added_tokens gives it the id ${added})`}`,
      );
    }
    specials.set(token, id);
  }
  const byId: Array<string | undefined> = [];
  for (const [token, id] of specials) {
    if (id < firstSpecial) {
      const what = vocab.get(token) === id ? 'the vocabulary has it there too' : 'that id is taken';
      throw refuse(
        origins.added,
        `gives ${preview(token)} the id ${id}, among the bytes and merges (ids below ${firstSpecial}; ${what}); ` +
          'special tokens must come after the merges',
      );
    }
    if (id >= firstSpecial + specials.size || byId[id - firstSpecial] !== undefined) {
      throw refuse(
        origins.added,
        `gives ${preview(token)} the id ${id}; the ${specials.size} special tokens must have the ids ` +
          `${firstSpecial}–${firstSpecial + specials.size - 1}, one each (no id left unused)`,
      );
    }
    byId[id - firstSpecial] = token;
  }
  try {
    return new BpeTokenizer({
      pattern: files.pattern,
      byteIds,
      merges: mergeIds,
      specialTokens: Object.fromEntries(specials),
    });
  } catch (error) {
    if (!(error instanceof TokenizerError)) throw error;
    // The merges and specials were checked above; what is left is a special token's text.
    throw jsonError(
      origins.added.source,
      error.message.replace(/^bpe tokenizer: /, ''),
      error.rule ?? origins.added.key,
    );
  }
}

/** token → id; ids are non-negative integers, no two tokens share one. */
function readVocab(value: unknown, origin: Origin): Map<string, number> {
  const object = expectObjectAt(value, origin);
  // One array of the keys the parsed file already holds; for…in twice took 100 ms on GPT-2's.
  const tokens = Object.keys(object);
  if (tokens.length > MAX_VOCAB_SIZE) {
    throw refuse(origin, `has ${tokens.length} entries, more than ${MAX_VOCAB_SIZE}`);
  }
  const vocab = new Map<string, number>();
  const ids = new Int32Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const id = object[token];
    if (!isIndex(id) || id >= MAX_VOCAB_SIZE) {
      throw refuse(
        origin,
        `gives ${preview(token)} the id ${preview(id)}; ids are integers from 0 to ${MAX_VOCAB_SIZE - 1}`,
      );
    }
    vocab.set(token, id);
    ids[i] = id;
  }
  ids.sort();
  for (let i = 1; i < ids.length; i++) {
    if (ids[i] !== ids[i - 1]) continue;
    const shared = tokens.filter((token) => vocab.get(token) === ids[i]);
    throw refuse(
      origin,
      `gives both ${preview(shared[0])} and ${preview(shared[1])} the id ${ids[i]}`,
    );
  }
  return vocab;
}

/** `model.merges`: "a b" strings or [a, b] pairs of token strings. */
function readMergeList(value: unknown, origin: Origin): Array<[string, string]> {
  if (!Array.isArray(value)) {
    throw refuse(
      origin,
      `must be an array of merges ("a b" strings or [a, b] pairs), got ${typeName(value)}`,
    );
  }
  if (value.length > MAX_MERGES) {
    throw refuse(origin, `has ${value.length} entries, more than ${MAX_MERGES}`);
  }
  const merges: Array<[string, string]> = [];
  for (let rank = 0; rank < value.length; rank++) {
    const merge: unknown = value[rank];
    const pair =
      typeof merge === 'string'
        ? merge.split(' ')
        : Array.isArray(merge) && merge.length === 2
          ? merge
          : undefined;
    if (
      pair === undefined ||
      pair.length !== 2 ||
      !pair.every((part) => typeof part === 'string' && part.length > 0)
    ) {
      throw refuse(
        child(origin, `[${rank}]`),
        `must be "first second" (two tokens, one space) or a pair [first, second] of non-empty strings, got ${preview(merge)}`,
      );
    }
    merges.push(pair as [string, string]);
  }
  return merges;
}

/**
 * merges.txt: an optional `#version…` first line, then one "a b" merge per line. Returns the
 * merges and the line number of the first.
 */
function readMergesText(
  text: unknown,
  source: string,
): { merges: Array<[string, string]>; firstLine: number } {
  const origin: Origin = { source, key: 'merges', label: 'the file' };
  let firstLine = 1;
  if (typeof text !== 'string') {
    throw jsonError(source, `expected the text of a merges file, got ${typeName(text)}`, 'merges');
  }
  if (text.length > MAX_MERGES_TEXT_LENGTH) {
    throw jsonError(
      source,
      `the file is ${text.length} characters long, more than ${MAX_MERGES_TEXT_LENGTH}; not a merges file`,
      'merges',
    );
  }
  const merges: Array<[string, string]> = [];
  // Line by line without split(): a file of newlines must not become millions of strings.
  let start = 0;
  for (let line = 1; start < text.length; line++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const content = text.slice(start, text[end - 1] === '\r' ? end - 1 : end);
    start = end + 1;
    if (line === 1 && content.startsWith('#version')) {
      firstLine = 2;
      continue;
    }
    const parts = content.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw jsonError(
        source,
        `line ${line} must be one merge, "first second" (two tokens, one space), got ${preview(content)}`,
        'merges',
      );
    }
    if (merges.length === MAX_MERGES) {
      throw refuse(origin, `has more than ${MAX_MERGES} merges`);
    }
    merges.push(parts as [string, string]);
  }
  return { merges, firstLine };
}

/** added_tokens: content → id. Options that change where a token matches are refused. */
function readAddedTokens(value: unknown, origin: Origin): Map<string, number> {
  const added = new Map<string, number>();
  if (value === undefined || value === null) return added;
  if (!Array.isArray(value)) {
    throw refuse(origin, `must be an array of token objects, got ${typeName(value)}`);
  }
  if (value.length > MAX_SPECIAL_TOKENS) {
    throw refuse(origin, `has ${value.length} entries, more than ${MAX_SPECIAL_TOKENS}`);
  }
  const taken = new Set<number>();
  value.forEach((item: unknown, index) => {
    const at = child(origin, `[${index}]`);
    const token = expectObjectAt(item, at);
    const { id, content } = token;
    if (!isIndex(id) || typeof content !== 'string') {
      throw refuse(
        at,
        `must have an integer "id" and a string "content", got ${preview(id)} and ${preview(content)}`,
      );
    }
    for (const option of ['single_word', 'lstrip', 'rstrip']) {
      if (token[option] !== undefined && token[option] !== false) {
        throw refuse(
          child(at, `.${option}`),
          `is ${preview(token[option])}; only exact matches of the content are supported`,
        );
      }
    }
    if (added.has(content) || taken.has(id)) {
      throw refuse(at, `repeats the content ${preview(content)} or the id ${id} of another entry`);
    }
    added.set(content, id);
    taken.add(id);
  });
  return added;
}

/** The split pattern a pre-tokenizer stands for, when it is one a BpeTokenizer can run. */
function splitPattern(value: unknown, origin: Origin): string {
  if (value === undefined || value === null) {
    throw refuse(origin, 'is missing; a byte-level BPE needs the ByteLevel pre-tokenizer');
  }
  const preTokenizer = expectObjectAt(value, origin);
  if (preTokenizer['type'] === 'ByteLevel') return byteLevelPattern(preTokenizer, origin);
  if (preTokenizer['type'] === 'Sequence') {
    const listOrigin = child(origin, '.pretokenizers');
    const list = preTokenizer['pretokenizers'];
    if (!Array.isArray(list) || list.length < 1 || list.length > 2) {
      throw refuse(
        listOrigin,
        `must be [ByteLevel] or [Split, ByteLevel], got ${preview(list)}; other pre-tokenizers are not supported`,
      );
    }
    const at = (index: number): Origin => child(listOrigin, `[${index}]`);
    const last = expectObjectAt(list[list.length - 1], at(list.length - 1));
    if (last['type'] !== 'ByteLevel') {
      throw refuse(at(list.length - 1), `must be a ByteLevel pre-tokenizer, got ${preview(last)}`);
    }
    if (list.length === 1) return byteLevelPattern(last, at(0));
    const pattern = splitRegex(expectObjectAt(list[0], at(0)), at(0));
    // The Split already cut the text: a ByteLevel that splits again is another tokenizer.
    if (byteLevelPattern(last, at(1), true) !== undefined) {
      throw refuse(
        child(at(1), '.use_regex'),
        'must be false after a Split (the text is already split)',
      );
    }
    return pattern;
  }
  throw refuse(
    origin,
    `is ${preview(value)}; only ByteLevel, or a Sequence of a Split regex and ByteLevel, is supported`,
  );
}

/** GPT-2's pattern for a ByteLevel that splits (use_regex true or absent); else undefined. */
function byteLevelPattern(byteLevel: Record<string, unknown>, origin: Origin): string;
function byteLevelPattern(
  byteLevel: Record<string, unknown>,
  origin: Origin,
  afterSplit: true,
): string | undefined;
function byteLevelPattern(
  byteLevel: Record<string, unknown>,
  origin: Origin,
  afterSplit = false,
): string | undefined {
  if (byteLevel['add_prefix_space'] !== false) {
    throw refuse(
      child(origin, '.add_prefix_space'),
      `is ${preview(byteLevel['add_prefix_space'])}; only false is supported (a space put before the text changes its first token)`,
    );
  }
  const useRegex = byteLevel['use_regex'];
  if (useRegex === undefined || useRegex === true) return GPT2_SPLIT_PATTERN;
  if (useRegex !== false || !afterSplit) {
    throw refuse(
      child(origin, '.use_regex'),
      `is ${preview(useRegex)}; a ByteLevel pre-tokenizer alone must split with GPT-2's pattern (true)`,
    );
  }
  return undefined;
}

/** A Split pre-tokenizer's regex: isolated matches, and a pattern this process trusts. */
function splitRegex(split: Record<string, unknown>, origin: Origin): string {
  if (split['type'] !== 'Split') {
    throw refuse(origin, `must be a Split pre-tokenizer, got ${preview(split)}`);
  }
  if (
    split['behavior'] !== 'Isolated' ||
    (split['invert'] !== undefined && split['invert'] !== false)
  ) {
    throw refuse(
      origin,
      `has behavior ${preview(split['behavior'])} and invert ${preview(split['invert'])}; only "Isolated" ` +
        'and false (each match a piece) are supported',
    );
  }
  const patternOrigin = child(origin, '.pattern.Regex');
  const pattern = split['pattern'];
  const regex =
    typeof pattern === 'object' && pattern !== null && !Array.isArray(pattern)
      ? (pattern as Record<string, unknown>)['Regex']
      : undefined;
  if (typeof regex !== 'string') {
    throw refuse(patternOrigin, `must be a regex source string, got ${preview(pattern)}`);
  }
  // Before the regex is compiled: a pattern from a file is code (see registerSplitPattern).
  if (!isTrustedSplitPattern(regex)) {
    throw refuse(
      patternOrigin,
      `is ${preview(regex)}, not a split pattern this process trusts. A regular expression from a file ` +
        `can hang encoding, so only the built-in patterns (${Object.keys(SPLIT_PATTERNS).join(', ')}) and ` +
        'patterns registered in-process are accepted. If you trust this file, call registerSplitPattern(pattern) ' +
        'from @minigpt/tokenizer with its exact source before loading it',
    );
  }
  return regex;
}

function checkNormalizer(value: unknown, origin: Origin): void {
  if (value === undefined || value === null) return;
  const normalizer = expectObjectAt(value, origin);
  const list = normalizer['normalizers'];
  // An empty Sequence changes nothing.
  if (normalizer['type'] === 'Sequence' && Array.isArray(list) && list.length === 0) return;
  throw refuse(
    origin,
    `is ${preview(value)}; a normalizer changes the text before it is split, which is not supported (null only)`,
  );
}

/** post_processor and decoder: absent, null or ByteLevel (which only touches offsets). */
function checkOptionalByteLevel(value: unknown, origin: Origin, otherwise: string): void {
  if (value === undefined || value === null) return;
  const object = expectObjectAt(value, origin);
  if (object['type'] !== 'ByteLevel') {
    throw refuse(
      origin,
      `is ${preview(value)}, which ${otherwise}; only null or ByteLevel is supported`,
    );
  }
}

function expectNullish(value: unknown, origin: Origin, why: string): void {
  if (value !== undefined && value !== null) {
    throw refuse(origin, `is ${preview(value)}, which ${why}; only null is supported`);
  }
}

function expectObjectAt(value: unknown, origin: Origin): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw refuse(origin, `must be a JSON object, got ${typeName(value)}`);
  }
  return value as Record<string, unknown>;
}
