// ProtoWriter against the protobuf encoding spec's examples, and the ONNX messages built on it
// against bytes worked out by hand from onnx.proto's field numbers.
import { describe, expect, it } from 'vitest';
import { OnnxDataType, appendGraphOutputs, encodeValueInfo } from './index.js';
import { ProtoWriter } from './protobuf.js';

const bytes = (writer: ProtoWriter) => Array.from(writer.finish());

describe('ProtoWriter', () => {
  it('writes varints as the protobuf spec examples do', () => {
    expect(bytes(new ProtoWriter().int64(1, 150))).toEqual([0x08, 0x96, 0x01]); // the spec's "150"
    expect(bytes(new ProtoWriter().int64(2, 300))).toEqual([0x10, 0xac, 0x02]);
    expect(bytes(new ProtoWriter().int64(1, 0))).toEqual([0x08, 0x00]);
    // A negative int64 is ten bytes of two's complement.
    expect(bytes(new ProtoWriter().int64(1, -1))).toEqual([
      0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
    expect(bytes(new ProtoWriter().int64(1, 2n ** 40n))).toEqual([
      0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20,
    ]);
  });

  it('writes strings, bytes, floats, packed int64s and nested messages', () => {
    expect(bytes(new ProtoWriter().string(2, 'testing'))).toEqual([
      0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67,
    ]);
    expect(bytes(new ProtoWriter().float(2, 1))).toEqual([0x15, 0x00, 0x00, 0x80, 0x3f]);
    expect(bytes(new ProtoWriter().packedInt64(4, [3, 270, 86942]))).toEqual([
      0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05,
    ]);
    const inner = new ProtoWriter().int64(1, 150);
    expect(bytes(new ProtoWriter().message(3, inner))).toEqual([0x1a, 0x03, 0x08, 0x96, 0x01]);
    expect(bytes(new ProtoWriter().string(1, 'é'))).toEqual([0x0a, 0x02, 0xc3, 0xa9]);
  });
});

describe('encodeValueInfo', () => {
  it('writes a ValueInfoProto as onnx.proto numbers its fields (computed by hand)', () => {
    // ValueInfoProto { name(1) = "x", type(2) = TypeProto { tensor_type(1) = Tensor {
    //   elem_type(1) = 7 (INT64), shape(2) = TensorShapeProto {
    //     dim(1) = Dimension { dim_param(2) = "b" }, dim(1) = Dimension { dim_value(1) = 3 } } } } }
    const dimParam = [0x12, 0x01, 0x62]; // field 2, length 1, "b"
    const dimValue = [0x08, 0x03]; // field 1 varint 3
    const shape = [0x0a, 0x03, ...dimParam, 0x0a, 0x02, ...dimValue]; // 9 bytes
    const tensor = [0x08, 0x07, 0x12, 0x09, ...shape]; // 13 bytes
    const type = [0x0a, 0x0d, ...tensor]; // 15 bytes
    const expected = [0x0a, 0x01, 0x78, 0x12, 0x0f, ...type]; // 20 bytes
    expect(expected).toHaveLength(20);
    const info = { name: 'x', dataType: OnnxDataType.INT64, dims: ['b', 3] } as const;
    expect(bytes(encodeValueInfo(info))).toEqual(expected);
  });

  it('gives a scalar an empty shape, not none (no shape would mean "rank unknown")', () => {
    // name "k", type { tensor_type { elem_type 7, shape {} } }
    expect(bytes(encodeValueInfo({ name: 'k', dataType: OnnxDataType.INT64, dims: [] }))).toEqual([
      0x0a, 0x01, 0x6b, 0x12, 0x06, 0x0a, 0x04, 0x08, 0x07, 0x12, 0x00,
    ]);
  });
});

describe('appendGraphOutputs', () => {
  it('returns the model bytes unchanged, then one `graph(7) { output(12) … }` message', () => {
    const model = Uint8Array.from([0x08, 0x08, 0x3a, 0x02, 0x0a, 0x00]); // ir_version 8, graph { node {} }
    const outputs = [
      { name: 'x', dataType: OnnxDataType.INT64, dims: ['b', 3] },
      { name: 'k', dataType: OnnxDataType.FLOAT, dims: [] },
    ] as const;
    const first = bytes(encodeValueInfo(outputs[0])); // 20 bytes (known above)
    const second = bytes(encodeValueInfo(outputs[1])); // 11 bytes
    expect([first.length, second.length]).toEqual([20, 11]);
    // GraphProto: tag (12 << 3) | 2 = 0x62 per output; ModelProto.graph: tag (7 << 3) | 2 = 0x3a.
    const graph = [0x62, 20, ...first, 0x62, 11, ...second]; // 35 bytes
    const appended = appendGraphOutputs(model, outputs);
    expect(Array.from(appended)).toEqual([...model, 0x3a, 35, ...graph]);
    // Nothing to add: a copy of the model, the input untouched.
    expect(Array.from(appendGraphOutputs(model, []))).toEqual([...model, 0x3a, 0x00]);
    expect(Array.from(model)).toEqual([0x08, 0x08, 0x3a, 0x02, 0x0a, 0x00]);
  });
});
