// Mutators for fuzzing: byte-level edits of a file, structure-aware edits of a parsed JSON
// value (replace, delete, add, deepen), and of a safetensors file's header. Every choice
// comes from a seeded @minigpt/random generator, so case N of a run is reproducible.

/** Values a hostile file likes to hold where something else belongs. */
const NASTY_VALUES = [
  null,
  true,
  false,
  0,
  -1,
  1,
  0.5,
  -0.0,
  1e308,
  -1e308,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  1e21,
  '',
  'x',
  '../..',
  '/etc/passwd',
  '..\\..\\x',
  'C:\\x',
  'file:///x',
  '\u0000',
  'NaN',
  '-1',
  '{i}',
  '{i}{i}',
  '(a+)+$',
  'F32',
  'I32',
  'F64',
  'ckpt-000000001',
  [],
  {},
  [0],
  [0, 0],
  [-1, 2],
  [1, 0],
  { __proto__: null, constructor: 1 },
];

const INTERESTING_BYTES = [
  0, 1, 0x7f, 0x80, 0xff, 0x7b, 0x7d, 0x22, 0x2d, 0x30, 0x39, 0x20, 0x5b, 0x5d,
];

const pick = (random, list) => list[random.nextInt(list.length)];

/** A copy of `bytes` with 1–4 random edits. */
export function mutateBytes(bytes, random) {
  let out = Uint8Array.from(bytes);
  const edits = 1 + random.nextInt(4);
  for (let e = 0; e < edits; e++) {
    const at = out.length === 0 ? 0 : random.nextInt(out.length);
    switch (random.nextInt(8)) {
      case 0: // flip a bit
        if (out.length > 0) out[at] ^= 1 << random.nextInt(8);
        break;
      case 1: // a random byte
        if (out.length > 0) out[at] = random.nextInt(256);
        break;
      case 2: // an interesting byte
        if (out.length > 0) out[at] = pick(random, INTERESTING_BYTES);
        break;
      case 3: {
        // insert random bytes
        const insert = Uint8Array.from({ length: 1 + random.nextInt(16) }, () =>
          random.nextInt(256),
        );
        out = concat(out.subarray(0, at), insert, out.subarray(at));
        break;
      }
      case 4: // delete a range
        out = concat(
          out.subarray(0, at),
          out.subarray(Math.min(out.length, at + 1 + random.nextInt(64))),
        );
        break;
      case 5: // truncate
        out = out.subarray(0, at);
        break;
      case 6: {
        // duplicate a range
        const end = Math.min(out.length, at + 1 + random.nextInt(256));
        out = concat(out.subarray(0, end), out.subarray(at, end), out.subarray(end));
        break;
      }
      default: // a little-endian 64-bit number written somewhere (lengths, offsets)
        if (out.length >= 8) {
          const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
          const where = random.nextInt(4) === 0 ? 0 : random.nextInt(out.length - 7);
          const values = [
            0n,
            1n,
            2n ** 32n,
            2n ** 53n,
            2n ** 64n - 1n,
            BigInt(out.length),
            BigInt(Math.max(0, out.length - 9)),
          ];
          view.setBigUint64(where, pick(random, values), true);
        }
    }
  }
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Marker replaced by deeply nested arrays in the JSON text (stringify would overflow). */
const DEEP = '\u0000deep\u0000';

/**
 * The JSON text of `value` with 1–3 structure-aware edits: a node replaced by a nasty value,
 * a long string or a deeply nested array; a key deleted or added; an array element removed
 * or duplicated; a number nudged. Returns a string.
 */
export function mutateJsonText(value, random) {
  const copy = structuredClone(value);
  const root = { value: copy };
  const edits = 1 + random.nextInt(3);
  let deep = 0;
  for (let e = 0; e < edits; e++) {
    const [parent, key] = randomSlot(root, random);
    const target = parent[key];
    switch (random.nextInt(8)) {
      case 0:
      case 1:
        parent[key] = structuredClone(pick(random, NASTY_VALUES));
        break;
      case 2:
        parent[key] = 'y'.repeat(1 + random.nextInt(200_000));
        break;
      case 3:
        parent[key] = DEEP;
        deep = 1 + random.nextInt(100_000);
        break;
      case 4: // delete
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else if (parent !== root) delete parent[key];
        break;
      case 5: // add a key or element
        if (target !== null && typeof target === 'object') {
          if (Array.isArray(target)) target.push(structuredClone(pick(random, NASTY_VALUES)));
          else
            target[
              pick(random, ['__proto__', 'constructor', 'extra', '', 'formatVersion', 'type'])
            ] = pick(random, NASTY_VALUES);
        }
        break;
      case 6: // duplicate an element many times
        if (Array.isArray(target) && target.length > 0) {
          const item = target[random.nextInt(target.length)];
          // Many copies of a small item; few of a large one (inputs stay under ~10 MB).
          const small = typeof item !== 'object' && String(item).length < 1000;
          for (let i = random.nextInt(small ? 1000 : 10); i > 0; i--) target.push(item);
        }
        break;
      default: // nudge a number
        if (typeof target === 'number') {
          parent[key] = pick(random, [
            target + 1,
            target - 1,
            target * 2,
            -target,
            target / 3,
            0,
            target * 1e6,
          ]);
        } else parent[key] = structuredClone(pick(random, NASTY_VALUES));
    }
  }
  const text = JSON.stringify(root.value) ?? 'null';
  return deep > 0
    ? text.replace(JSON.stringify(DEEP), `${'['.repeat(deep)}${']'.repeat(deep)}`)
    : text;
}

/** A random (parent, key) pair inside `root.value`, reached by a random walk. */
function randomSlot(root, random) {
  let parent = root;
  let key = 'value';
  for (let depth = 0; depth < 8; depth++) {
    const node = parent[key];
    if (node === null || typeof node !== 'object') break;
    const keys = Object.keys(node);
    if (keys.length === 0 || random.nextInt(3) === 0) break;
    parent = node;
    key = Array.isArray(node) ? String(random.nextInt(node.length)) : pick(random, keys);
  }
  return [parent, key];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A safetensors file mutated in its bytes, or in its header (re-encoded with its length). */
export function mutateSafetensors(bytes, random) {
  if (random.nextInt(2) === 0 || bytes.length < 8) return mutateBytes(bytes, random);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.getBigUint64(0, true));
  const header = JSON.parse(decoder.decode(bytes.subarray(8, 8 + length)));
  const text = encoder.encode(mutateJsonText(header, random));
  const out = new Uint8Array(8 + text.length + (bytes.length - 8 - length));
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(bytes.subarray(8 + length), 8 + text.length);
  return out;
}

/** JSON text mutated as a value (most cases) or as bytes. */
export function mutateJsonFile(json, random) {
  if (random.nextInt(4) === 0) return mutateBytes(encoder.encode(JSON.stringify(json)), random);
  return encoder.encode(mutateJsonText(json, random));
}
