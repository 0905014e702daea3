// The safetensors reader against hostile files (one per rule), a known-answer file written
// byte by byte, round trips, and fast-check mutations of a valid file: the reader returns a
// file that keeps every rule or throws ModelError, never anything else. No tfjs here.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelError } from './config.js';
import {
  SAFETENSORS_MAX_HEADER_BYTES,
  SAFETENSORS_MAX_TENSORS,
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
  type SafetensorsFile,
  type SafetensorsRule,
} from './safetensors.js';

const SOURCE = 'bad.safetensors';
const RULES: readonly SafetensorsRule[] = [
  'header-length',
  'header-json',
  'duplicate-name',
  'tensor-count',
  'entry',
  'dtype',
  'shape',
  'data-offsets',
  'byte-length',
  'overlap',
  'coverage',
  'metadata',
];

/** A file from a header (JSON text, or a value to stringify) and data; `length` overrides N. */
function file(header: unknown, data: Uint8Array | number = 0, length?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({
  dtype: 'F32',
  shape,
  data_offsets: [begin, end],
});

/** The ModelError `decodeSafetensors` throws for `bytes`; fails the test for anything else. */
function refusal(bytes: Uint8Array): ModelError {
  try {
    decodeSafetensors(bytes, SOURCE);
  } catch (error) {
    expect(error).toBeInstanceOf(ModelError);
    return error as ModelError;
  }
  throw new Error('expected decodeSafetensors to refuse the file');
}

/** Asserts the refusal's class, rule, file, and message: file first, tensor named, rule stated. */
function expectRefused(
  bytes: Uint8Array,
  rule: SafetensorsRule,
  tensor: string | undefined,
  ...texts: RegExp[]
): void {
  const error = refusal(bytes);
  expect(error.rule).toBe(rule);
  expect(error.file).toBe(SOURCE);
  expect(error.message.startsWith(`${SOURCE}: `)).toBe(true);
  expect(error.message).toContain(`[${rule}]`);
  if (tensor !== undefined) {
    expect(error.message.startsWith(`${SOURCE}: tensor ${JSON.stringify(tensor)}: `)).toBe(true);
  }
  for (const text of texts) expect(error.message).toMatch(text);
}

describe('decodeSafetensors refuses hostile files, one rule at a time', () => {
  it('header-length: too short, a u64 over the bound (high bits too), past the end', () => {
    expectRefused(new Uint8Array(7), 'header-length', undefined, /is 7 bytes/);
    expectRefused(
      file('{}', 0, 2n ** 64n - 1n),
      'header-length',
      undefined,
      /18446744073709551615/,
    );
    // 2^32 + 2: read as a double's low half it would be 2, and '{}' would parse.
    expectRefused(
      file('{}', 0, 2n ** 32n + 2n),
      'header-length',
      undefined,
      /header length 4294967298 is over the format's bound of 100000000 bytes/,
    );
    expectRefused(
      file('{}', 0, BigInt(SAFETENSORS_MAX_HEADER_BYTES + 1)),
      'header-length',
      undefined,
      /100000001/,
    );
    expectRefused(
      file('{}', 0, 100n),
      'header-length',
      undefined,
      /header length 100 runs past the end of the 10-byte file \(truncated\?\)/,
    );
  });

  it('header-json: not starting with "{", a BOM, bad UTF-8, bad JSON, not an object', () => {
    const refused = (header: string | Uint8Array, text: RegExp) =>
      expectRefused(
        typeof header === 'string' ? file(header) : withHeaderBytes(header),
        'header-json',
        undefined,
        text,
      );
    refused('', /does not start with "\{"/);
    refused(' {}', /does not start with "\{"/);
    refused('[]', /must be a JSON object/);
    refused('null', /must be a JSON object/);
    refused('7', /must be a JSON object/);
    refused('\uFEFF{}', /does not start with "\{"/);
    refused(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), /not valid UTF-8/);
    refused('{"a":', /not valid JSON/);
    refused('{} x', /not valid JSON/);
  });

  it('accepts trailing spaces after the header (writers pad to 8 bytes)', () => {
    const decoded = decodeSafetensors(
      file(`{"a":${JSON.stringify(f32([1], 0, 4))}}   `, 4),
      SOURCE,
    );
    expect([...decoded.tensors.keys()]).toEqual(['a']);
  });

  it('duplicate-name: a tensor named twice (JSON.parse would keep only the last)', () => {
    const entry = JSON.stringify(f32([1], 0, 4));
    expectRefused(
      file(`{"a":${entry},"b":{"x":[{"a":1}]},"a" :${entry}}`, 4),
      'duplicate-name',
      'a',
      /named twice/,
    );
    // The same key inside entries, or a key-like string in a value, is not a duplicate.
    const inner = file(`{"a":${entry},"__metadata__":{"a":"a:b\\":\\"a"}}`, 4);
    expect(decodeSafetensors(inner, SOURCE).metadata).toEqual({ a: 'a:b":"a' });
  });

  it('tensor-count: more tensors than the cap', () => {
    const names = Array.from({ length: SAFETENSORS_MAX_TENSORS + 1 }, (_, i) => `"t${i}":0`);
    expectRefused(
      file(`{${names.join(',')}}`),
      'tensor-count',
      undefined,
      new RegExp(
        `lists ${SAFETENSORS_MAX_TENSORS + 1} tensors; at most ${SAFETENSORS_MAX_TENSORS}`,
      ),
    );
  });

  it('entry: not an object, keys missing or extra', () => {
    expectRefused(file({ w: null }), 'entry', 'w', /entry is null; it must be an object/);
    expectRefused(file({ w: [1, 2] }), 'entry', 'w', /entry is \[1,2\]/);
    expectRefused(
      file({ w: { dtype: 'F32', shape: [1] } }, 4),
      'entry',
      'w',
      /has keys dtype, shape; it must have exactly dtype, shape and data_offsets/,
    );
    expectRefused(
      file({ w: { ...f32([1], 0, 4), offsets: [0, 4] } }, 4),
      'entry',
      'w',
      /has keys data_offsets, dtype, offsets, shape/,
    );
  });

  it('dtype: another safetensors dtype (with the fix), or no dtype at all', () => {
    expectRefused(
      file({ w: { ...f32([1], 0, 2), dtype: 'F16' } }, 2),
      'dtype',
      'w',
      /has dtype F16; this reader reads only F32 and I32 .*convert the tensor to float32/,
    );
    expectRefused(
      file({ w: { ...f32([1], 0, 4), dtype: 'float32' } }, 4),
      'dtype',
      'w',
      /"float32", which is not a safetensors dtype/,
    );
    expectRefused(file({ w: { ...f32([1], 0, 4), dtype: 4 } }, 4), 'dtype', 'w', /dtype 4/);
  });

  it('shape: negative, fractional, unsafe, not a list, nested', () => {
    for (const shape of [[-1], [1.5], [2 ** 53], '4', [2, null], [[2]]]) {
      expectRefused(
        file({ w: { ...f32([1], 0, 4), shape } }, 4),
        'shape',
        'w',
        /a shape must be a list of non-negative integers/,
      );
    }
  });

  it('data-offsets: malformed, reversed, negative, past the end of the data', () => {
    for (const offsets of [[0], [0, 4, 8], [4, 0], [-4, 0], [0, 1e300], ['0', '4'], null]) {
      expectRefused(
        file({ w: { ...f32([1], 0, 4), data_offsets: offsets } }, 4),
        'data-offsets',
        'w',
        /they must be \[begin, end\] with 0 ≤ begin ≤ end ≤ 4 \(the data's length\)/,
      );
    }
    expectRefused(
      file({ w: f32([2], 0, 8) }, 4),
      'data-offsets',
      'w',
      /\[0,8\], past the end of the data \(truncated\?\).*the file is truncated or damaged/,
    );
  });

  it('byte-length: the offsets do not hold shape × dtype size bytes, even for huge shapes', () => {
    expectRefused(
      file({ w: f32([1], 0, 8) }, 8),
      'byte-length',
      'w',
      /data_offsets \[0, 8\) hold 8 bytes, but shape \[1\] of F32 \(4 bytes each\) needs 4/,
    );
    expectRefused(
      file({ w: f32([3], 0, 8) }, 8),
      'byte-length',
      'w',
      /hold 8 bytes, but shape \[3\] of F32 \(4 bytes each\) needs more than the 8 bytes of data in the file/,
    );
    // 2^30 · 2^30 · 2^30 · 4 overflows no check: the product is refused once it passes the data.
    expectRefused(
      file({ w: f32([2 ** 30, 2 ** 30, 2 ** 30], 0, 0) }, 0),
      'byte-length',
      'w',
      /needs more than the 0 bytes of data in the file/,
    );
    expectRefused(
      file({ w: { dtype: 'I32', shape: [], data_offsets: [0, 0] } }, 0),
      'byte-length',
      'w',
      /shape \[\] of I32 \(4 bytes each\) needs 4/,
    );
  });

  it('overlap: two tensors sharing bytes (also a zero-length one inside another)', () => {
    expectRefused(
      file({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12),
      'overlap',
      'b',
      /data \[4, 12\) overlaps tensor "a"'s \[0, 8\); tensors must not share bytes/,
    );
    expectRefused(file({ a: f32([2], 0, 8), z: f32([0], 4, 4) }, 8), 'overlap', 'z');
  });

  it('coverage: a gap between tensors, bytes after the last, data with no tensors', () => {
    expectRefused(
      file({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12),
      'coverage',
      'b',
      /starts at 8, but the previous tensor ends at 4; the tensors must cover the data/,
    );
    expectRefused(
      file({ a: f32([1], 0, 4) }, 8),
      'coverage',
      undefined,
      /the tensors end at byte 4 of 8 bytes of data/,
    );
    expectRefused(file({}, 4), 'coverage', undefined, /end at byte 0 of 4/);
  });

  it('metadata: not an object of strings', () => {
    for (const metadata of [null, [], 'pt', 5]) {
      expectRefused(file({ __metadata__: metadata }), 'metadata', undefined, /__metadata__ is/);
    }
    expectRefused(
      file({ __metadata__: { step: 5 } }),
      'metadata',
      undefined,
      /__metadata__ "step" is 5; metadata values must be strings/,
    );
  });

  it('survives a header nested 100,000 levels deep (no stack overflow in the messages)', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expectRefused(file(`{"w":${deep}}`), 'entry', 'w', /an array of 1 items/);
    expectRefused(file(`{"w":{"dtype":"F32","shape":${deep},"data_offsets":[0,0]}}`), 'shape', 'w');
    expectRefused(file(`{"__metadata__":{"k":${deep}}}`), 'metadata', undefined);
  });

  it('names a hostile tensor name short and quoted', () => {
    const name = `x\n${'y'.repeat(10_000)}`;
    const error = refusal(file({ [name]: null }));
    expect(error.message.length).toBeLessThan(300);
    expect(error.message).toContain('tensor "x\\nyyyy');
  });

  it('keeps messages short for long shapes and entries with many keys', () => {
    const shape = refusal(file({ w: f32(Array(10_000).fill(1), 0, 8) }, 8));
    expect(shape.rule).toBe('byte-length');
    expect(shape.message).toMatch(/shape \[1, 1, 1, 1, 1, 1, 1, 1, …\] \(10000 dimensions\)/);
    expect(shape.message.length).toBeLessThan(400);
    const keys = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, 0]));
    const entry = refusal(file({ w: keys }));
    expect(entry.rule).toBe('entry');
    expect(entry.message.length).toBeLessThan(400);
  });
});

