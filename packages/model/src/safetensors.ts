// The safetensors file format: an 8-byte little-endian header length, a JSON header of
// { name: { dtype, shape, data_offsets } } (+ "__metadata__"), then raw little-endian data.
// Python's `safetensors` reads what this writes; every file read is untrusted and checked
// against the format's rules. Float32 and int32 are read and written; on request, float16 and
// bfloat16 are read, widened to float32. It knows nothing of models.
import { preview } from '@minigpt/errors';
import { ModelError } from './config.js';

export type SafetensorsDtype = 'F32' | 'I32';

export interface SafeTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
  /** The file's dtype of a tensor read with `widenHalf` ('F16' or 'BF16'); absent otherwise. */
  readonly storedAs?: 'F16' | 'BF16';
}

export interface DecodeSafetensorsOptions {
  /**
   * Also read F16 and BF16 tensors, widened to float32. The conversion is exact (every
   * float16 and bfloat16 value, infinities and NaNs included, is a float32); such a tensor
   * comes back as `dtype: 'F32'` with `storedAs` naming the file's dtype.
   */
  readonly widenHalf?: boolean;
  /**
   * Tensors to check against the format (entry, shape, offsets, coverage) but not read or
   * return, whatever their safetensors dtype: buffers a caller ignores (GPT-2's attention
   * masks, which may be BOOL) then cost no copy and no dtype support.
   */
  readonly skip?: (name: string) => boolean;
}

export interface SafetensorsFile {
  readonly tensors: Map<string, SafeTensor>;
  readonly metadata: Record<string, string>;
}

/**
 * The largest header read, in bytes: the bound of the reference Rust implementation
 * (`MAX_HEADER_SIZE` in huggingface/safetensors' tensor.rs), so a file Python refuses is
 * refused here too, and a forged length cannot make us decode gigabytes of "JSON".
 */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** The most tensors one file may hold: a header cannot make us loop or allocate without bound. */
export const SAFETENSORS_MAX_TENSORS = 100_000;

/** The rules a file can break; `ModelError.rule` is one of these. */
export type SafetensorsRule =
  | 'header-length'
  | 'header-json'
  | 'duplicate-name'
  | 'tensor-count'
  | 'entry'
  | 'dtype'
  | 'shape'
  | 'data-offsets'
  | 'byte-length'
  | 'overlap'
  | 'coverage'
  | 'metadata';

const DTYPE_SIZES: Record<SafetensorsDtype, number> = { F32: 4, I32: 4 };

/**
 * The format's other dtypes and their sizes in bytes: named in errors as "valid but not read
 * here" (the fix differs), and sized for tensors that are skipped or widened.
 */
const OTHER_DTYPE_SIZES: ReadonlyMap<string, number> = new Map([
  ['BOOL', 1],
  ['U8', 1],
  ['I8', 1],
  ['F8_E5M2', 1],
  ['F8_E4M3', 1],
  ['I16', 2],
  ['U16', 2],
  ['F16', 2],
  ['BF16', 2],
  ['U32', 4],
  ['F64', 8],
  ['I64', 8],
  ['U64', 8],
]);

const ENTRY_KEYS = ['data_offsets', 'dtype', 'shape'];
const DAMAGED = 'the file is damaged or was not written by a safetensors writer; get it again';

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Throws the ModelError for a broken rule (declared as a type so TypeScript narrows after it). */
type Fail = (rule: SafetensorsRule, problem: string, name?: string, fix?: string) => never;

/**
 * Writes tensors (in the given order) and string metadata as a safetensors file. Refuses
 * what `decodeSafetensors` would refuse, so everything written here reads back.
 */
