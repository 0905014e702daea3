// The few ONNX protobuf messages both sides of the export format write: a graph input or
// output (ValueInfoProto) and an addition of outputs to an encoded model. The exporter builds
// whole models with them; runner-web uses appendGraphOutputs to fetch cache rows that the
// published graph keeps internal (see appendGraphOutputs).
import { ProtoWriter } from './protobuf.js';

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

/** ModelProto.graph and GraphProto.output field numbers (onnx.proto). */
const MODEL_GRAPH_FIELD = 7;
const GRAPH_OUTPUT_FIELD = 12;

/**
 * `model` (an encoded ModelProto) with `outputs` added to its graph's outputs. Each must name
 * a value the graph already computes. The bytes are appended, not rewritten: protobuf parsers
 * merge a message field that occurs twice, concatenating repeated fields, so a trailing
 * `graph { output: … }` extends the graph's output list (protobuf encoding spec, "Last One
 * Wins" / merging of embedded messages). This lets one published file serve both
 * transformers.js, which fetches every declared output, and a runner that wants a few more.
 */
export function appendGraphOutputs(
  model: Uint8Array,
  outputs: readonly OnnxValueInfo[],
): Uint8Array {
  const graph = new ProtoWriter();
  for (const output of outputs) graph.message(GRAPH_OUTPUT_FIELD, encodeValueInfo(output));
  const suffix = new ProtoWriter().message(MODEL_GRAPH_FIELD, graph).finish();
  const out = new Uint8Array(model.length + suffix.length);
  out.set(model, 0);
  out.set(suffix, model.length);
  return out;
}
