// The few ONNX protobuf messages both sides of the export format write: a graph input or
// output (ValueInfoProto), and an edit of an encoded model's outputs. The exporter builds
// whole models with them; the runners use editGraphOutputs to fetch the cache rows that the
// published graph keeps internal instead of the whole present cache.
import { ProtoWriter, readFields } from './protobuf.js';

/** TensorProto.DataType values minigpt's graphs use. */
export const OnnxDataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type OnnxDataTypeValue = (typeof OnnxDataType)[keyof typeof OnnxDataType];

/** A graph input or output: its element type and dims (numbers, or symbolic names). */
export interface OnnxValueInfo {
  readonly name: string;
  readonly dataType: OnnxDataTypeValue;
  readonly dims: ReadonlyArray<number | string>;
}

/** ValueInfoProto { name = 1, type = 2 { tensor_type = 1 { elem_type = 1, shape = 2 } } }. */
export function encodeValueInfo(info: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const dim of info.dims) {
    // TensorShapeProto.Dimension { dim_value = 1 | dim_param = 2 }
    shape.message(
      1,
      typeof dim === 'number' ? new ProtoWriter().int64(1, dim) : new ProtoWriter().string(2, dim),
    );
  }
  const tensorType = new ProtoWriter().int64(1, info.dataType).message(2, shape);
  return new ProtoWriter()
    .string(1, info.name)
    .message(2, new ProtoWriter().message(1, tensorType));
}

/** A node attribute's value; a graph (an If branch) comes encoded (a GraphProto's bytes). */
export type OnnxAttribute =
  | { readonly type: 'int'; readonly value: number }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'ints'; readonly value: readonly number[] }
  | { readonly type: 'graph'; readonly value: Uint8Array };

/** A graph node: its operator, the values it reads and writes, and its attributes. */
export interface OnnxNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name: string;
  readonly attributes?: Readonly<Record<string, OnnxAttribute>>;
  /** The operator set: '' (ONNX's own, the default) or e.g. 'com.microsoft'. */
  readonly domain?: string;
}

/** Field numbers of onnx.proto: ModelProto.graph; GraphProto.node, .output; NodeProto.input,
 * .output; ValueInfoProto.name. */
const MODEL_GRAPH_FIELD = 7;
const GRAPH_NODE_FIELD = 1;
const GRAPH_OUTPUT_FIELD = 12;
const NODE_INPUT_FIELD = 1;
const NODE_OUTPUT_FIELD = 2;
const NODE_ATTRIBUTE_FIELD = 5;
const ATTRIBUTE_GRAPH_FIELD = 6;
const ATTRIBUTE_GRAPHS_FIELD = 11;
const VALUE_INFO_NAME_FIELD = 1;
const NODE_OP_TYPE_FIELD = 4;
const ATTRIBUTE_NAME_FIELD = 1;
const GRAPH_NAME_FIELD = 2;
const GRAPH_INITIALIZER_FIELD = 5;
const NODE_NAME_FIELD = 3;
const NODE_DOMAIN_FIELD = 7;
// Names only decide what matches an edit: a name that is not UTF-8 decodes to U+FFFD and
// matches nothing, rather than throwing.
const utf8 = new TextDecoder();

/** The string fields numbered `number` of an encoded message. */
function strings(payload: Uint8Array, number: number): string[] {
  return readFields(payload)
    .filter((field) => field.field === number && field.payload !== undefined)
    .map((field) => utf8.decode(field.payload));
}

/**
 * NodeProto { input = 1, output = 2, name = 3, op_type = 4, attribute = 5, domain = 7 }, each
 * attribute an AttributeProto { name = 1, f = 2, i = 3, g = 6, ints = 8, type = 20 }.
 */
