// The GPT as one ONNX graph that serves both prefill and KV-cache decode:
//   inputs  input_ids (B, T) int64, past_key_values.{i}.key|value (B, nh, P, hs) float32
//   outputs logits (B, T, V), present.{i}.key|value (B, nh, P+T, hs),
//           new_key_values.{i}.key|value (B, nh, T, hs): only this step's rows of present
// Positions start at P; query t sees keys 0 … P+t. Only standard ops at opset 17, so
// onnxruntime-node (CPU, CUDA) and onnxruntime-web (wasm, WebGPU) all run it. The math is
// @minigpt/model's: pre-LN blocks, exact GELU (as Div → Erf, which onnxruntime fuses),
// LayerNorm eps 1e-5, LM head tied to wte.
//
// Dimensions: B batch, T new tokens, P cached tokens, C nEmbd, nh heads, hs = C/nh, V vocab.
import type { GPTConfig } from '@minigpt/model/config';
import { Graph, DataType, floatInitializer, int64Initializer } from './onnx.js';

export const OPSET = 17;
export const IR_VERSION = 8;

export const GRAPH_NAMES = {
  inputIds: 'input_ids',
  pastKey: 'past_key_values.{i}.key',
  pastValue: 'past_key_values.{i}.value',
  logits: 'logits',
  presentKey: 'present.{i}.key',
  presentValue: 'present.{i}.value',
  newKey: 'new_key_values.{i}.key',
  newValue: 'new_key_values.{i}.value',
} as const;

const name = (pattern: string, layer: number) => pattern.replace('{i}', String(layer));

export interface Weight {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export function buildGptGraph(config: GPTConfig, weights: ReadonlyMap<string, Weight>): Graph {
  const { nLayer, nHead, nEmbd: c, vocabSize, blockSize } = config;
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
  const weight = (key: string): string => {
    const w = weights.get(key);
    if (!w) throw new Error(`weights: "${key}" is missing`);
    return graph.initializer(floatInitializer(key, w.shape, scaledQuery(key, w.data)));
  };
  const optional = (key: string): string | undefined =>
    weights.has(key) ? weight(key) : undefined;
  const constant = (key: string, values: number[], dims: number[] = []) =>
    graph.initializer(floatInitializer(key, dims, Float32Array.from(values)));
  const int64s = (key: string, values: number[]) =>
    graph.initializer(int64Initializer(key, [values.length], values));

  // Graph inputs and outputs, with symbolic dims.
  graph.inputs.push({
    name: GRAPH_NAMES.inputIds,
    dataType: DataType.INT64,
    dims: ['batch', 'sequence'],
  });
  for (let layer = 0; layer < nLayer; layer++) {
    for (const pattern of [GRAPH_NAMES.pastKey, GRAPH_NAMES.pastValue]) {
      graph.inputs.push({
        name: name(pattern, layer),
        dataType: DataType.FLOAT,
        dims: ['batch', nHead, 'past_sequence', headSize],
      });
    }
  }
  graph.outputs.push({
    name: GRAPH_NAMES.logits,
    dataType: DataType.FLOAT,
    dims: ['batch', 'sequence', vocabSize],
  });
  for (let layer = 0; layer < nLayer; layer++) {
    for (const pattern of [GRAPH_NAMES.presentKey, GRAPH_NAMES.presentValue]) {
      graph.outputs.push({
        name: name(pattern, layer),
        dataType: DataType.FLOAT,
        dims: ['batch', nHead, 'total_sequence', headSize],
      });
    }
  }
  // A runner that keeps the cache itself fetches these instead of present: onnxruntime-web
  // copies every output out of its wasm heap into a fresh array, and copying the whole
  // present cache out per token took half of a decode step in Chromium.
  for (let layer = 0; layer < nLayer; layer++) {
    for (const pattern of [GRAPH_NAMES.newKey, GRAPH_NAMES.newValue]) {
      graph.outputs.push({
        name: name(pattern, layer),
        dataType: DataType.FLOAT,
        dims: ['batch', nHead, 'sequence', headSize],
      });
    }
  }

  // Constants.
  const zero1 = int64s('const.zero', [0]);
  const axis0 = int64s('const.axis0', [0]);
  const axes01 = int64s('const.axes01', [0, 1]);
  const headsShape = int64s('const.heads_shape', [0, 0, nHead, headSize]); // (B, T, nh, hs); 0 = keep
  const mergedShape = int64s('const.merged_shape', [0, 0, c]); // (B, T, C)
  const qkvSplit = int64s('const.qkv_split', [c, c, c]);
  const sqrt2 = constant('const.sqrt2', [Math.SQRT2]);
  const one = constant('const.one', [1]);
  const half = constant('const.half', [0.5]);
  // Additive causal mask table (blockSize, blockSize): row r sees columns ≤ r.
  const maskValues = new Float32Array(blockSize * blockSize);
  for (let row = 0; row < blockSize; row++)
    maskValues.fill(-1e9, row * blockSize + row + 1, (row + 1) * blockSize);
  const maskTable = graph.initializer(
    floatInitializer('const.causal_mask', [blockSize, blockSize], maskValues),
  );

