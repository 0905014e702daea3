// Hugging Face-style companions of an export: config.json (model_type "gpt2", GPT-2 field
// names) and tokenizer.json in the `tokenizers` format. A char vocabulary is a BPE model
// with no merges plus an <unk> token; a minigpt byte-level BPE becomes a ByteLevel BPE with
// its split regex, merges and special tokens.
import type { GPTConfig } from '@minigpt/model/config';
import { tokenizerFromJSON, type TokenizerJSON } from '@minigpt/tokenizer';

export function huggingFaceConfig(config: GPTConfig): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: config.vocabSize,
    n_positions: config.blockSize,
    n_ctx: config.blockSize,
    n_embd: config.nEmbd,
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_inner: 4 * config.nEmbd,
    activation_function: 'gelu', // exact (erf) GELU, as minigpt trains with
    layer_norm_epsilon: 1e-5,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    tie_word_embeddings: true,
    // GPT-2 always has biases; minigpt models may not (their weights then omit them).
    minigpt_bias: config.bias,
  };
}

/** GPT-2's byte → printable character table, used by byte-level BPE vocabularies. */
function byteToUnicode(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
    table[byte] = String.fromCodePoint(printable ? byte : next++);
  }
  return table;
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
    const unkId = vocab.length; // one past the model's vocabulary: never produced by the model
    return {
      ...base,
      added_tokens: [addedToken(unkId, '<unk>')],
      pre_tokenizer: null,
      decoder: { type: 'Fuse' },
      model: {
        ...modelBase,
        unk_token: '<unk>',
        vocab: { ...Object.fromEntries(vocab.map((char, id) => [char, id])), '<unk>': unkId },
        merges: [],
      },
    };
  }
  if (json.type === 'bpe') {
    const bpe = json as unknown as {
      pattern: string;
      merges: Array<[number, number]>;
      specialTokens: Record<string, number>;
    };
    tokenizerFromJSON(json); // validates
    const bytes = byteToUnicode();
    const strings: string[] = bytes.slice();
    for (const [first, second] of bpe.merges) strings.push(strings[first]! + strings[second]!);
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
        vocab: Object.fromEntries(strings.map((token, id) => [token, id])),
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