export function encodeSafetensors(
  tensors: Iterable<readonly [string, SafeTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const fail: Fail = (rule, problem, name) => {
    const subject = name === undefined ? '' : `tensor ${preview(name)} `;
    throw new ModelError(`safetensors: cannot write ${subject}${problem} [${rule}]`, { rule });
  };
  const entries = [...tensors];
  if (entries.length > SAFETENSORS_MAX_TENSORS) {
    fail(
      'tensor-count',
      `${entries.length} tensors: at most ${SAFETENSORS_MAX_TENSORS} fit a file`,
    );
  }
  const header: Record<string, unknown> = {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    fail('metadata', 'metadata that is not an object of strings');
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      fail('metadata', `metadata ${preview(key)} = ${show(value)}: values must be strings`);
    }
  }
  if (Object.keys(metadata).length > 0) header['__metadata__'] = { ...metadata };
  const names = new Set<string>();
  let offset = 0;
  for (const [name, tensor] of entries) {
    if (name === '__metadata__') {
      fail('entry', 'named "__metadata__": the name is reserved for the file\'s metadata');
    }
    if (names.has(name)) fail('duplicate-name', 'twice: names must be unique', name);
    names.add(name);
    const { dtype, shape, data } = tensor;
    if (dtype !== 'F32' && dtype !== 'I32') {
      fail('dtype', `with dtype ${show(dtype)}: only F32 and I32 are written`, name);
    }
    if (!(dtype === 'F32' ? data instanceof Float32Array : data instanceof Int32Array)) {
      fail(
        'dtype',
        `as ${dtype} from data that is not ${dtype === 'F32' ? 'a Float32Array' : 'an Int32Array'}`,
        name,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail('shape', `with shape ${show(shape)}: dimensions must be non-negative integers`, name);
    }
    const expected = shape.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      fail(
        'byte-length',
        `with ${data.length} values for shape [${shape.join(', ')}] (${expected} values)`,
        name,
      );
    }
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  const headerLength = json.length + ((8 - (json.length % 8)) % 8);
  if (headerLength > SAFETENSORS_MAX_HEADER_BYTES) {
    fail(
      'header-length',
      `a ${headerLength}-byte header: readers refuse more than ${SAFETENSORS_MAX_HEADER_BYTES}`,
    );
  }
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let position = 8 + headerLength;
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

interface Layout {
  readonly name: string;
  /** SafetensorsDtype, 'F16' or 'BF16' when widened, or any dtype of a skipped tensor. */
  readonly dtype: string;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
  readonly skipped: boolean;
}

/**
 * Parses a safetensors file; `source` names it in errors. Anything that breaks the format
 * throws a `ModelError` whose `rule` is a `SafetensorsRule` and whose message starts with
 * `source`, names the tensor when there is one, and says which rule was broken. `options`
 * widens F16/BF16 tensors and skips tensors a caller ignores (`DecodeSafetensorsOptions`).
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = 'safetensors',
  options: DecodeSafetensorsOptions = {},
): SafetensorsFile {
  const fail: Fail = (rule, problem, name, fix = DAMAGED) => {
    const subject = name === undefined ? '' : `tensor ${preview(name)}: `;
    throw new ModelError(`${source}: ${subject}${problem} [${rule}] — ${fix}`, {
      file: source,
      rule,
    });
  };
  if (!(bytes instanceof Uint8Array)) {
    // A caller's bug, not a damaged file.
    throw new TypeError(`decodeSafetensors(${source}): expected the file's bytes (a Uint8Array)`);
  }
  if (bytes.length < 8) {
    fail(
      'header-length',
      `is ${bytes.length} bytes; a safetensors file starts with an 8-byte header length`,
    );
  }

  // The header length is a u64; read it as two halves so a huge value cannot round to a
  // small one through a double.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high !== 0 || low > SAFETENSORS_MAX_HEADER_BYTES) {
    const value = (BigInt(high) << 32n) | BigInt(low);
    fail(
      'header-length',
      `header length ${value} is over the format's bound of ${SAFETENSORS_MAX_HEADER_BYTES} bytes`,
    );
  }
  const headerLength = low;
  if (headerLength > bytes.length - 8) {
    fail(
      'header-length',
      `header length ${headerLength} runs past the end of the ${bytes.length}-byte file (truncated?)`,
    );
  }

  const headerBytes = bytes.subarray(8, 8 + headerLength);
  // The header is a JSON object; like the reference reader we refuse anything before its '{'
  // (a BOM, spaces). Trailing spaces are padding that writers add for alignment.
  if (headerBytes[0] !== 0x7b) {
    fail('header-json', 'header does not start with "{"; it must be a JSON object');
  }
  let text: string;
  try {
    // ignoreBOM keeps a BOM in the text, so it cannot slip past the '{' check above.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    return fail('header-json', 'header is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(
      'header-json',
      `header is not valid JSON (${clip((error as Error).message.split('\n')[0]!)})`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    fail('header-json', 'header is JSON but not an object; it must be a JSON object');
  }
  const header = parsed as Record<string, unknown>;
  const names = Object.keys(header);
  const tensorCount = names.length - (Object.hasOwn(header, '__metadata__') ? 1 : 0);
  if (tensorCount > SAFETENSORS_MAX_TENSORS) {
    fail(
      'tensor-count',
      `header lists ${tensorCount} tensors; at most ${SAFETENSORS_MAX_TENSORS} are read`,
    );
  }
  // JSON.parse keeps the last of two equal keys; other readers may keep the first. A name
  // given twice would make two readers see two different models, so it is refused.
  const duplicate = duplicateTopLevelKey(text);
  if (duplicate !== undefined) {
    fail('duplicate-name', 'is named twice in the header; tensor names must be unique', duplicate);
  }

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const layouts: Layout[] = [];
  for (const name of names) {
    const entry = header[name];
    if (name === '__metadata__') {
      metadata = checkMetadata(entry, fail);
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      fail(
        'entry',
        `entry is ${show(entry)}; it must be an object of dtype, shape and data_offsets`,
        name,
      );
    }
    const keys = Object.keys(entry).sort();
    if (keys.join(',') !== ENTRY_KEYS.join(',')) {
      fail(
        'entry',
        `entry has keys ${clip(keys.join(', ')) || '(none)'}; it must have exactly dtype, shape and data_offsets`,
        name,
      );
    }
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    const skipped = options.skip?.(name) === true;
    const read =
      dtype === 'F32' ||
      dtype === 'I32' ||
      (options.widenHalf === true && (dtype === 'F16' || dtype === 'BF16')) ||
      (skipped && typeof dtype === 'string' && OTHER_DTYPE_SIZES.has(dtype));
    if (!read) {
      if (typeof dtype === 'string' && OTHER_DTYPE_SIZES.has(dtype)) {
        fail(
          'dtype',
          `has dtype ${dtype}; this reader reads only F32 and I32${options.widenHalf === true ? ' (and F16, BF16)' : ''}`,
          name,
          'convert the tensor to float32 (or int32) and save the file again',
        );
      }
      fail(
        'dtype',
        `has dtype ${show(dtype)}, which is not a safetensors dtype (F32, I32, F16, …)`,
        name,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(
        'shape',
        `has shape ${show(shape)}; a shape must be a list of non-negative integers`,
        name,
      );
    }
    const rule = `they must be [begin, end] with 0 ≤ begin ≤ end ≤ ${dataLength} (the data's length)`;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o)) ||
      !(0 <= offsets[0] && offsets[0] <= offsets[1])
    ) {
      fail('data-offsets', `has data_offsets ${show(offsets)}; ${rule}`, name);
    }
    if (offsets[1] > dataLength) {
      fail(
        'data-offsets',
        `has data_offsets ${show(offsets)}, past the end of the data (truncated?); ${rule}`,
        name,
        'the file is truncated or damaged; get it again',
      );
    }
    const [begin, end] = offsets as [number, number];
    const size = DTYPE_SIZES[dtype as SafetensorsDtype] ?? OTHER_DTYPE_SIZES.get(dtype as string)!;
    const bytesNeeded = byteLength(shape as number[], size, dataLength);
    if (bytesNeeded !== end - begin) {
      const needed =
        bytesNeeded === undefined
          ? `more than the ${dataLength} bytes of data in the file`
          : `${bytesNeeded}`;
      fail(
        'byte-length',
        `data_offsets [${begin}, ${end}) hold ${end - begin} bytes, but shape ${formatShape(shape as number[])} of ${dtype} (${size} bytes each) needs ${needed}`,
        name,
      );
    }
    layouts.push({ name, dtype: dtype as string, shape: shape as number[], begin, end, skipped });
  }

  // The tensors must tile the data: no byte read twice, none left over (hidden payloads).
  const sorted = [...layouts].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous: Layout | undefined;
  for (const layout of sorted) {
    if (layout.begin < expected) {
      fail(
        'overlap',
        `data [${layout.begin}, ${layout.end}) overlaps tensor ${preview(previous!.name)}'s [${previous!.begin}, ${previous!.end}); tensors must not share bytes`,
        layout.name,
      );
    }
    if (layout.begin > expected) {
      fail(
        'coverage',
        `data starts at ${layout.begin}, but the previous tensor ends at ${expected}; the tensors must cover the data with no gap`,
        layout.name,
      );
    }
    expected = layout.end;
    previous = layout;
  }
  if (expected !== dataLength) {
    fail(
      'coverage',
      `the tensors end at byte ${expected} of ${dataLength} bytes of data; the tensors must cover the data exactly`,
    );
  }

  const tensors = new Map<string, SafeTensor>();
  for (const { name, dtype, shape, begin, end, skipped } of layouts) {
    if (skipped) continue;
    // A copy with its own aligned buffer (a Node Buffer's slice() would share the pool).
    const copy = new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end));
    if (dtype === 'F16' || dtype === 'BF16') {
      if (!isLittleEndian) swap16(copy);
      const halves = new Uint16Array(copy.buffer);
      const data = dtype === 'F16' ? widenFloat16(halves) : widenBfloat16(halves);
      tensors.set(name, { dtype: 'F32', shape, data, storedAs: dtype });
      continue;
    }
    if (!isLittleEndian) swap32(copy);
    tensors.set(name, {
      dtype: dtype as SafetensorsDtype,
      shape,
      data: dtype === 'F32' ? new Float32Array(copy.buffer) : new Int32Array(copy.buffer),
    });
  }
  return { tensors, metadata };
}

/** `__metadata__` must map strings to strings. */
function checkMetadata(entry: unknown, fail: Fail): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    fail('metadata', `__metadata__ is ${show(entry)}; it must be an object of strings`);
  }
  for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
    if (typeof value !== 'string') {
      fail(
        'metadata',
        `__metadata__ ${preview(key)} is ${show(value)}; metadata values must be strings`,
      );
    }
  }
  return entry as Record<string, string>;
}

