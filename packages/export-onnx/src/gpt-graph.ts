// The GPT as one ONNX graph that serves both prefill and KV-cache decode, batched, in the
// signature Hugging Face's exporters give GPT-2 (so transformers.js runs it as it is):
//   inputs  input_ids (B, T) int64; attention_mask (B, P+T) int64, 1 = a real token, 0 = a
//           pad; position_ids (B, T) int64; past_key_values.{i}.key|value (B, nh, P, hs)
//           float32; with the numLogitsToKeep option, num_logits_to_keep () int64 too
//   outputs logits (B, T, V) (or (B, k, V)); present.{i}.key|value (B, nh, P+T, hs)
// Query t of row b sees cache slots s ≤ P+t whose attention_mask[b, s] is 1, so rows of one
// batch may be left-padded to a common length. Positions come from position_ids (a Gather of
// wpe): an id ≥ blockSize is an onnxruntime error, never a silently short result.
// Only standard ops at opset 17, so onnxruntime-node (CPU, CUDA) and onnxruntime-web (wasm,
// WebGPU) all run it. The math is @minigpt/model's: pre-LN blocks, the config's GELU (exact:
// Div → Erf; tanh: Mul/Add → Tanh; onnxruntime fuses either into one kernel), LayerNorm eps
// 1e-5, LM head tied to wte.
//
// Dimensions: B batch, T new tokens, P cached tokens, C nEmbd, nh heads, hs = C/nh, V vocab.
import { activationOf, type GPTConfig } from '@minigpt/model/config';
import { PAST_ATTENTION_BRANCH } from '@minigpt/runtime';
import { Graph, DataType, floatInitializer, int64Initializer, int8Initializer } from './onnx.js';

export const OPSET = 17;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const TANH_GELU_CUBIC = 0.044715;
export const IR_VERSION = 8;

export const GRAPH_NAMES = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  numLogitsToKeep: 'num_logits_to_keep',
  pastKey: 'past_key_values.{i}.key',
  pastValue: 'past_key_values.{i}.value',
  logits: 'logits',
  presentKey: 'present.{i}.key',
  presentValue: 'present.{i}.value',
  /**
   * This step's rows of present (B, nh, T, hs): values inside the graph, not declared
   * outputs. transformers.js fetches every declared output (on WebGPU each would be one more
   * read back per step), so only a runner that wants them declares them (cacheRowsModel in @minigpt/runtime).
   */
  rowsKey: 'new_key_values.{i}.key',
  rowsValue: 'new_key_values.{i}.value',
} as const;

/** Symbolic dims, named as Hugging Face's exporters name them: transformers.js sizes its
 * empty cache from `batch_size` and takes every other symbol as 0. */
export const GRAPH_DIMS = {
  batch: 'batch_size',
  sequence: 'sequence_length',
  past: 'past_sequence_length',
  total: 'past_sequence_length + sequence_length',
  logits: 'logits_length',
} as const;

const name = (pattern: string, layer: number) => pattern.replace('{i}', String(layer));