  // P (cached length), T (new tokens) and P + T as 1-element int64 tensors.
  const pastLength = graph.op('Shape', [name(GRAPH_NAMES.pastKey, 0)], {
    start: { type: 'int', value: 2 },
    end: { type: 'int', value: 3 },
  });
  const newLength = graph.op('Shape', [GRAPH_NAMES.inputIds], {
    start: { type: 'int', value: 1 },
    end: { type: 'int', value: 2 },
  });
  const totalLength = graph.op('Add', [pastLength, newLength]);
  // Rows P … P+T of the mask, columns 0 … P+T: (T, P+T).
  const maskStarts = graph.op('Concat', [pastLength, zero1], { axis: { type: 'int', value: 0 } });
  const maskEnds = graph.op('Concat', [totalLength, totalLength], {
    axis: { type: 'int', value: 0 },
  });
  const mask = graph.op('Slice', [maskTable, maskStarts, maskEnds, axes01]);

  // Embeddings: wte[input_ids] + wpe[P … P+T).
  const wte = weight('wte.weight'); // (V, C)
  const tokens = graph.op('Gather', [wte, GRAPH_NAMES.inputIds], {
    axis: { type: 'int', value: 0 },
  }); // (B, T, C)
  const positions = graph.op('Slice', [weight('wpe.weight'), pastLength, totalLength, axis0]); // (T, C)
  let x = graph.op('Add', [tokens, positions]); // (B, T, C)

  const layerNorm = (input: string, prefix: string) => {
    const bias = optional(`${prefix}.bias`);
    return graph.op(
      'LayerNormalization',
      bias ? [input, weight(`${prefix}.weight`), bias] : [input, weight(`${prefix}.weight`)],
      {
        axis: { type: 'int', value: -1 },
        epsilon: { type: 'float', value: 1e-5 },
      },
    );
  };
  const linear = (input: string, prefix: string) => {
    const product = graph.op('MatMul', [input, weight(`${prefix}.weight`)]);
    const bias = optional(`${prefix}.bias`);
    return bias ? graph.op('Add', [product, bias]) : product;
  };
  const splitHeads = (input: string, outputName?: string) =>
    graph.op(
      'Transpose',
      [graph.op('Reshape', [input, headsShape])],
      { perm: { type: 'ints', value: [0, 2, 1, 3] } },
      outputName,
    ); // (B, nh, T, hs)

  for (let layer = 0; layer < nLayer; layer++) {
    const p = `h.${layer}`;
    // Attention: x + c_proj(softmax(q·kᵀ + mask)·v) with q pre-scaled by 1/√hs; the cache is
    // extended by this step's k, v.
    const h1 = layerNorm(x, `${p}.ln_1`);
    const qkv = linear(h1, `${p}.attn.c_attn`); // (B, T, 3C)
    const [q, k, v] = graph.node('Split', [qkv, qkvSplit], {
      outputCount: 3,
      attributes: { axis: { type: 'int', value: 2 } },
    });
    const presentKey = graph.op(
      'Concat',
      [name(GRAPH_NAMES.pastKey, layer), splitHeads(k!, name(GRAPH_NAMES.newKey, layer))],
      { axis: { type: 'int', value: 2 } },
      name(GRAPH_NAMES.presentKey, layer),
    ); // (B, nh, P+T, hs)
    const presentValue = graph.op(
      'Concat',
      [name(GRAPH_NAMES.pastValue, layer), splitHeads(v!, name(GRAPH_NAMES.newValue, layer))],
      { axis: { type: 'int', value: 2 } },
      name(GRAPH_NAMES.presentValue, layer),
    );
    const keysT = graph.op('Transpose', [presentKey], {
      perm: { type: 'ints', value: [0, 1, 3, 2] },
    }); // (B, nh, hs, P+T)
    const scores = graph.op('Add', [graph.op('MatMul', [splitHeads(q!), keysT]), mask]); // (B, nh, T, P+T)
    const weights = graph.op('Softmax', [scores], { axis: { type: 'int', value: -1 } });
    const attended = graph.op('MatMul', [weights, presentValue]); // (B, nh, T, hs)
    const merged = graph.op('Reshape', [
      graph.op('Transpose', [attended], { perm: { type: 'ints', value: [0, 2, 1, 3] } }),
      mergedShape,
    ]); // (B, T, C)
    x = graph.op('Add', [x, linear(merged, `${p}.attn.c_proj`)]);

    // MLP: x + c_proj(gelu(c_fc(ln_2(x)))), GELU(u) = u · (erf(u/√2) + 1) · 0.5.
    const up = linear(layerNorm(x, `${p}.ln_2`), `${p}.mlp.c_fc`); // (B, T, 4C)
    const erf = graph.op('Erf', [graph.op('Div', [up, sqrt2])]);
    const activated = graph.op('Mul', [graph.op('Mul', [up, graph.op('Add', [erf, one])]), half]);
    x = graph.op('Add', [x, linear(activated, `${p}.mlp.c_proj`)]);
  }
  const final = layerNorm(x, 'ln_f');
  // The LM head is wte (tied): stored transposed, (C, V), so the graph needs no Transpose.
  const wteData = weights.get('wte.weight')!;
  const lmHead = new Float32Array(c * vocabSize);
  for (let token = 0; token < vocabSize; token++) {
    for (let channel = 0; channel < c; channel++)
      lmHead[channel * vocabSize + token] = wteData.data[token * c + channel]!;
  }
  graph.initializer(floatInitializer('lm_head.weight', [c, vocabSize], lmHead));
  graph.op('MatMul', [final, 'lm_head.weight'], undefined, GRAPH_NAMES.logits); // (B, T, V)
  return graph;
}