/** The bytes of `header` as a file, with N = its length. */
function withHeaderBytes(header: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + header.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  return out;
}

describe('the safetensors layout, byte for byte', () => {
  // Hand-written: N = 144 (138 bytes of JSON + 6 spaces), then 1.0f, -2.0f, int32 7, all LE.
  const header =
    '{"__metadata__":{"format":"pt"},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"I32","shape":[],"data_offsets":[8,12]}}' +
    '      ';
  // prettier-ignore
  const known = new Uint8Array([
    0x90, 0, 0, 0, 0, 0, 0, 0,
    ...new TextEncoder().encode(header),
    0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x07, 0x00, 0x00, 0x00,
  ]);

  it('writes exactly the known bytes', () => {
    expect(header.length).toBe(144);
    const written = encodeSafetensors(
      [
        ['a', { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) }],
        ['b', { dtype: 'I32', shape: [], data: new Int32Array([7]) }],
      ],
      { format: 'pt' },
    );
    expect([...written]).toEqual([...known]);
  });

  it('reads the known bytes, from any offset of a larger buffer, into aligned copies', () => {
    const backing = new Uint8Array(known.length + 3);
    backing.set(known, 1); // an unaligned view, as a Node Buffer from the pool may be
    const decoded = decodeSafetensors(backing.subarray(1, 1 + known.length), SOURCE);
    expect(decoded.metadata).toEqual({ format: 'pt' });
    const a = decoded.tensors.get('a')!;
    const b = decoded.tensors.get('b')!;
    expect([a.dtype, a.shape, [...a.data]]).toEqual(['F32', [2], [1, -2]]);
    expect([b.dtype, b.shape, [...b.data]]).toEqual(['I32', [], [7]]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(b.data).toBeInstanceOf(Int32Array);
    expect(a.data.byteOffset % 4).toBe(0);
    expect(a.data.buffer).not.toBe(backing.buffer);
  });

  it('reads tensors in any header order (Python sorts by dtype, then name)', () => {
    const bytes = file(
      { b: { dtype: 'I32', shape: [1], data_offsets: [4, 8] }, a: f32([1], 0, 4) },
      new Uint8Array([0, 0, 0x80, 0x3f, 9, 0, 0, 0]),
    );
    const decoded = decodeSafetensors(bytes, SOURCE);
    expect([...decoded.tensors.get('a')!.data, ...decoded.tensors.get('b')!.data]).toEqual([1, 9]);
  });
});

