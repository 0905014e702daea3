// ProtoWriter against the protobuf encoding spec's examples, and the ONNX messages built on it
// against bytes worked out by hand from onnx.proto's field numbers.
import { describe, expect, it } from 'vitest';
import { OnnxDataType, PAST_ATTENTION_BRANCH, editGraphOutputs, encodeValueInfo } from './index.js';
import { ProtoWriter, readFields } from './protobuf.js';

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

describe('readFields', () => {
  it('splits a message into its fields, payloads as views', () => {
    // field 1 varint 150; field 2 "testing"; field 3 fixed32; field 4 fixed64
    const message = Uint8Array.from([
      0x08, 0x96, 0x01, 0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67, 0x1d, 1, 2, 3, 4,
      0x21, 1, 2, 3, 4, 5, 6, 7, 8,
    ]);
    const fields = readFields(message);
    expect(fields.map(({ field, wire, start, end }) => [field, wire, start, end])).toEqual([
      [1, 0, 0, 3],
      [2, 2, 3, 12],
      [3, 5, 12, 17],
      [4, 1, 17, 26],
    ]);
    expect(new TextDecoder().decode(fields[1]!.payload)).toBe('testing');
    expect(fields[1]!.payload!.buffer).toBe(message.buffer); // a view, not a copy
  });

  it('refuses bytes that are not a message, naming where', () => {
    const refused = (bytes: number[]) => () => readFields(Uint8Array.from(bytes));
    expect(refused([0x08])).toThrow(/a varint runs past the end/);
    expect(refused([0x12, 0x05, 0x61])).toThrow(/field 2 at byte 0 runs past the end/);
    expect(refused([0x08, 0x01, 0x1b])).toThrow(/wire type 3 at byte 2/);
    expect(refused([0x00, 0x01])).toThrow(/field number 0 at byte 0/);
    expect(refused([0x1d, 0x01])).toThrow(/field 3 at byte 0 runs past the end/);
    expect(refused([0x08, ...Array(10).fill(0xff), 0x01])).toThrow(/longer than 10 bytes/);
    // A length beyond what is left, however large, is refused before anything is read.
    expect(refused([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f])).toThrow(/runs past the end/);
  });
});

