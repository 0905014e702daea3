// GPT-2 directories in the Hugging Face layout: config.json (GPT2Config's keys) and
// model.safetensors (GPT2LMHeadModel's weights, whose Conv1D layers store (in, out) as minigpt
// does), read into a checked GPTConfig and weights, and written back. Every file is untrusted.
// No fs and no tfjs: callers pass a `read` function, so it runs in a browser too.
import { preview } from '@minigpt/errors';
import {
  ConfigError,
  GPT_CONFIG_BOUNDS,
  ModelError,
  countParameters,
  validateGPTConfig,
  type GPTConfig,
} from './config.js';
import {
  SAFETENSORS_MAX_HEADER_BYTES,
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
} from './safetensors.js';
import { checkWeights, weightShapes, type WeightData, type WeightToCheck } from './weights.js';

export const GPT2_CONFIG_FILE = 'config.json';
export const GPT2_WEIGHTS_FILE = 'model.safetensors';

/** What a GPT-2 directory holds; the tokenizer files are read by @minigpt/tokenizer. */
export const GPT2_DIRECTORY_LAYOUT =
  'config.json, model.safetensors, and tokenizer.json or vocab.json + merges.txt';

/** The largest config.json read: GPT-2's is under 1 KB; this leaves room for any extra keys. */
export const GPT2_CONFIG_MAX_BYTES = 1 << 20;

/**
 * Reads one file of the directory by name: its bytes, or undefined when it does not exist.
 * `maxBytes` is the most the file may hold; a reader may refuse a larger file without reading
 * it (the directory reader refuses it anyway).
 */
export type Gpt2FileReader = (name: string, maxBytes: number) => Promise<Uint8Array | undefined>;

export interface ReadGpt2DirectoryOptions {
  /** The directory's path, which messages put before each file's name. */
  readonly directory?: string;
  /** The context to keep (default: the file's n_positions); fewer crops wpe to its first rows. */
  readonly blockSize?: number;
  /** Dropout for training (default 0); the file's *_pdrop values are not used. */
  readonly dropout?: number;
}

export interface Gpt2Directory {
  /** bias true; activation 'gelu_tanh' for "gelu_new" / "gelu_pytorch_tanh", 'gelu' for "gelu". */
  readonly config: GPTConfig;
  /** Checked weights in `weightShapes(config)` order, float32; wpe cropped to blockSize rows. */
  readonly weights: Map<string, WeightData>;
  /** The paths of the files read, as messages name them. */
  readonly files: { readonly config: string; readonly weights: string };
  /** config.json's n_positions: the rows of wpe in the file. */
  readonly nPositions: number;
  /** The dtypes the weights were stored in (F16 and BF16 are widened exactly to float32). */
  readonly storedDtypes: readonly ('F32' | 'F16' | 'BF16')[];
  /** config.json's bos_token_id and eos_token_id, when it names them. */
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
}

/** Rules of this reader; errors from the safetensors and weight checks keep their own. */
export type Gpt2DirectoryRule =
  | 'missing-file'
  | 'file-size'
  | 'config-json'
  | 'model-type'
  | 'config-value'
  | 'config-unsupported'
  | 'block-size'
  | 'tensor-name'
  | 'lm-head';

type Fail = (rule: Gpt2DirectoryRule, problem: string, fix: string) => never;

function failer(path: string): Fail {
  return (rule, problem, fix) => {
    throw new ModelError(`${path}: ${problem} [${rule}] — ${fix}`, { file: path, rule });
  };
}

/**
 * Reads a GPT-2 directory in the Hugging Face layout: config.json first (checked, and the
 * model's size bounded, before model.safetensors is asked for), then the weights, with or
 * without the "transformer." prefix, in F32, F16 or BF16. The attention-mask buffers
 * (`h.{i}.attn.bias`, `h.{i}.attn.masked_bias`) are ignored; `lm_head.weight`, when present,
 * must equal `wte.weight` bit for bit (only tied heads are read). Anything else throws a
 * `ModelError` whose message starts with the file's path and names the key or tensor.
 */