describe('encodeSafetensors refuses what the reader would refuse', () => {
  const one = (tensor: Partial<SafeTensor>, name = 'w') =>
    [
      [name, { dtype: 'F32', shape: [1], data: new Float32Array(1), ...tensor } as SafeTensor],
    ] as const;
  const refused = (action: () => unknown, rule: SafetensorsRule, text: RegExp) => {
    let error: unknown;
    try {
      action();
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ModelError);
    expect((error as ModelError).rule).toBe(rule);
    expect((error as ModelError).message).toMatch(text);
  };

  it('names, shapes, dtypes, data and metadata', () => {
    refused(() => encodeSafetensors(one({}, '__metadata__')), 'entry', /reserved/);
    refused(
      () => encodeSafetensors([...one({}), ...one({})]),
      'duplicate-name',
      /cannot write tensor "w" twice/,
    );
    refused(() => encodeSafetensors(one({ shape: [1.5] })), 'shape', /\[1\.5\]/);
    refused(() => encodeSafetensors(one({ shape: [-1] })), 'shape', /non-negative integers/);
    refused(
      () => encodeSafetensors(one({ shape: [2] })),
      'byte-length',
      /1 values for shape \[2\]/,
    );
    refused(() => encodeSafetensors(one({ dtype: 'I32' })), 'dtype', /not an Int32Array/);
    refused(() => encodeSafetensors(one({ dtype: 'F16' as never })), 'dtype', /only F32 and I32/);
    refused(
      () => encodeSafetensors(one({}), { step: 5 as unknown as string }),
      'metadata',
      /values must be strings/,
    );
  });
});