/**
 * A short rendering of a value from the header. Arrays and objects are summarised unless flat
 * and small: a hostile header may nest a million levels deep, which would overflow the stack
 * of JSON.stringify (and of `preview`, which falls back to String()).
 */
function show(value: unknown): string {
  if (Array.isArray(value)) {
    const flat = value.length <= 8 && value.every((v) => typeof v !== 'object' || v === null);
    return flat ? preview(value) : `an array of ${value.length} items`;
  }
  if (typeof value === 'object' && value !== null) return 'an object';
  return preview(value);
}

/** A shape for a message: the dimensions, or the first few of a very long one. */
function formatShape(shape: readonly number[]): string {
  return shape.length <= 8
    ? `[${shape.join(', ')}]`
    : `[${shape.slice(0, 8).join(', ')}, …] (${shape.length} dimensions)`;
}

/** Text from a hostile file, cut short for a one-line message. */
function clip(text: string, length = 100): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

/**
 * The byte length of `shape` × `size`, or undefined when it exceeds `limit` (checked at
 * every step, so a forged shape cannot overflow into a small number).
 */
function byteLength(shape: readonly number[], size: number, limit: number): number | undefined {
  if (shape.includes(0)) return 0;
  let total = size;
  for (const dim of shape) {
    total *= dim;
    if (total > limit) return undefined;
  }
  return total;
}

