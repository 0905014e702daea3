// Hugging Face companions of an export, the files transformers.js (and Python's transformers)
// read beside onnx/model.onnx: config.json (model_type "gpt2", GPT-2 field names, the dtypes
// present), generation_config.json, tokenizer.json in the `tokenizers` format and
// tokenizer_config.json. A char vocabulary is a BPE model with no merges whose unknown
// characters map to a character of the vocabulary (never an id outside the embedding); a
// minigpt byte-level BPE becomes a ByteLevel BPE with its split regex, merges and special
// tokens, its byte tokens at the ids it gives them (GPT-2's order for GPT-2's tokenizer).
import type { GPTConfig } from '@minigpt/model/config';
import { gpt2Config } from '@minigpt/model/huggingface';
import { GPT2_BYTE_CHARACTERS, tokenizerFromJSON, type TokenizerJSON } from '@minigpt/tokenizer';

/** The special tokens a tokenizer JSON has: content → id. */
function specialTokens(json: TokenizerJSON): Record<string, number> {
  if (json.type !== 'bpe') return {};
  return { ...(json as unknown as { specialTokens: Record<string, number> }).specialTokens };
}

/** The end-of-text token GPT-2 uses, when the tokenizer has it: both bos and eos in GPT-2. */
const END_OF_TEXT = '<|endoftext|>';

function endOfText(json: TokenizerJSON): { token: string; id: number } | undefined {
  const id = specialTokens(json)[END_OF_TEXT];
  return id === undefined ? undefined : { token: END_OF_TEXT, id };
}

/**
 * Characters a char model's tokenizer.json maps an unknown character to, first present wins:
 * the replacement character, '?', a space; else id 0. A character the model never saw has no
 * embedding: Hugging Face's BPE would drop it without an unk token, and an unk id past the
 * vocabulary crashes onnxruntime's Gather.
 */
const UNKNOWN_FALLBACKS = ['\uFFFD', '?', ' '];

export function charUnknownToken(vocab: readonly string[]): string {
  return UNKNOWN_FALLBACKS.find((char) => vocab.includes(char)) ?? vocab[0]!;
}

/**
 * The token transformers.js pads a batch with (rows are left-padded and the pads masked, so
 * any id inside the embedding serves): <|endoftext|> as GPT-2 does, else a char model's
 * unknown fallback, else the BPE token of byte 0. Never a special token made up here: its
 * id would be past the embedding.
 */
function padToken(json: TokenizerJSON): { token: string; id: number } {
  const end = endOfText(json);
  if (end) return end;
  if (json.type === 'char') {
    const vocab = (json as unknown as { vocab: string[] }).vocab;
    const token = charUnknownToken(vocab);
    return { token, id: vocab.indexOf(token) };
  }
  // The token of id 0: byte 0's, unless the byte tokens are renumbered (GPT-2's id 0 is "!").
  const byteIds = (json as unknown as BpeJSON).byteIds;
  return { token: GPT2_BYTE_CHARACTERS[byteIds ? byteIds.indexOf(0) : 0]!, id: 0 };
}

export interface HuggingFaceConfigOptions {
  /** An int8 graph (onnx/model_quantized.onnx) is exported too. */
  readonly quantized?: boolean;
}

export function huggingFaceConfig(
  config: GPTConfig,
  tokenizer: TokenizerJSON,
  options: HuggingFaceConfigOptions = {},
): Record<string, unknown> {
  const end = endOfText(tokenizer);
  return {
    // GPT-2's own config.json for this model (one writer for it: @minigpt/model), so the
    // directory is also a GPT-2 directory (`--hf` adds its model.safetensors).
    ...gpt2Config(config, end ? { bosTokenId: end.id, eosTokenId: end.id } : {}),
    // GPT-2 always has biases; minigpt models may not (their weights then omit them).
    minigpt_bias: config.bias,
    use_cache: true,
    // GPT-2 uses <|endoftext|> for both; a tokenizer without it has no special ids to name.
    bos_token_id: end?.id ?? null,
    eos_token_id: end?.id ?? null,
    pad_token_id: padToken(tokenizer).id,
    'transformers.js_config': {
      // transformers.js picks onnx/model{suffix}.onnx by dtype, and on wasm it defaults to
      // q8 (model_quantized.onnx): naming fp32 keeps it to the file that is always there.
      dtype: 'fp32',
      // The dtypes whose files this export has (`dtype: 'q8'` picks the int8 graph).
      minigpt_dtypes: options.quantized ? ['fp32', 'q8'] : ['fp32'],
    },
  };
}