/** Every rule a decoded file must keep, checked from the outside. */
function expectKeepsRules(decoded: SafetensorsFile, bytes: Uint8Array): void {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  let total = 0;
  for (const [name, tensor] of decoded.tensors) {
    expect(name).not.toBe('__metadata__');
    expect(['F32', 'I32']).toContain(tensor.dtype);
    expect(tensor.data).toBeInstanceOf(tensor.dtype === 'F32' ? Float32Array : Int32Array);
    expect(tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true);
    expect(tensor.data.length).toBe(tensor.shape.reduce((a, b) => a * b, 1));
    expect(tensor.data.byteOffset % 4).toBe(0);
    total += tensor.data.byteLength;
  }
  expect(total).toBe(bytes.length - 8 - headerLength); // covers the data exactly
  for (const value of Object.values(decoded.metadata)) expect(typeof value).toBe('string');
}

/** decodeSafetensors either keeps every rule or throws a ModelError naming the file. */
function decodesOrRefuses(bytes: Uint8Array): void {
  let decoded: SafetensorsFile;
  try {
    decoded = decodeSafetensors(bytes, SOURCE);
  } catch (error) {
    expect(error).toBeInstanceOf(ModelError);
    expect(RULES).toContain((error as ModelError).rule);
    expect((error as ModelError).file).toBe(SOURCE);
    expect((error as ModelError).message.startsWith(`${SOURCE}: `)).toBe(true);
    return;
  }
  expectKeepsRules(decoded, bytes);
}

