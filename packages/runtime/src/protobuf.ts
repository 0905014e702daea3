// A minimal protocol-buffers encoder (varints, length-delimited fields and packed repeated
// values — all that writing an ONNX ModelProto needs) and a reader that splits a message into
// its fields without decoding them (all that editing a graph's outputs needs). Hand-written
// because the exporter needs only a dozen message types (~150 lines), and a schema library
// would add a runtime dependency and a generated-code step for no gain; tests decode the
// output with onnxruntime and ONNX's own checker.

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_FIXED32 = 5;
const WIRE_LENGTH_DELIMITED = 2;

/** Accumulates the bytes of one message. Nested messages are encoded first, then embedded. */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;
  private static readonly encoder = new TextEncoder();

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private tag(field: number, wire: number): void {
    this.varint((BigInt(field) << 3n) | BigInt(wire));
  }

  /** A varint; negative int64 values use ten bytes (two's complement), as protobuf does. */
  private varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v !== 0n);
    this.push(Uint8Array.from(bytes));
  }

  int64(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.varint(BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.push(bytes);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LENGTH_DELIMITED);
    this.varint(BigInt(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, ProtoWriter.encoder.encode(value));
  }

  /** A nested message; a ProtoWriter's chunks are taken over as they are, not copied. */
  message(field: number, value: ProtoWriter | Uint8Array): this {
    if (!(value instanceof ProtoWriter)) return this.bytes(field, value);
    this.tag(field, WIRE_LENGTH_DELIMITED);
    this.varint(BigInt(value.length));
    for (const chunk of value.chunks) this.push(chunk);
    return this;
  }

  /** Bytes that are already encoded fields (a span readFields found), as they are. */
  raw(encoded: Uint8Array): this {
    this.push(encoded);
    return this;
  }

  /** Repeated int64 values, packed into one length-delimited field. */
  packedInt64(field: number, values: ReadonlyArray<number | bigint>): this {
    const inner = new ProtoWriter();
    for (const value of values) inner.varint(BigInt(value));
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

/** One field of an encoded message, as readFields finds it. */
export interface ProtoField {
  readonly field: number;
  readonly wire: number;
  /** The whole field, tag included: `bytes.subarray(start, end)` re-encodes it as it was. */
  readonly start: number;
  readonly end: number;
  /** A length-delimited field's payload (a string, bytes, a message or packed values). */
  readonly payload?: Uint8Array;
}

/**
 * The top-level fields of an encoded message, in order, payloads as views (no copy). Throws a
 * RangeError on bytes that are not a message: a varint over 10 bytes, a length past the end,
 * a wire type protobuf does not have (3 and 4, the deprecated groups, included). `bytes` may
 * come from anywhere: every length is checked against what is left before it is used.
 */
export function readFields(bytes: Uint8Array): ProtoField[] {
  const fields: ProtoField[] = [];
  let offset = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let count = 0; count < 10; count++) {
      if (offset >= bytes.length) throw new RangeError('protobuf: a varint runs past the end');
      const byte = bytes[offset++]!;
      value += (byte & 0x7f) * scale; // exact below 2^53, which bounds every length here
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new RangeError(`protobuf: a varint longer than 10 bytes at byte ${offset}`);
  };
  while (offset < bytes.length) {
    const start = offset;
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new RangeError(`protobuf: field number 0 at byte ${start}`);
    let payload: Uint8Array | undefined;
    if (wire === WIRE_VARINT) varint();
    else if (wire === WIRE_FIXED64 || wire === WIRE_FIXED32)
      offset += wire === WIRE_FIXED64 ? 8 : 4;
    else if (wire === WIRE_LENGTH_DELIMITED) {
      const length = varint();
      if (length > bytes.length - offset)
        throw new RangeError(`protobuf: field ${field} at byte ${start} runs past the end`);
      payload = bytes.subarray(offset, offset + length);
      offset += length;
    } else throw new RangeError(`protobuf: wire type ${wire} at byte ${start}`);
    if (offset > bytes.length)
      throw new RangeError(`protobuf: field ${field} at byte ${start} runs past the end`);
    fields.push({ field, wire, start, end: offset, ...(payload ? { payload } : {}) });
  }
  return fields;
}