export async function readGpt2Directory(
  read: Gpt2FileReader,
  options: ReadGpt2DirectoryOptions = {},
): Promise<Gpt2Directory> {
  const pathOf = (name: string) =>
    options.directory === undefined ? name : `${options.directory.replace(/[\\/]+$/, '')}/${name}`;
  const configPath = pathOf(GPT2_CONFIG_FILE);
  const weightsPath = pathOf(GPT2_WEIGHTS_FILE);

  const readFile = async (name: string, path: string, maxBytes: number): Promise<Uint8Array> => {
    const fail: Fail = failer(path);
    const bytes = await read(name, maxBytes);
    if (bytes === undefined) {
      fail(
        'missing-file',
        'no such file',
        `a GPT-2 directory in the Hugging Face layout holds ${GPT2_DIRECTORY_LAYOUT} (as the Hugging Face "gpt2" repository has them)`,
      );
    }
    if (bytes.length > maxBytes) {
      fail(
        'file-size',
        `is ${bytes.length} bytes, more than the ${maxBytes} it can hold${name === GPT2_CONFIG_FILE ? '' : ' for the model config.json describes'}`,
        'the file is damaged or belongs to another model',
      );
    }
    return bytes;
  };

  const fromFile = parseGpt2Config(
    await readFile(GPT2_CONFIG_FILE, configPath, GPT2_CONFIG_MAX_BYTES),
    configPath,
    options.dropout ?? 0,
  );
  const { fileConfig, bosTokenId, eosTokenId } = fromFile;
  const nPositions = fileConfig.blockSize;
  const blockSize = options.blockSize ?? nPositions;
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0 || blockSize > nPositions) {
    failer(configPath)(
      'block-size',
      `"n_positions" is ${nPositions}, and the requested blockSize is ${preview(blockSize)}; the model has position embeddings for n_positions positions only`,
      `ask for a blockSize from 1 to ${nPositions} (fewer keeps the first rows of wpe)`,
    );
  }
  const config = checkedConfig({ ...fileConfig, blockSize }, configPath);

  const bytes = await readFile(GPT2_WEIGHTS_FILE, weightsPath, weightsFileLimit(fileConfig));
  const fail: Fail = failer(weightsPath);
  const { tensors } = decodeSafetensors(bytes, weightsPath, {
    widenHalf: true,
    skip: (name) => isAttentionMask(withoutPrefix(name), fileConfig.nLayer),
  });
  const byName = new Map<string, SafeTensor>();
  const stored = new Map<string, string>();
  let head: SafeTensor | undefined;
  for (const [name, tensor] of tensors) {
    const short = withoutPrefix(name);
    if (short === 'lm_head.weight') {
      head = tensor;
      continue;
    }
    if (byName.has(short)) {
      fail(
        'tensor-name',
        `tensors ${preview(stored.get(short))} and ${preview(name)} are both ${preview(short)} once the "transformer." prefix is dropped`,
        'a file must hold each weight once; the file was not saved by a GPT-2 model',
      );
    }
    byName.set(short, tensor);
    stored.set(short, name);
  }
  // n_positions rows of wpe, as in the file; cropped below.
  const checked = checkWeights(fileConfig, byName, weightsPath);
  const wte = checked.get('wte.weight')!;
  if (head !== undefined) checkTiedHead(head, wte, fail);

  const weights = new Map<string, WeightData>();
  for (const [name, weight] of checked) {
    weights.set(
      name,
      name === 'wpe.weight' && blockSize < nPositions
        ? { shape: [blockSize, config.nEmbd], data: weight.data.slice(0, blockSize * config.nEmbd) }
        : weight,
    );
  }
  const storedDtypes = [
    ...new Set([...checked.keys()].map((name) => byName.get(name)!.storedAs ?? 'F32')),
  ];
  return {
    config,
    weights,
    files: { config: configPath, weights: weightsPath },
    nPositions,
    storedDtypes,
    ...(bosTokenId === undefined ? {} : { bosTokenId }),
    ...(eosTokenId === undefined ? {} : { eosTokenId }),
  };
}

/** The activation_function values read, and the GELU each is. */
const ACTIVATIONS: Record<string, 'gelu' | 'gelu_tanh'> = {
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu: 'gelu',
};