const tensorArbitrary = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }).chain((shape) =>
    fc
      .array(fc.float({ noNaN: false }), {
        minLength: shape.reduce((a, b) => a * b, 1),
        maxLength: shape.reduce((a, b) => a * b, 1),
      })
      .map((values): SafeTensor => ({ dtype: 'F32', shape, data: new Float32Array(values) })),
  ),
  fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }).chain((shape) =>
    fc
      .array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), {
        minLength: shape.reduce((a, b) => a * b, 1),
        maxLength: shape.reduce((a, b) => a * b, 1),
      })
      .map((values): SafeTensor => ({ dtype: 'I32', shape, data: new Int32Array(values) })),
  ),
);

const fileArbitrary = fc
  .record({
    tensors: fc.uniqueArray(
      fc.tuple(
        fc.string({ maxLength: 8 }).filter((name) => name !== '__metadata__'),
        tensorArbitrary,
      ),
      { maxLength: 5, selector: ([name]) => name },
    ),
    metadata: fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), {
      maxKeys: 3,
    }),
  })
  .map(({ tensors, metadata }) => ({
    tensors,
    metadata,
    bytes: encodeSafetensors(tensors, metadata),
  }));

/** One change to a valid file's bytes or header. */
type Mutation = (bytes: Uint8Array) => Uint8Array;

/** Edits the header as JSON and writes it back with its new length (if it still parses). */
const headerEdit = (edit: (header: Record<string, unknown>) => void): Mutation => {
  return (bytes) => {
    if (bytes.length < 8) return bytes;
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    } catch {
      return bytes; // an earlier mutation broke it; the reader is tested on that as it is
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) return bytes;
    edit(header as Record<string, unknown>);
    return file(header, bytes.subarray(8 + n));
  };
};

const pick = <T>(items: readonly T[], index: number): T | undefined =>
  items.length === 0 ? undefined : items[index % items.length];

