// The safetensors file format: an 8-byte little-endian header length, a JSON header of
// { name: { dtype, shape, data_offsets } } (+ "__metadata__"), then raw little-endian data.
// Python's `safetensors` reads what this writes. Only float32 and int32 are handled.
import { ModelError } from './config.js';

export type SafetensorsDtype = 'F32' | 'I32';

export interface SafeTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

export interface SafetensorsFile {
  readonly tensors: Map<string, SafeTensor>;
  readonly metadata: Record<string, string>;
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function encodeSafetensors(
  tensors: Iterable<readonly [string, SafeTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = [...tensors];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let offset = 0;
  for (const [name, tensor] of entries) {
    const expected = tensor.shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== expected) {
      throw new ModelError(
        `safetensors: "${name}" has ${tensor.data.length} values for shape [${tensor.shape.join(', ')}]`,
      );
    }
    header[name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + tensor.data.byteLength],
    };
    offset += tensor.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  const headerBytes = new TextEncoder().encode(json);
  const padding = (8 - (headerBytes.length % 8)) % 8;
  json += ' '.repeat(padding);
  const headerPadded = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerPadded.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerPadded.length), true);
  out.set(headerPadded, 8);
  let position = 8 + headerPadded.length;
  for (const [, tensor] of entries) {
    const bytes = new Uint8Array(
      tensor.data.buffer,
      tensor.data.byteOffset,
      tensor.data.byteLength,
    );
    out.set(bytes, position);
    if (!isLittleEndian) swap32(out.subarray(position, position + bytes.length));
    position += bytes.length;
  }
  return out;
}

/** Parses a safetensors file; `source` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): SafetensorsFile {
  const fail = (problem: string): never => {
    throw new ModelError(`${source}: ${problem}`);
  };
  if (bytes.length < 8) fail(`file is too short (${bytes.length} bytes) to be safetensors`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8)
    fail(`header length ${headerLength} runs past the end of the file (truncated?)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
      string,
      unknown
    >;
  } catch {
    return fail('header is not valid JSON (not a safetensors file, or damaged)');
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const {
      dtype,
      shape,
      data_offsets: offsets,
    } = entry as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    if (dtype !== 'F32' && dtype !== 'I32')
      fail(`tensor "${name}" has dtype ${dtype}; only F32 and I32 are supported`);
    const [begin, end] = offsets;
    const count = shape.reduce((a, b) => a * b, 1);
    if (end > dataLength || end - begin !== count * 4) {
      fail(
        `tensor "${name}" data [${begin}, ${end}) does not fit its shape or the file (truncated?)`,
      );
    }
    // A copy with its own aligned buffer (a Node Buffer's slice() would share the pool).
    const copy = new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end));
    if (!isLittleEndian) swap32(copy);
    tensors.set(name, {
      dtype: dtype as SafetensorsDtype,
      shape,
      data: dtype === 'F32' ? new Float32Array(copy.buffer) : new Int32Array(copy.buffer),
    });
  }
  return { tensors, metadata };
}

function swap32(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i += 4) {
    [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]] = [
      bytes[i + 3]!,
      bytes[i + 2]!,
      bytes[i + 1]!,
      bytes[i]!,
    ];
  }
}