describe('editGraphOutputs', () => {
  // Encoded with ProtoWriter (checked above against the spec) from onnx.proto's numbers:
  // NodeProto { input = 1, output = 2 }; GraphProto { node = 1, output = 12 }; ModelProto
  // { ir_version = 1, graph = 7, opset_import = 8 }; ValueInfoProto { name = 1 }.
  const node = (inputs: string[], outputs: string[]) => {
    const writer = new ProtoWriter();
    for (const input of inputs) writer.string(1, input);
    for (const output of outputs) writer.string(2, output);
    return writer;
  };
  const output = (name: string) =>
    encodeValueInfo({ name, dataType: OnnxDataType.FLOAT, dims: ['b'] });
  const graph = (...parts: Array<[number, ProtoWriter]>) => {
    const writer = new ProtoWriter();
    for (const [field, part] of parts) writer.message(field, part);
    return writer;
  };
  const opset = new ProtoWriter().int64(2, 17);

  it('removes outputs and the nodes that compute only them, adds outputs, keeps the rest byte for byte', () => {
    // a → p (read by no node); a → q → r (q read by the node making r); a → s, t (t kept).
    const nodes: Array<[number, ProtoWriter]> = [
      [1, node(['a'], ['p'])],
      [1, node(['a'], ['q'])],
      [1, node(['q'], ['r'])],
      [1, node(['a'], ['s', 't'])],
    ];
    const model = new ProtoWriter()
      .int64(1, 8)
      .message(
        7,
        graph(...nodes, [12, output('p')], [12, output('q')], [12, output('r')], [12, output('s')]),
      )
      .message(8, opset)
      .finish();
    const edited = editGraphOutputs(model, {
      remove: ['p', 'q', 's'],
      add: [{ name: 'x', dataType: OnnxDataType.INT64, dims: [] }],
    });
    const expected = new ProtoWriter()
      .int64(1, 8)
      .message(
        7,
        graph(
          nodes[1]!, // q is read: its node stays
          nodes[2]!,
          nodes[3]!, // t is not removed: the node stays
          [12, output('r')],
          [12, encodeValueInfo({ name: 'x', dataType: OnnxDataType.INT64, dims: [] })],
        ),
      )
      .message(8, opset)
      .finish();
    expect(Array.from(edited)).toEqual(Array.from(expected));
    // Nothing to edit: the same bytes.
    expect(Array.from(editGraphOutputs(model, {}))).toEqual(Array.from(model));
  });

  it('reads a graph given in two pieces as protobuf merges them', () => {
    const model = new ProtoWriter()
      .message(7, graph([1, node(['a'], ['p'])], [12, output('p')]))
      .int64(1, 8)
      .message(7, graph([12, output('q')]))
      .finish();
    const expected = new ProtoWriter()
      .message(7, graph([12, output('q')]))
      .int64(1, 8)
      .finish();
    expect(Array.from(editGraphOutputs(model, { remove: ['p'] }))).toEqual(Array.from(expected));
  });

  it("inlines a past-attention If's then_branch (outputs renamed to the If's), and no other If", () => {
    // NodeProto { op_type = 4, attribute = 5 }; AttributeProto { name = 1, g = 6, type = 20 };
    // GraphProto { name = 2, initializer = 5 }.
    const ifNode = (branchName: string, out: string, withInitializer = false) => {
      const branch = new ProtoWriter()
        .message(1, node(['w', 'past'], ['m']).string(4, 'MatMul'))
        .message(1, node(['m', 'n'], ['sum']).string(4, 'Add'))
        .string(2, branchName);
      if (withInitializer) branch.message(5, new ProtoWriter().string(8, 'c'));
      branch.message(12, output('sum'));
      const attribute = (name: string, g: ProtoWriter) =>
        new ProtoWriter().string(1, name).message(6, g).int64(20, 5);
      return node(['cond'], [out])
        .string(4, 'If')
        .message(5, attribute('then_branch', branch))
        .message(5, attribute('else_branch', graph([1, node(['n'], ['only'])]).string(2, 'e')));
    };
    const model = (...ifs: ProtoWriter[]) =>
      new ProtoWriter()
        .message(
          7,
          graph([1, node(['a'], ['n'])], ...ifs.map((x): [number, ProtoWriter] => [1, x]), [
            12,
            output('y'),
          ]),
        )
        .finish();
    const edited = editGraphOutputs(
      model(ifNode(`${PAST_ATTENTION_BRANCH}0`, 'y'), ifNode('other_0', 'z')),
      { inlinePastAttention: true },
    );
    const expected = new ProtoWriter()
      .message(
        7,
        graph(
          [1, node(['a'], ['n'])],
          [1, node(['w', 'past'], ['m']).string(4, 'MatMul')],
          [1, node(['m', 'n'], ['y']).string(4, 'Add')], // sum, renamed to the If's y in place
          [1, ifNode('other_0', 'z')],
          [12, output('y')],
        ),
      )
      .finish();
    expect(Array.from(edited)).toEqual(Array.from(expected));
    // Not asked, or a branch with initializers of its own: the If stays.
    const kept = model(ifNode(`${PAST_ATTENTION_BRANCH}0`, 'y', true));
    expect(Array.from(editGraphOutputs(kept, { inlinePastAttention: true }))).toEqual(
      Array.from(kept),
    );
    const asked = model(ifNode(`${PAST_ATTENTION_BRANCH}0`, 'y'));
    expect(Array.from(editGraphOutputs(asked, {}))).toEqual(Array.from(asked));
  });

  it('refuses bytes without a graph, or not a message', () => {
    expect(() => editGraphOutputs(new ProtoWriter().int64(1, 8).finish(), {})).toThrow(
      /the model has no graph/,
    );
    expect(() => editGraphOutputs(Uint8Array.from([0x3a, 0x09, 0x0a]), {})).toThrow(RangeError);
  });
});