/** minigpt's LayerNorm epsilon; GPT-2's layer_norm_epsilon must be it. */
const LAYER_NORM_EPSILON = 1e-5;

/** The config.json keys that size the model, and the GPTConfig key each becomes. */
const SIZE_KEYS = {
  n_layer: 'nLayer',
  n_head: 'nHead',
  n_embd: 'nEmbd',
  n_positions: 'blockSize',
  vocab_size: 'vocabSize',
} as const;

/**
 * config.json → the model it describes, with blockSize = n_positions. Keys that do not change
 * the forward pass (summary_*, task_specific_params, *_pdrop, …) are ignored; keys that would
 * change it must hold GPT-2's values (or be absent, meaning transformers' GPT2Config default).
 */
function parseGpt2Config(
  bytes: Uint8Array,
  path: string,
  dropout: number,
): { fileConfig: GPTConfig; bosTokenId?: number; eosTokenId?: number } {
  const fail: Fail = failer(path);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    return fail(
      'config-json',
      `is not valid UTF-8 JSON (${(error as Error).message.split('\n')[0]!.slice(0, 120)})`,
      'the file is damaged; get it again',
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    fail(
      'config-json',
      `is ${preview(parsed)}, not a JSON object`,
      'the file is damaged; get it again',
    );
  }
  const record = parsed as Record<string, unknown>;
  const value = (key: string): unknown => (Object.hasOwn(record, key) ? record[key] : undefined);

  const modelType = value('model_type');
  if (modelType !== 'gpt2') {
    fail(
      'model-type',
      `"model_type" is ${preview(modelType)}; only GPT-2 models ("model_type": "gpt2") are read`,
      'use a GPT-2 checkpoint (gpt2, gpt2-medium, gpt2-large, gpt2-xl or a fine-tune of one)',
    );
  }

  const sizes = {} as Record<(typeof SIZE_KEYS)[keyof typeof SIZE_KEYS], number>;
  for (const [key, ours] of Object.entries(SIZE_KEYS)) {
    const size = value(key);
    if (!Number.isSafeInteger(size) || (size as number) <= 0) {
      fail(
        'config-value',
        `${preview(key)} is ${size === undefined ? 'missing' : preview(size)}; it must be a positive integer`,
        'the file is damaged or is not a GPT-2 config',
      );
    }
    const bound = GPT_CONFIG_BOUNDS[ours];
    if ((size as number) > bound) {
      fail(
        'config-value',
        `${preview(key)} is ${size as number}, more than ${bound}, far larger than any model this package builds`,
        'the file is damaged or is not a GPT-2 config',
      );
    }
    sizes[ours] = size as number;
  }
  const nCtx = value('n_ctx');
  if (nCtx !== undefined && nCtx !== sizes.blockSize) {
    fail(
      'config-value',
      `"n_ctx" is ${preview(nCtx)} but "n_positions" is ${sizes.blockSize}; they must agree`,
      'the file is damaged or was edited by hand',
    );
  }
  if (sizes.nEmbd % sizes.nHead !== 0) {
    fail(
      'config-value',
      `"n_embd" (${sizes.nEmbd}) is not divisible by "n_head" (${sizes.nHead})`,
      'the file is damaged or is not a GPT-2 config',
    );
  }

  const unsupported = (key: string, found: unknown, rule: string): never =>
    fail(
      'config-unsupported',
      `${preview(key)} is ${preview(found)}; ${rule}`,
      'this model differs from GPT-2 in a way minigpt does not build',
    );
  const epsilon = value('layer_norm_epsilon') ?? LAYER_NORM_EPSILON;
  // Within float32 rounding: a file may hold 1e-5 as float32 (9.99999974737875e-6).
  if (
    typeof epsilon !== 'number' ||
    !(Math.abs(epsilon - LAYER_NORM_EPSILON) <= LAYER_NORM_EPSILON * 1e-6)
  ) {
    unsupported(
      'layer_norm_epsilon',
      epsilon,
      `minigpt's LayerNorm uses epsilon ${LAYER_NORM_EPSILON}, as GPT-2 does`,
    );
  }
  const activationName = value('activation_function') ?? 'gelu_new';
  const activation =
    typeof activationName === 'string' && Object.hasOwn(ACTIVATIONS, activationName)
      ? ACTIVATIONS[activationName]!
      : unsupported(
          'activation_function',
          activationName,
          `minigpt's MLP runs ${Object.keys(ACTIVATIONS)
            .map((name) => `"${name}"`)
            .join(', ')}`,
        );
  const inner = value('n_inner');
  if (inner !== undefined && inner !== null && inner !== 4 * sizes.nEmbd) {
    unsupported('n_inner', inner, `minigpt's MLP is 4 × n_embd = ${4 * sizes.nEmbd} wide`);
  }
  for (const [key, wanted] of [
    ['tie_word_embeddings', true],
    ['scale_attn_weights', true],
    ['scale_attn_by_inverse_layer_idx', false],
    ['reorder_and_upcast_attn', false],
    ['add_cross_attention', false],
  ] as const) {
    const found = value(key);
    if (found !== undefined && found !== wanted) {
      unsupported(key, found, `minigpt builds GPT-2 with ${key} ${String(wanted)}`);
    }
  }
  const tokenId = (key: string): number | undefined => {
    const id = value(key);
    if (id === undefined || id === null) return undefined;
    if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= sizes.vocabSize) {
      fail(
        'config-value',
        `${preview(key)} is ${preview(id)}; it must be a token id from 0 to ${sizes.vocabSize - 1} ("vocab_size" ${sizes.vocabSize})`,
        'the file is damaged or was edited by hand',
      );
    }
    return id as number;
  };
  const bosTokenId = tokenId('bos_token_id');
  const eosTokenId = tokenId('eos_token_id');
  const fileConfig = checkedConfig({ ...sizes, dropout, bias: true, activation }, path);
  return {
    fileConfig,
    ...(bosTokenId === undefined ? {} : { bosTokenId }),
    ...(eosTokenId === undefined ? {} : { eosTokenId }),
  };
}