export interface Weight {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface GraphOptions {
  /**
   * Adds the scalar input num_logits_to_keep (0 = logits for every position, k = the last
   * k), so a prefill runs the LM head on one position. Off in exports: it speeds a prefill
   * only (2.8× for 128 tokens at vocab 50,257, nothing at 65; decode steps not at all:
   * bench/logits-to-keep.bench.mjs), and transformers.js v3 cannot run a graph with an input
   * it does not know, while v3 and v4 both run the graph without it.
   */
  readonly numLogitsToKeep?: boolean;
  /**
   * 'int8': every MatMul with a weight (attention, MLP, LM head) runs as
   * DynamicQuantizeLinear → MatMulInteger on int8 weights, symmetric per output column.
   * Embeddings, LayerNorms and biases stay float32. Default: float32 throughout.
   */
  readonly quantize?: 'int8';
  /**
   * Build each block from onnxruntime's com.microsoft operators — SkipLayerNormalization
   * (residual add + bias + LayerNorm), MultiHeadAttention (bias, mask, past and present in
   * one kernel), BiasGelu / FastGelu — instead of ~30 standard operators. onnxruntime-node
   * and onnxruntime-web (wasm, WebGPU) have them; other ONNX runtimes do not.
   */
  readonly fused?: boolean;
}

export function buildGptGraph(
  config: GPTConfig,
  weights: ReadonlyMap<string, Weight>,
  options: GraphOptions = {},
): Graph {
  const { nLayer, nHead, nEmbd: c, vocabSize } = config;
  const headSize = c / nHead;
  const graph = new Graph('minigpt');
  // The attention scale 1/√hs is folded into the query columns of c_attn (weights and
  // bias), which saves a Mul per layer and per token at decode time.
  const scale = 1 / Math.sqrt(headSize);
  const scaledQuery = (key: string, data: Float32Array): Float32Array => {
    if (!/^h\.\d+\.attn\.c_attn\.(weight|bias)$/.test(key)) return data;
    const out = data.slice();
    const columns = 3 * c; // weight (C, 3C) row-major; bias (3C): the first C columns are q
    for (let index = 0; index < out.length; index++) if (index % columns < c) out[index]! *= scale;
    return out;
  };
  const weightData = (key: string): Weight => {
    const w = weights.get(key);
    if (!w) throw new Error(`weights: "${key}" is missing`);
    return { shape: w.shape, data: scaledQuery(key, w.data) };
  };
  const weight = (key: string): string => {
    const w = weightData(key);
    return graph.initializer(floatInitializer(key, w.shape, w.data));
  };
  const optional = (key: string): string | undefined =>
    weights.has(key) ? weight(key) : undefined;
  const constant = (key: string, values: number[], dims: number[] = []) =>
    graph.initializer(floatInitializer(key, dims, Float32Array.from(values)));
  const int64s = (key: string, values: number[], dims: number[] = [values.length]) =>
    graph.initializer(int64Initializer(key, dims, values));
  const { batch, sequence, past, total } = GRAPH_DIMS;

  // Graph inputs and outputs, with symbolic dims.
  const input = (inputName: string, dataType: 1 | 7, dims: Array<string | number>) =>
    graph.inputs.push({ name: inputName, dataType, dims });
  input(GRAPH_NAMES.inputIds, DataType.INT64, [batch, sequence]);
  input(GRAPH_NAMES.attentionMask, DataType.INT64, [batch, total]);
  input(GRAPH_NAMES.positionIds, DataType.INT64, [batch, sequence]);
  if (options.numLogitsToKeep) input(GRAPH_NAMES.numLogitsToKeep, DataType.INT64, []);
  for (let layer = 0; layer < nLayer; layer++) {
    for (const pattern of [GRAPH_NAMES.pastKey, GRAPH_NAMES.pastValue])
      input(name(pattern, layer), DataType.FLOAT, [batch, nHead, past, headSize]);
  }
  graph.outputs.push({
    name: GRAPH_NAMES.logits,
    dataType: DataType.FLOAT,
    dims: [batch, options.numLogitsToKeep ? GRAPH_DIMS.logits : sequence, vocabSize],
  });
  for (let layer = 0; layer < nLayer; layer++) {
    for (const pattern of [GRAPH_NAMES.presentKey, GRAPH_NAMES.presentValue]) {
      graph.outputs.push({
        name: name(pattern, layer),
        dataType: DataType.FLOAT,
        dims: [batch, nHead, total, headSize],
      });
    }
  }

  // Constants.
  const axis0 = int64s('const.axis0', [0]);
  const axis1 = int64s('const.axis1', [1]);
  const axes12 = int64s('const.axes12', [1, 2]);
  const oneIndex = int64s('const.one_index', [1], []);
  const zeroBias = constant('const.mask_keep', [0]);
  const blockedBias = constant('const.mask_block', [-1e9]);

  // Attention bias (B, 1, T, P+T): 0 where query t may see cache slot s (s ≤ P+t, and slot s
  // is a real token of its row), −1e9 elsewhere. A pad query sees nothing and gets a uniform
  // softmax — finite, and its logits are never read.
  const scalar = (oneElement: string) => graph.op('Squeeze', [oneElement, axis0]);
  const pastLength = graph.op('Shape', [name(GRAPH_NAMES.pastKey, 0)], {
    start: { type: 'int', value: 2 },
    end: { type: 'int', value: 3 },
  }); // [P]
  const newLength = graph.op('Shape', [GRAPH_NAMES.inputIds], {
    start: { type: 'int', value: 1 },
    end: { type: 'int', value: 2 },
  }); // [T]
  const totalLength = graph.op('Add', [pastLength, newLength]); // [P+T]
  const slots = graph.op('Range', [int64s('const.zero', [0], []), scalar(totalLength), oneIndex]); // (P+T)
  const queries = graph.op('Unsqueeze', [
    graph.op('Range', [scalar(pastLength), scalar(totalLength), oneIndex]),
    axis1,
  ]); // (T, 1): each query's own slot
  const causal = graph.op('LessOrEqual', [slots, queries]); // (T, P+T)
  const real = graph.op('Cast', [graph.op('Unsqueeze', [GRAPH_NAMES.attentionMask, axes12])], {
    to: { type: 'int', value: DataType.BOOL },
  }); // (B, 1, 1, P+T)
  const allowed = graph.op('And', [causal, real]); // (B, 1, T, P+T)
  const attentionBias = graph.op('Where', [allowed, zeroBias, blockedBias]); // (B, 1, T, P+T)

  // Embeddings: wte[input_ids] + wpe[position_ids].
  const wte = weight('wte.weight'); // (V, C)
  // The node names are what onnxruntime's error quotes for an index out of range, so a
  // caller who runs past the window (or feeds a foreign id) reads which rule it broke.
  const gather = (table: string, ids: string, rule: string) =>
    graph.node('Gather', [table, ids], {
      attributes: { axis: { type: 'int', value: 0 } },
      name: rule,
    })[0]!; // (B, T, C)
  let x = graph.op('Add', [
    gather(wte, GRAPH_NAMES.inputIds, `input_ids must be below vocab_size ${vocabSize}`),
    gather(
      weight('wpe.weight'),
      GRAPH_NAMES.positionIds,
      `position_ids must be below n_positions ${config.blockSize}: the context window is full`,
    ),
  ]); // (B, T, C)

  const layerNorm = (inputName: string, prefix: string) => {
    const bias = optional(`${prefix}.bias`);
    return graph.op(
      'LayerNormalization',
      bias
        ? [inputName, weight(`${prefix}.weight`), bias]
        : [inputName, weight(`${prefix}.weight`)],
      {
        axis: { type: 'int', value: -1 },
        epsilon: { type: 'float', value: 1e-5 },
      },
    );
  };
  const matMul = (inputName: string, key: string, data: Weight, outputName?: string) =>
    options.quantize === 'int8'
      ? quantizedMatMul(graph, inputName, key, data, outputName)
      : graph.op(
          'MatMul',
          [inputName, graph.initializer(floatInitializer(key, data.shape, data.data))],
          undefined,
          outputName,
        );
  const linear = (inputName: string, prefix: string) => {
    const product = matMul(inputName, `${prefix}.weight`, weightData(`${prefix}.weight`));
    const bias = optional(`${prefix}.bias`);
    return bias ? graph.op('Add', [product, bias]) : product;
  };

  if (options.fused) {
    const headsShape = int64s('const.heads_shape', [0, 0, nHead, headSize]); // (B, T, nh, hs); 0 = keep
    const splitHeads = (inputName: string, outputName?: string) =>
      graph.op(
        'Transpose',
        [graph.op('Reshape', [inputName, headsShape])],
        { perm: { type: 'ints', value: [0, 2, 1, 3] } },
        outputName,
      ); // (B, nh, T, hs)
    lmHead(
      fusedBlocks(graph, config, x, attentionBias, {
        weight,
        optional,
        weightData,
        matMul,
        qkvSplit: int64s('const.qkv_split', [c, c, c]),
        splitHeads,
        layerNorm,
      }),
    );
    return graph;
  }

  const mergedShape = int64s('const.merged_shape', [0, 0, c]); // (B, T, C)
  const pastAndNew = graph.op('Concat', [pastLength, newLength], {
    axis: { type: 'int', value: 0 },
  }); // [P, T]: splits attention weights into those of the past and of the new tokens
  // P > 0, as a bool scalar: the weighted sum over the past runs only then. With P = 0 that
  // MatMul contracts an empty axis, which onnxruntime-web's WebGPU MatMul cannot bind (its
  // inputs have no buffer); transformers.js starts every generation from an empty cache.
  const hasPast = scalar(graph.op('Greater', [pastLength, int64s('const.zero_1d', [0])]));
  // Attention over the past and this step's k, v (B, T, C) each → (B, T, C), before c_proj:
  // softmax(q·kᵀ + bias)·v with q pre-scaled by 1/√hs. The scores and the weighted sum take
  // the past and the new rows as two operands instead of reading present (their Concat):
  // present is then needed only as an output, so a runner that keeps the cache itself can
  // drop those outputs and onnxruntime skips the Concats, which copy the whole cache every
  // step.
  // q, k, v of every head from one Reshape, Transpose and Split of c_attn's output, instead
  // of a Split and a Reshape and Transpose per part: at a batch-1 decode step each operator
  // costs ~0.6 µs of dispatch in onnxruntime whatever its size, and these are 5 fewer per
  // layer. k and v come out named as the rows outputs a cache-keeping runner fetches.
  const qkvHeadsShape = int64s('const.qkv_heads_shape', [0, 0, 3 * nHead, headSize]); // (B, T, 3·nh, hs); 0 = keep
  const headsSplit = int64s('const.heads_split', [nHead, nHead, nHead]);
  const splitQkvHeads = (qkv: string /* (B, T, 3C) */, layer: number) => {
    const heads = graph.op('Transpose', [graph.op('Reshape', [qkv, qkvHeadsShape])], {
      perm: { type: 'ints', value: [0, 2, 1, 3] },
    }); // (B, 3·nh, T, hs)
    const [q, k, v] = graph.node('Split', [heads, headsSplit], {
      outputs: [
        `split_heads_${layer}_q`,
        name(GRAPH_NAMES.rowsKey, layer),
        name(GRAPH_NAMES.rowsValue, layer),
      ],
      attributes: { axis: { type: 'int', value: 1 } },
    });
    return { query: q!, newKey: k!, newValue: v! }; // (B, nh, T, hs) each
  };
  const attend = (layer: number, query: string, newKey: string, newValue: string): string => {
    const pastKey = name(GRAPH_NAMES.pastKey, layer); // (B, nh, P, hs)
    const pastValue = name(GRAPH_NAMES.pastValue, layer); // (B, nh, P, hs)
    const seqAxis = { axis: { type: 'int', value: 2 } } as const;
    graph.op('Concat', [pastKey, newKey], seqAxis, name(GRAPH_NAMES.presentKey, layer)); // (B, nh, P+T, hs)
    graph.op('Concat', [pastValue, newValue], seqAxis, name(GRAPH_NAMES.presentValue, layer));
    const keysT = (keys: string) =>
      graph.op('Transpose', [keys], { perm: { type: 'ints', value: [0, 1, 3, 2] } }); // (B, nh, hs, ·)
    const scores = graph.op('Add', [
      graph.op(
        'Concat',
        [
          graph.op('MatMul', [query, keysT(pastKey)]), // (B, nh, T, P)
          graph.op('MatMul', [query, keysT(newKey)]), // (B, nh, T, T)
        ],
        { axis: { type: 'int', value: 3 } },
      ),
      attentionBias,
    ]); // (B, nh, T, P+T)
    const attention = graph.op('Softmax', [scores], { axis: { type: 'int', value: -1 } });
    const [toPast, toNew] = graph.node('Split', [attention, pastAndNew], {
      outputCount: 2,
      attributes: { axis: { type: 'int', value: 3 } },
    }); // (B, nh, T, P), (B, nh, T, T)
    const fromNew = graph.op('MatMul', [toNew!, newValue]); // (B, nh, T, hs)
    const attendedInfo = (output: string) => ({
      name: output,
      dataType: DataType.FLOAT,
      dims: [batch, nHead, sequence, headSize],
    });
    // Named so that a CPU runner may inline it (PAST_ATTENTION_BRANCH).
    const withPast = graph.subgraph(`${PAST_ATTENTION_BRANCH}${layer}`);
    withPast.outputs.push(
      attendedInfo(withPast.op('Add', [withPast.op('MatMul', [toPast!, pastValue]), fromNew])),
    );
    const newOnly = graph.subgraph(`attend_new_${layer}`);
    newOnly.outputs.push(attendedInfo(newOnly.op('Identity', [fromNew])));
    const [attended] = graph.node('If', [hasPast], {
      attributes: {
        then_branch: { type: 'graph', value: withPast },
        else_branch: { type: 'graph', value: newOnly },
      },
    }); // (B, nh, T, hs)
    return graph.op('Reshape', [
      graph.op('Transpose', [attended!], { perm: { type: 'ints', value: [0, 2, 1, 3] } }),
      mergedShape,
    ]); // (B, T, C)
  };

  // Constants of the standard blocks.
  const tanhGelu = activationOf(config) === 'gelu_tanh';
  // The exact GELU's constant, or the tanh GELU's two: 0.044715 and √(2/π).
  const sqrt2 = tanhGelu ? undefined : constant('const.sqrt2', [Math.SQRT2]);
  const tanhCubic = tanhGelu ? constant('const.gelu_tanh_cubic', [TANH_GELU_CUBIC]) : undefined;
  const tanhScale = tanhGelu ? constant('const.gelu_tanh_scale', [SQRT_2_OVER_PI]) : undefined;
  const one = constant('const.one', [1]);
  const half = constant('const.half', [0.5]);

  for (let layer = 0; layer < nLayer; layer++) {
    const p = `h.${layer}`;
    // Attention: x + c_proj(attend(q, k, v)).
    const h1 = layerNorm(x, `${p}.ln_1`);
    const { query, newKey, newValue } = splitQkvHeads(linear(h1, `${p}.attn.c_attn`), layer);
    const merged = attend(layer, query, newKey, newValue); // (B, T, C)
    x = graph.op('Add', [x, linear(merged, `${p}.attn.c_proj`)]);

    // MLP: x + c_proj(gelu(c_fc(ln_2(x)))), GELU(u) = u · (erf(u/√2) + 1) · 0.5; or the tanh
    // GELU, (u · 0.5) · (tanh((u · √(2/π)) · ((u · 0.044715) · u + 1)) + 1), in the node order
    // onnxruntime's FastGelu fusion matches.
    const up = linear(layerNorm(x, `${p}.ln_2`), `${p}.mlp.c_fc`); // (B, T, 4C)
    const activated =
      tanhCubic && tanhScale
        ? graph.op('Mul', [
            graph.op('Mul', [up, half]),
            graph.op('Add', [
              graph.op('Tanh', [
                graph.op('Mul', [
                  graph.op('Add', [graph.op('Mul', [graph.op('Mul', [up, tanhCubic]), up]), one]),
                  graph.op('Mul', [up, tanhScale]),
                ]),
              ]),
              one,
            ]),
          ])
        : graph.op('Mul', [
            graph.op('Mul', [
              up,
              graph.op('Add', [graph.op('Erf', [graph.op('Div', [up, sqrt2!])]), one]),
            ]),
            half,
          ]); // (B, T, 4C)
    x = graph.op('Add', [x, linear(activated, `${p}.mlp.c_proj`)]);
  }
  lmHead(layerNorm(x, 'ln_f'));
  return graph;

  // With num_logits_to_keep, only the last K positions go through the LM head: K =
  // num_logits_to_keep, or T when it is 0 (Slice from −0 = 0).
  function lmHead(final: string /* (B, T, C) */): void {
    const kept = options.numLogitsToKeep
      ? graph.op('Slice', [
          final,
          graph.op('Neg', [graph.op('Unsqueeze', [GRAPH_NAMES.numLogitsToKeep, axis0])]), // [−K]
          int64s('const.max_index', [Number.MAX_SAFE_INTEGER]),
          axis1,
        ]) // (B, K, C)
      : final;
    // The LM head is wte (tied): stored transposed, (C, V), so the graph needs no Transpose.
    const wteData = weights.get('wte.weight')!;
    const lmHead = new Float32Array(c * vocabSize);
    for (let token = 0; token < vocabSize; token++) {
      for (let channel = 0; channel < c; channel++)
        lmHead[channel * vocabSize + token] = wteData.data[token * c + channel]!;
    }
    matMul(kept, 'lm_head.weight', { shape: [c, vocabSize], data: lmHead }, GRAPH_NAMES.logits); // (B, K, V)
  }
}

interface BlockHelpers {
  weight(key: string): string;
  optional(key: string): string | undefined;
  weightData(key: string): Weight;
  matMul(input: string, key: string, data: Weight, outputName?: string): string;
  /** [C, C, C], int64. */
  readonly qkvSplit: string;
  /** (B, T, C) → (B, nh, T, hs), named `outputName`. */
  splitHeads(input: string, outputName: string): string;
  /** LayerNormalization with the weights under `prefix`. */
  layerNorm(input: string, prefix: string): string;
}

const MICROSOFT = 'com.microsoft';

/**
 * The blocks and ln_f from onnxruntime's com.microsoft operators; returns ln_f's output
 * (B, T, C). Each residual add, with the bias of the projection before it, is folded into
 * the SkipLayerNormalization that follows it, which also passes the sum on as the residual
 * stream; MultiHeadAttention adds the q/k/v biases, applies the mask (as the additive bias,
 * broadcast over heads) and attends over past + new rows in one kernel, writing present.
 */
function fusedBlocks(
  graph: Graph,
  config: GPTConfig,
  embeddings: string,
  attentionBias: string,
  { weight, optional, weightData, matMul, qkvSplit, splitHeads, layerNorm }: BlockHelpers,
): string {
  const { nLayer, nHead } = config;
  const tanhGelu = activationOf(config) === 'gelu_tanh';
  const epsilon = { epsilon: { type: 'float', value: 1e-5 } } as const;
  // LayerNorm(residual + branch + bias) → [normalized, residual + branch + bias].
  const skipLayerNorm = (
    residual: string,
    branch: string,
    bias: string | undefined,
    ln: string,
  ) => {
    const gamma = weight(`${ln}.weight`);
    const beta = optional(`${ln}.bias`);
    // Outputs 1 and 2 (mean, 1/σ) are for training: '' leaves them out.
    const [normalized, , , sum] = graph.node(
      'SkipLayerNormalization',
      [residual, branch, gamma, beta ?? '', ...(bias ? [bias] : [])],
      {
        outputs: [`${ln}.normalized`, '', '', `${ln}.residual`],
        attributes: epsilon,
        domain: MICROSOFT,
      },
    );
    return { normalized: normalized!, sum: sum! };
  };
  let residual = embeddings; // (B, T, C)
  let normalized = layerNorm(residual, 'h.0.ln_1'); // (B, T, C)
  for (let layer = 0; layer < nLayer; layer++) {
    const p = `h.${layer}`;
    // q, k, v with their biases added in one Add: the k and v rows are this step's cache rows.
    const product = matMul(
      normalized,
      `${p}.attn.c_attn.weight`,
      weightData(`${p}.attn.c_attn.weight`),
    );
    const qkvBias = optional(`${p}.attn.c_attn.bias`);
    const qkv = qkvBias ? graph.op('Add', [product, qkvBias]) : product; // (B, T, 3C)
    const [q, k, v] = graph.node('Split', [qkv, qkvSplit], {
      outputCount: 3,
      attributes: { axis: { type: 'int', value: 2 } },
    }); // (B, T, C) each
    // This step's rows (B, nh, T, hs), for a runner that keeps the cache (cacheRowsModel);
    // onnxruntime drops these nodes when nothing fetches them.
    splitHeads(k!, name(GRAPH_NAMES.rowsKey, layer));
    splitHeads(v!, name(GRAPH_NAMES.rowsValue, layer));
    const [attended] = graph.node(
      'MultiHeadAttention',
      [
        q!,
        k!,
        v!,
        '', // bias: added above
        '', // key_padding_mask: in attention_bias
        attentionBias, // (B, 1, T, P+T)
        name(GRAPH_NAMES.pastKey, layer),
        name(GRAPH_NAMES.pastValue, layer),
      ],
      {
        outputs: [
          `mha_${layer}_output`,
          name(GRAPH_NAMES.presentKey, layer),
          name(GRAPH_NAMES.presentValue, layer),
        ],
        // q's columns carry 1/√hs already (scaledQuery).
        attributes: {
          num_heads: { type: 'int', value: nHead },
          scale: { type: 'float', value: 1 },
        },
        domain: MICROSOFT,
      },
    ); // (B, T, C)
    const projected = matMul(
      attended!,
      `${p}.attn.c_proj.weight`,
      weightData(`${p}.attn.c_proj.weight`),
    );
    const afterAttention = skipLayerNorm(
      residual,
      projected,
      optional(`${p}.attn.c_proj.bias`),
      `${p}.ln_2`,
    );
    residual = afterAttention.sum;
    const up = matMul(
      afterAttention.normalized,
      `${p}.mlp.c_fc.weight`,
      weightData(`${p}.mlp.c_fc.weight`),
    ); // (B, T, 4C)
    const upBias = optional(`${p}.mlp.c_fc.bias`);
    // BiasGelu: the exact GELU of up + bias; FastGelu: the tanh GELU (bias optional).
    const activated = tanhGelu
      ? graph.op('FastGelu', upBias ? [up, upBias] : [up], undefined, undefined, MICROSOFT)
      : upBias
        ? graph.op('BiasGelu', [up, upBias], undefined, undefined, MICROSOFT)
        : graph.op('Gelu', [up], undefined, undefined, MICROSOFT);
    const down = matMul(activated, `${p}.mlp.c_proj.weight`, weightData(`${p}.mlp.c_proj.weight`));
    const next = layer + 1 < nLayer ? `h.${layer + 1}.ln_1` : 'ln_f';
    const afterMlp = skipLayerNorm(residual, down, optional(`${p}.mlp.c_proj.bias`), next);
    residual = afterMlp.sum;
    normalized = afterMlp.normalized;
  }
  return normalized;
}

/**
 * Weights use 7 bits (−63…63), not 8. x86 CPUs without VNNI (AVX2: Zen 3 and older, most Intel
 * laptops) multiply uint8 by int8 with vpmaddubsw, which adds each pair of products into an
 * int16 with saturation: 255 · 127 · 2 = 64,770 overflows it, 255 · 63 · 2 = 32,130 does not.
 * With 127, onnxruntime-node on such a CPU gave logits 0.1–0.2 away from float32 and other
 * greedy text than wasm or a VNNI CPU. At 63 the file is the same size and runs the same
 * kernels, for one bit of weight precision (max |Δlogit| 1.9e-2 → 3.2e-2 against float32 on
 * a 4-layer model of fresh weights). onnxruntime's own quantizer calls this reduce_range.
 */
const WEIGHT_LEVELS = 63;

/**
 * x (…, K) · W (K, N) with W stored as int8, symmetric per output column (scale_n =
 * max|W[:, n]| / WEIGHT_LEVELS, zero point 0), and x quantized per call to uint8 by
 * DynamicQuantizeLinear: y = MatMulInteger(xq, Wq) · (x_scale · scale_n) after subtracting
 * x's zero point inside MatMulInteger. onnxruntime fuses the four nodes into one
 * DynamicQuantizeMatMul kernel (CPU and wasm); every node is a standard ONNX operator.
 */
function quantizedMatMul(
  graph: Graph,
  input: string,
  key: string,
  weight: Weight,
  outputName?: string,
): string {
  const [rows, columns] = weight.shape as [number, number];
  const scales = new Float32Array(columns);
  for (let row = 0; row < rows; row++) {
    for (let column = 0; column < columns; column++) {
      const magnitude = Math.abs(weight.data[row * columns + column]!);
      if (magnitude > scales[column]!) scales[column] = magnitude;
    }
  }
  for (let column = 0; column < columns; column++)
    scales[column] = scales[column]! > 0 ? scales[column]! / WEIGHT_LEVELS : 1;
  const quantized = new Int8Array(rows * columns);
  for (let index = 0; index < quantized.length; index++)
    quantized[index] = Math.round(weight.data[index]! / scales[index % columns]!);
  const weightName = graph.initializer(int8Initializer(`${key}.int8`, [rows, columns], quantized));
  const scaleName = graph.initializer(floatInitializer(`${key}.scale`, [columns], scales));
  const [xq, xScale, xZero] = graph.node('DynamicQuantizeLinear', [input], { outputCount: 3 });
  const integer = graph.op('MatMulInteger', [xq!, weightName, xZero!]); // (…, N) int32
  const asFloat = graph.op('Cast', [integer], { to: { type: 'int', value: DataType.FLOAT } });
  return graph.op('Mul', [asFloat, graph.op('Mul', [xScale!, scaleName])], undefined, outputName);
}