/**
 * The first key that appears twice at the top level of `text`, a valid JSON object. It counts
 * the colons at depth 1, each of which follows a key; strings are skipped whole.
 */
function duplicateTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let keyStart = -1;
  let keyEnd = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
      if (depth === 1) [keyStart, keyEnd] = [start, i + 1];
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x3a /* : */ && depth === 1) {
      const key = JSON.parse(text.slice(keyStart, keyEnd)) as string;
      if (seen.has(key)) return key;
      seen.add(key);
    }
  }
  return undefined;
}

/** bfloat16 is the upper half of a float32: shifting its bits up is the exact conversion. */
function widenBfloat16(halves: Uint16Array): Float32Array {
  const out = new Float32Array(halves.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
  return out;
}

function widenFloat16(halves: Uint16Array): Float32Array {
  const table = float16Table();
  const out = new Float32Array(halves.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < halves.length; i++) bits[i] = table[halves[i]!]!;
  return out;
}

let float16Bits: Uint32Array | undefined;

/**
 * The float32 bit pattern of every float16 (a 256 KB table, made on first use): sign kept,
 * exponent rebiased from 15 to 127, mantissa moved up 13 bits; subnormals normalised;
 * infinities and NaNs (payload kept) stay infinities and NaNs.
 */
function float16Table(): Uint32Array {
  if (float16Bits) return float16Bits;
  const table = new Uint32Array(65_536);
  for (let half = 0; half < 65_536; half++) {
    const sign = (half & 0x8000) << 16;
    const exponent = (half >> 10) & 0x1f;
    let mantissa = half & 0x3ff;
    if (exponent === 0x1f) {
      table[half] = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent !== 0) {
      table[half] = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa === 0) {
      table[half] = sign; // ±0
    } else {
      // Subnormal: mantissa · 2^-24. Shift until the implicit bit appears, lowering the
      // exponent once per shift; 113 is the float32 biased exponent of 2^-14.
      let biased = 113;
      while ((mantissa & 0x400) === 0) {
        mantissa <<= 1;
        biased--;
      }
      table[half] = sign | (biased << 23) | ((mantissa & 0x3ff) << 13);
    }
  }
  float16Bits = table;
  return table;
}

function swap16(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i += 2) {
    [bytes[i], bytes[i + 1]] = [bytes[i + 1]!, bytes[i]!];
  }
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