export function encodeNode(node: OnnxNode): ProtoWriter {
  const out = new ProtoWriter();
  for (const input of node.inputs) out.string(NODE_INPUT_FIELD, input);
  for (const output of node.outputs) out.string(NODE_OUTPUT_FIELD, output);
  out.string(NODE_NAME_FIELD, node.name);
  out.string(NODE_OP_TYPE_FIELD, node.opType);
  for (const [name, attribute] of Object.entries(node.attributes ?? {})) {
    const encoded = new ProtoWriter().string(ATTRIBUTE_NAME_FIELD, name);
    switch (attribute.type) {
      case 'float':
        encoded.float(2, attribute.value).int64(20, 1);
        break;
      case 'int':
        encoded.int64(3, attribute.value).int64(20, 2);
        break;
      case 'ints':
        encoded.packedInt64(8, attribute.value).int64(20, 7);
        break;
      case 'graph':
        encoded.message(ATTRIBUTE_GRAPH_FIELD, attribute.value).int64(20, 5);
        break;
    }
    out.message(NODE_ATTRIBUTE_FIELD, encoded);
  }
  if (node.domain) out.string(NODE_DOMAIN_FIELD, node.domain);
  return out;
}

/**
 * The name prefix of the If branch that attends over the past (the exporter names it
 * `attend_past_<layer>`): softmax weights of the past times its values, plus the new rows'
 * share. The If exists for WebGPU, whose MatMul cannot contract the empty axis of an empty
 * past; on CPU and wasm that product is zeros, so the branch is right for every past length.
 */
export const PAST_ATTENTION_BRANCH = 'attend_past_';

export interface GraphOutputEdit {
  /**
   * Nodes appended after the graph's own (so the graph stays in topological order when they
   * read only its values). What they read counts as read: its nodes stay, output or not.
   */
  readonly addNodes?: readonly OnnxNode[];
  /** Values the graph computes, declared as outputs (appended after the graph's own). */
  readonly add?: readonly OnnxValueInfo[];
  /**
   * Replace each If whose then_branch is a PAST_ATTENTION_BRANCH by that branch's nodes (for
   * onnxruntime's CPU and wasm kernels only): an If costs onnxruntime a subgraph call per
   * layer and step (runner-node's bench/decode-profile.mjs measures the difference).
   */
  readonly inlinePastAttention?: boolean;
  /**
   * Outputs no longer declared. A node whose outputs are all removed and read by no other
   * node goes too: onnxruntime runs every node of a graph, fetched or not, so an output
   * nobody wants still costs its work until the node computing it is gone.
   */
  readonly remove?: readonly string[];
}

/**
 * `model` (an encoded ModelProto) with its graph's outputs edited. This lets one published
 * file serve both transformers.js, which fetches every declared output, and a runner that
 * wants other ones. Only the graph's node and output fields are decoded; everything else
 * (initializers included) is carried over byte for byte. A model whose graph field occurs
 * more than once is read as protobuf merges it: the occurrences concatenated. Throws a
 * RangeError on bytes that are not an encoded model with a graph.
 */