/** generation_config.json: generation may not run past the position table. */
export function huggingFaceGenerationConfig(
  config: GPTConfig,
  tokenizer: TokenizerJSON,
): Record<string, unknown> {
  const end = endOfText(tokenizer);
  return {
    max_length: config.blockSize,
    pad_token_id: padToken(tokenizer).id,
    ...(end ? { bos_token_id: end.id, eos_token_id: end.id } : {}),
  };
}

/** tokenizer_config.json: the class transformers.js builds, the window, special tokens. */
export function huggingFaceTokenizerConfig(
  config: GPTConfig,
  tokenizer: TokenizerJSON,
): Record<string, unknown> {
  const end = endOfText(tokenizer);
  return {
    tokenizer_class: 'GPT2Tokenizer',
    model_max_length: config.blockSize,
    add_bos_token: false,
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    bos_token: end?.token ?? null,
    eos_token: end?.token ?? null,
    unk_token:
      tokenizer.type === 'char'
        ? charUnknownToken((tokenizer as unknown as { vocab: string[] }).vocab)
        : null,
    // Batches are left-padded: each row's last token is the one whose logits come next.
    pad_token: padToken(tokenizer).token,
    padding_side: 'left',
  };
}

/** The fields of minigpt's BPE tokenizer JSON this file reads. */
interface BpeJSON {
  pattern: string;
  /** byteIds[byte]: the id of the byte's token; absent: the byte itself. */
  byteIds?: number[];
  merges: Array<[number, number]>;
  specialTokens: Record<string, number>;
}

/** Each byte and merged token's string in the vocabulary, by id. */
function bpeTokenStrings(bpe: BpeJSON): string[] {
  const bytes = GPT2_BYTE_CHARACTERS;
  const strings: string[] = new Array<string>(256);
  for (let byte = 0; byte < 256; byte++) strings[bpe.byteIds?.[byte] ?? byte] = bytes[byte]!;
  for (const [first, second] of bpe.merges) strings.push(strings[first]! + strings[second]!);
  return strings;
}

export function huggingFaceTokenizer(json: TokenizerJSON): Record<string, unknown> {
  const base = {
    version: '1.0',
    truncation: null,
    padding: null,
    normalizer: null,
    post_processor: null,
  };
  const modelBase = {
    type: 'BPE',
    dropout: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
  };
  if (json.type === 'char') {
    const vocab = (json as unknown as { vocab: string[] }).vocab;
    return {
      ...base,
      added_tokens: [],
      pre_tokenizer: null,
      decoder: { type: 'Fuse' },
      model: {
        ...modelBase,
        // An unknown character becomes this one: an id inside the embedding.
        unk_token: charUnknownToken(vocab),
        vocab: Object.fromEntries(vocab.map((char, id) => [char, id])),
        merges: [],
      },
    };
  }
  if (json.type === 'bpe') {
    const bpe = json as unknown as BpeJSON;
    tokenizerFromJSON(json); // validates
    const strings = bpeTokenStrings(bpe);
    const vocab = Object.fromEntries(strings.map((token, id) => [token, id]));
    // A tokenizer read from GPT-2-style files (its byte tokens renumbered) is written back as
    // they are: its special tokens in the vocabulary too, so GPT-2's vocabulary comes out
    // equal. Tokenizers minigpt trained keep the form earlier exports had.
    if (bpe.byteIds !== undefined) Object.assign(vocab, bpe.specialTokens);
    return {
      ...base,
      added_tokens: Object.entries(bpe.specialTokens).map(([content, id]) =>
        addedToken(id, content),
      ),
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: bpe.pattern }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
      decoder: {
        type: 'ByteLevel',
        add_prefix_space: false,
        trim_offsets: false,
        use_regex: false,
      },
      model: {
        ...modelBase,
        unk_token: null,
        vocab,
        merges: bpe.merges.map(([first, second]) => [strings[first]!, strings[second]!]),
      },
    };
  }
  throw new Error(`no Hugging Face tokenizer form for tokenizer type "${json.type}"`);
}

function addedToken(id: number, content: string) {
  return {
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  };
}
