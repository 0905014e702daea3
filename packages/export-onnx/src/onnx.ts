// ONNX's protobuf messages (onnx.proto field numbers) as small builder functions, and a
// Graph helper that names nodes and tensors uniquely. It knows nothing of GPTs.
import {
  OnnxDataType as DataType,
  ProtoWriter,
  encodeNode,
  encodeValueInfo,
  type OnnxAttribute,
  type OnnxDataTypeValue as DataTypeValue,
  type OnnxValueInfo as ValueInfo,
} from '@minigpt/runtime';

export { DataType, type ValueInfo };

/** A node attribute: the runtime's OnnxAttribute, with an If branch as a Graph to encode. */
export type AttributeValue =
  | Exclude<OnnxAttribute, { readonly type: 'graph' }>
  | { readonly type: 'graph'; readonly value: Graph };

export interface Initializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly dataType: DataTypeValue;
  /** Little-endian raw bytes of the values. */
  readonly raw: Uint8Array;
}

export function floatInitializer(
  name: string,
  dims: readonly number[],
  values: Float32Array,
): Initializer {
  return { name, dims, dataType: DataType.FLOAT, raw: littleEndianBytes(values) };
}

export function int8Initializer(
  name: string,
  dims: readonly number[],
  values: Int8Array,
): Initializer {
  return {
    name,
    dims,
    dataType: DataType.INT8,
    raw: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

export function int64Initializer(
  name: string,
  dims: readonly number[],
  values: readonly number[],
): Initializer {
  const array = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { name, dims, dataType: DataType.INT64, raw: littleEndianBytes(array) };
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function littleEndianBytes(array: Float32Array | BigInt64Array): Uint8Array {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  if (isLittleEndian) return bytes;
  const width = array.BYTES_PER_ELEMENT;
  const swapped = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) {
    for (let j = 0; j < width; j++) swapped[i + j] = bytes[i + width - 1 - j]!;
  }
  return swapped;
}

/** Collects nodes, initializers, inputs and outputs; names intermediate tensors uniquely. */
export class Graph {
  private readonly nodes: Uint8Array[] = [];
  readonly initializers: Initializer[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];

  /**
   * `ids` and `opTypes` are shared with the graph a subgraph belongs to: ONNX wants every
   * name unique across nested graphs, and the op types used are the whole model's.
   */
  constructor(
    readonly name: string,
    private readonly ids: { next: number } = { next: 0 },
    /** Op types used, for tests and the manifest. */
    readonly opTypes = new Set<string>(),
    /** Operator sets used besides ONNX's own (each needs an opset import). */
    readonly domains = new Set<string>(),
  ) {}

  /** A graph for a node attribute (an If branch): it sees this graph's values by name. */
  subgraph(name: string): Graph {
    return new Graph(name, this.ids, this.opTypes, this.domains);
  }

  initializer(init: Initializer): string {
    this.initializers.push(init);
    return init.name;
  }

  /** Adds a node; returns its output names (fresh ones unless given). */
  node(
    opType: string,
    inputs: readonly string[],
    options: {
      outputs?: readonly string[];
      outputCount?: number;
      attributes?: Record<string, AttributeValue>;
      name?: string;
      /** The operator set: '' (ONNX's own, the default) or e.g. 'com.microsoft'. */
      domain?: string;
    } = {},
  ): string[] {
    const id = this.ids.next++;
    const outputs =
      options.outputs ??
      Array.from(
        { length: options.outputCount ?? 1 },
        (_, i) => `${opType.toLowerCase()}_${id}_${i}`,
      );
    const attributes: Record<string, OnnxAttribute> = {};
    for (const [attributeName, attribute] of Object.entries(options.attributes ?? {})) {
      attributes[attributeName] =
        attribute.type === 'graph' ? { type: 'graph', value: attribute.value.encode() } : attribute;
    }
    const node = encodeNode({
      opType,
      inputs,
      outputs,
      name: options.name ?? `${opType}_${id}`,
      attributes,
      ...(options.domain ? { domain: options.domain } : {}),
    });
    if (options.domain) this.domains.add(options.domain);
    this.nodes.push(node.finish());
    this.opTypes.add(opType);
    return [...outputs];
  }

  /** One-output node. */
  op(
    opType: string,
    inputs: readonly string[],
    attributes?: Record<string, AttributeValue>,
    output?: string,
    domain?: string,
  ): string {
    return this.node(opType, inputs, {
      ...(attributes ? { attributes } : {}),
      ...(output ? { outputs: [output] } : {}),
      ...(domain ? { domain } : {}),
    })[0]!;
  }

  encode(): Uint8Array {
    const graph = new ProtoWriter();
    for (const node of this.nodes) graph.message(1, node);
    graph.string(2, this.name);
    for (const init of this.initializers) graph.message(5, encodeTensor(init));
    for (const input of this.inputs) graph.message(11, encodeValueInfo(input));
    for (const output of this.outputs) graph.message(12, encodeValueInfo(output));
    return graph.finish();
  }
}

function encodeTensor(init: Initializer): ProtoWriter {
  const tensor = new ProtoWriter();
  if (init.dims.length > 0) tensor.packedInt64(1, init.dims);
  return tensor.int64(2, init.dataType).string(8, init.name).bytes(9, init.raw);
}

export interface ModelOptions {
  readonly irVersion: number;
  readonly opset: number;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly docString?: string;
  readonly metadata?: Record<string, string>;
}

/**
 * A ModelProto around `graph`, with the default-domain opset import and version 1 of each
 * other operator set its nodes use (onnxruntime's com.microsoft has only version 1).
 */
export function encodeModel(graph: Graph, options: ModelOptions): Uint8Array {
  const model = new ProtoWriter()
    .int64(1, options.irVersion)
    .string(2, options.producerName)
    .string(3, options.producerVersion);
  if (options.docString) model.string(6, options.docString);
  model.message(7, graph.encode());
  model.message(8, new ProtoWriter().string(1, '').int64(2, options.opset));
  for (const domain of graph.domains)
    model.message(8, new ProtoWriter().string(1, domain).int64(2, 1));
  for (const [key, value] of Object.entries(options.metadata ?? {})) {
    model.message(14, new ProtoWriter().string(1, key).string(2, value));
  }
  return model.finish();
}