const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  // random bytes overwritten anywhere (header length, JSON, data)
  fc
    .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
    .map((edits) => (bytes: Uint8Array) => {
      const out = new Uint8Array(bytes);
      for (const [at, value] of edits) out[at % out.length] = value;
      return out;
    }),
  // truncated, or extended with junk
  fc.nat().map((keep) => (bytes: Uint8Array) => bytes.slice(0, keep % (bytes.length + 1))),
  fc
    .uint8Array({ minLength: 1, maxLength: 16 })
    .map((junk) => (bytes: Uint8Array) => new Uint8Array([...bytes, ...junk])),
  // another header length
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => (bytes: Uint8Array) => {
    if (bytes.length < 8) return bytes;
    const out = new Uint8Array(bytes);
    new DataView(out.buffer).setBigUint64(0, n, true);
    return out;
  }),
  fc.integer({ min: -16, max: 16 }).map((delta) => (bytes: Uint8Array) => {
    if (bytes.length < 8) return bytes;
    const out = new Uint8Array(bytes);
    const view = new DataView(out.buffer);
    view.setBigUint64(0, BigInt(Math.max(0, Number(view.getBigUint64(0, true)) + delta)), true);
    return out;
  }),
  // a field of an entry set to any JSON value, an entry replaced, removed or added
  fc
    .tuple(fc.nat(), fc.constantFrom('dtype', 'shape', 'data_offsets', 'extra'), fc.jsonValue())
    .map(([index, key, value]) =>
      headerEdit((header) => {
        const name = pick(Object.keys(header), index);
        const entry = name === undefined ? undefined : header[name];
        if (typeof entry === 'object' && entry !== null)
          (entry as Record<string, unknown>)[key] = value;
      }),
    ),
  fc.tuple(fc.nat(), fc.jsonValue()).map(([index, value]) =>
    headerEdit((header) => {
      const name = pick(Object.keys(header), index);
      if (name !== undefined) header[name] = value;
    }),
  ),
  fc.nat().map((index) =>
    headerEdit((header) => {
      const name = pick(Object.keys(header), index);
      if (name !== undefined) delete header[name];
    }),
  ),
  fc.tuple(fc.string({ maxLength: 6 }), fc.jsonValue()).map(([name, value]) =>
    headerEdit((header) => {
      header[name] = value;
    }),
  ),
  // offsets nudged by a few bytes (the overlap and coverage rules)
  fc.tuple(fc.nat(), fc.integer({ min: -8, max: 8 }), fc.boolean()).map(([index, delta, end]) =>
    headerEdit((header) => {
      const name = pick(
        Object.keys(header).filter((key) => key !== '__metadata__'),
        index,
      );
      const entry = name === undefined ? undefined : header[name];
      const offsets = (entry as { data_offsets?: unknown } | null | undefined)?.data_offsets;
      if (Array.isArray(offsets) && typeof offsets[end ? 1 : 0] === 'number') {
        offsets[end ? 1 : 0] += delta;
      }
    }),
  ),
);

describe('decodeSafetensors under random files (fast-check)', () => {
  it('round-trips any valid set of tensors and metadata', () => {
    fc.assert(
      fc.property(fileArbitrary, ({ tensors, metadata, bytes }) => {
        const decoded = decodeSafetensors(bytes, SOURCE);
        expectKeepsRules(decoded, bytes);
        expect(decoded.metadata).toEqual(metadata);
        expect([...decoded.tensors.keys()].sort()).toEqual(tensors.map(([name]) => name).sort());
        for (const [name, tensor] of tensors) {
          const read = decoded.tensors.get(name)!;
          expect(read.dtype).toBe(tensor.dtype);
          expect(read.shape).toEqual(tensor.shape);
          // Compare bits, so NaN payloads and −0 count too.
          expect(new Uint8Array(read.data.buffer)).toEqual(
            new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength),
          );
        }
      }),
      { numRuns: 200 },
    );
  });

  it('mutated files decode to something that keeps every rule, or throw ModelError', () => {
    fc.assert(
      fc.property(
        fileArbitrary,
        fc.array(mutationArbitrary, { minLength: 1, maxLength: 3 }),
        ({ bytes }, mutations) => {
          decodesOrRefuses(mutations.reduce((current, mutate) => mutate(current), bytes));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('any JSON header with any data decodes within the rules or throws ModelError', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue(), fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue())),
        fc.uint8Array({ maxLength: 32 }),
        fc.constantFrom('', ' ', '  \n'),
        (header, data, padding) => {
          decodesOrRefuses(file(JSON.stringify(header) + padding, data));
        },
      ),
      { numRuns: 500 },
    );
  });
});