export function editGraphOutputs(model: Uint8Array, edit: GraphOutputEdit): Uint8Array {
  const modelFields = readFields(model);
  const graphFields = modelFields.filter(
    (field) => field.field === MODEL_GRAPH_FIELD && field.payload !== undefined,
  );
  if (graphFields.length === 0) throw new RangeError('the model has no graph');
  // Each graph field with its encoded bytes (a view into the payload it came from).
  const graph = graphFields.flatMap(({ payload }) =>
    readFields(payload!).map((field) => ({
      ...field,
      bytes: payload!.subarray(field.start, field.end),
    })),
  );
  const removed = new Set(edit.remove ?? []);
  /** Names a node reads: its inputs, and whatever the nodes of its subgraphs (If, Loop
   * branches) read, since a subgraph sees the enclosing graph's values by name. */
  const readBy = (node: Uint8Array): string[] => [
    ...strings(node, NODE_INPUT_FIELD),
    ...readFields(node)
      .filter((field) => field.field === NODE_ATTRIBUTE_FIELD && field.payload !== undefined)
      .flatMap((attribute) => readFields(attribute.payload!))
      .filter(
        (field) =>
          (field.field === ATTRIBUTE_GRAPH_FIELD || field.field === ATTRIBUTE_GRAPHS_FIELD) &&
          field.payload !== undefined,
      )
      .flatMap((subgraph) => readFields(subgraph.payload!))
      .filter((field) => field.field === GRAPH_NODE_FIELD && field.payload !== undefined)
      .flatMap((field) => readBy(field.payload!)),
  ];
  const nodes = graph
    .filter((field) => field.field === GRAPH_NODE_FIELD && field.payload !== undefined)
    .map((field) => ({ field, outputs: strings(field.payload!, NODE_OUTPUT_FIELD) }));
  const read = new Set([
    ...graph
      .filter((field) => field.field === GRAPH_NODE_FIELD && field.payload !== undefined)
      .flatMap((field) => readBy(field.payload!)),
    ...(edit.addNodes ?? []).flatMap((node) => node.inputs),
  ]);
  const dropped = new Set(
    nodes
      .filter(
        (node) =>
          node.outputs.length > 0 &&
          node.outputs.every((output) => removed.has(output) && !read.has(output)),
      )
      .map((node) => node.field),
  );
  const edited = new ProtoWriter();
  for (const field of graph) {
    if (dropped.has(field)) continue;
    const branch =
      edit.inlinePastAttention && field.field === GRAPH_NODE_FIELD && field.payload !== undefined
        ? pastAttentionBranch(field.payload)
        : undefined;
    if (branch) {
      for (const node of branch) edited.raw(node);
      continue;
    }
    if (
      field.field === GRAPH_OUTPUT_FIELD &&
      field.payload !== undefined &&
      removed.has(strings(field.payload, VALUE_INFO_NAME_FIELD)[0] ?? '')
    )
      continue;
    edited.raw(field.bytes);
  }
  for (const node of edit.addNodes ?? []) edited.message(GRAPH_NODE_FIELD, encodeNode(node));
  for (const output of edit.add ?? []) edited.message(GRAPH_OUTPUT_FIELD, encodeValueInfo(output));
  const out = new ProtoWriter();
  for (const field of modelFields) {
    if (field === graphFields[0]) out.message(MODEL_GRAPH_FIELD, edited);
    else if (!graphFields.includes(field)) out.raw(model.subarray(field.start, field.end));
  }
  return out.finish();
}

/**
 * An If node's then_branch nodes, encoded as graph node fields with the branch's outputs
 * renamed to the If's, when the node is an If whose then_branch is a PAST_ATTENTION_BRANCH
 * with no initializers of its own; else undefined (the node stays as it is).
 */
function pastAttentionBranch(node: Uint8Array): Uint8Array[] | undefined {
  if (strings(node, NODE_OP_TYPE_FIELD)[0] !== 'If') return undefined;
  const outputs = strings(node, NODE_OUTPUT_FIELD);
  const thenBranch = readFields(node)
    .filter((field) => field.field === NODE_ATTRIBUTE_FIELD && field.payload !== undefined)
    .map((field) => field.payload!)
    .filter((attribute) => strings(attribute, ATTRIBUTE_NAME_FIELD)[0] === 'then_branch')
    .flatMap((attribute) => readFields(attribute))
    .find((field) => field.field === ATTRIBUTE_GRAPH_FIELD && field.payload !== undefined)?.payload;
  if (
    !thenBranch ||
    !(strings(thenBranch, GRAPH_NAME_FIELD)[0] ?? '').startsWith(PAST_ATTENTION_BRANCH)
  )
    return undefined;
  const branchFields = readFields(thenBranch);
  if (branchFields.some((field) => field.field === GRAPH_INITIALIZER_FIELD)) return undefined;
  const branchOutputs = branchFields
    .filter((field) => field.field === GRAPH_OUTPUT_FIELD && field.payload !== undefined)
    .map((field) => strings(field.payload!, VALUE_INFO_NAME_FIELD)[0] ?? '');
  if (branchOutputs.length !== outputs.length) return undefined;
  const renamed = new Map(branchOutputs.map((name, index) => [name, outputs[index]!]));
  return branchFields
    .filter((field) => field.field === GRAPH_NODE_FIELD && field.payload !== undefined)
    .map((field) => {
      const nodeFields = readFields(field.payload!);
      const encoded = new ProtoWriter();
      for (const part of nodeFields) {
        const name =
          part.field === NODE_OUTPUT_FIELD && part.payload !== undefined
            ? renamed.get(utf8.decode(part.payload))
            : undefined;
        if (name !== undefined) encoded.string(NODE_OUTPUT_FIELD, name);
        else encoded.raw(field.payload!.subarray(part.start, part.end));
      }
      return new ProtoWriter().message(GRAPH_NODE_FIELD, encoded).finish();
    });
}