/** validateGPTConfig (the parameter bound, dropout's range), its ConfigError as a ModelError. */
function checkedConfig(config: GPTConfig, path: string): GPTConfig {
  try {
    return validateGPTConfig(config, path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // The message already starts with `path`.
    throw new ModelError(error.message, {
      file: path,
      rule: error.rule ?? 'config-value',
      cause: error,
    });
  }
}

/**
 * The most bytes model.safetensors can hold for `config` (blockSize = n_positions): every
 * weight and an lm_head copy of wte in float32, the attention masks ((1, 1, n_positions,
 * n_positions) per layer, 4 bytes each, and a scalar), and the largest header.
 */
function weightsFileLimit(config: GPTConfig): number {
  const floats = countParameters(config, true) + config.vocabSize * config.nEmbd;
  const masks = config.nLayer * (config.blockSize * config.blockSize + 1);
  return 8 + SAFETENSORS_MAX_HEADER_BYTES + 4 * (floats + masks);
}

function withoutPrefix(name: string): string {
  return name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
}

/** `h.{i}.attn.bias` / `h.{i}.attn.masked_bias` of a layer the model has: buffers, not weights. */
function isAttentionMask(name: string, nLayer: number): boolean {
  const match = /^h\.(0|[1-9]\d{0,5})\.attn\.(?:bias|masked_bias)$/.exec(name);
  return match !== null && Number(match[1]) < nLayer;
}

/** lm_head.weight must be wte.weight, bit for bit: minigpt's head is tied to the embedding. */
function checkTiedHead(head: SafeTensor, wte: WeightData, fail: Fail): void {
  const fix = 'only GPT-2 models whose LM head is tied to the token embedding (wte) are read';
  if (!(head.data instanceof Float32Array) || head.shape.join(',') !== wte.shape.join(',')) {
    fail(
      'lm-head',
      `tensor "lm_head.weight" (${head.storedAs ?? head.dtype}, shape [${head.shape.join(', ')}]) is not the float shape of "wte.weight" [${wte.shape.join(', ')}]`,
      fix,
    );
  }
  const headBits = new Uint32Array(
    (head.data as Float32Array).buffer,
    (head.data as Float32Array).byteOffset,
    head.data.length,
  );
  const wteBits = new Uint32Array(wte.data.buffer, wte.data.byteOffset, wte.data.length);
  for (let i = 0; i < wteBits.length; i++) {
    if (headBits[i] !== wteBits[i]) {
      fail(
        'lm-head',
        `tensor "lm_head.weight" differs from "wte.weight" at index ${i} (${head.data[i]} vs ${wte.data[i]})`,
        fix,
      );
    }
  }
}

export interface Gpt2DirectoryFilesOptions {
  /** Written as config.json's bos_token_id (GPT-2's tokenizer: 50256, <|endoftext|>). */
  readonly bosTokenId?: number;
  /** Written as config.json's eos_token_id. */
  readonly eosTokenId?: number;
}

/**
 * config.json and model.safetensors of a GPT-2 directory in the Hugging Face layout (GPT-2's
 * names without a prefix, Conv1D layout, float32, metadata {"format": "pt"}), for `config` and
 * its weights (checked first, as `checkWeights` does). GPT-2 always has biases: a model
 * without them (`bias: false`) is written with zero biases, the same function, so reading the
 * directory back gives `bias: true` and those zeros. `readGpt2Directory` reads the files back
 * bit-identical.
 */
export function gpt2DirectoryFiles(
  config: GPTConfig,
  weights: ReadonlyMap<string, WeightToCheck>,
  options: Gpt2DirectoryFilesOptions = {},
): Map<string, Uint8Array> {
  const checked = validateGPTConfig({ ...config });
  const data = checkWeights(checked, weights, 'weights');
  const hfConfig = gpt2Config(checked, options); // checks the token ids before any copy
  const tensors = [...weightShapes({ ...checked, bias: true })].map(([name, shape]) => {
    // A bias-free model's biases are zeros: the same function in GPT-2's layout.
    const values = data.get(name)?.data ?? new Float32Array(shape.reduce((a, b) => a * b, 1));
    return [name, { dtype: 'F32', shape, data: values }] as const;
  });
  return new Map([
    [GPT2_CONFIG_FILE, new TextEncoder().encode(`${JSON.stringify(hfConfig, null, 2)}\n`)],
    [GPT2_WEIGHTS_FILE, encodeSafetensors(tensors, { format: 'pt' })],
  ]);
}

/**
 * The config.json of a GPT-2 directory in the Hugging Face layout for `config`: what
 * transformers' GPT2Config reads, and what readGpt2Directory reads back to `config` (with
 * `bias: true`). Exporters that add their own keys (transformers.js's) start from it.
 */
export function gpt2Config(
  config: GPTConfig,
  options: Gpt2DirectoryFilesOptions = {},
): Record<string, unknown> {
  const checked = validateGPTConfig({ ...config });
  const tokenId = (key: string, id: number | undefined): number | null => {
    if (id === undefined) return null;
    if (!Number.isSafeInteger(id) || id < 0 || id >= checked.vocabSize) {
      throw new ConfigError(
        `${key} must be a token id from 0 to ${checked.vocabSize - 1}, got ${preview(id)}`,
        { rule: 'token-id' },
      );
    }
    return id;
  };
  const bosTokenId = tokenId('bosTokenId', options.bosTokenId);
  const eosTokenId = tokenId('eosTokenId', options.eosTokenId);
  const { nLayer, nHead, nEmbd, blockSize, vocabSize, dropout } = checked;
  const activation = checked.activation ?? 'gelu';
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: vocabSize,
    n_positions: blockSize,
    n_ctx: blockSize,
    n_embd: nEmbd,
    n_layer: nLayer,
    n_head: nHead,
    n_inner: null,
    activation_function: activation === 'gelu_tanh' ? 'gelu_new' : 'gelu',
    layer_norm_epsilon: LAYER_NORM_EPSILON,
    resid_pdrop: dropout,
    embd_pdrop: dropout,
    attn_pdrop: dropout,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    ...(bosTokenId === null ? {} : { bos_token_id: bosTokenId }),
    ...(eosTokenId === null ? {} : { eos_token_id: eosTokenId }),
    torch_dtype: 'float32',
  };
}
