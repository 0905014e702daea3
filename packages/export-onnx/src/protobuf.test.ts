import { describe, expect, it } from 'vitest';
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
