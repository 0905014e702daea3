// Random mutations of a valid manifest: parseManifest accepts exactly the manifests an
// independent statement of the rules (below) accepts, returns only fields it checked, and
// fails any other way than a one-line ManifestError naming the file never.
import { posix, win32 } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManifestError, parseManifest } from './index.js';
import { manifestJson } from './test-manifest.js';

const valid = manifestJson({
  vocabSize: 30,
  blockSize: 16,
  nLayer: 2,
  nHead: 2,
  nEmbd: 32,
  dropout: 0,
  bias: true,
});

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The rules of docs and README, written out again without zod: the broken ones. */
function brokenRules(json: unknown): string[] {
  if (!isObject(json)) return ['not an object'];
  const broken: string[] = [];
  const section = (key: string): Json => {
    if (!isObject(json[key])) broken.push(`${key} is not an object`);
    return isObject(json[key]) ? json[key] : {};
  };
  const model = section('model');
  const inputs = section('inputs');
  const outputs = section('outputs');
  const dtypes = section('dtypes');
  const files = section('files');
  if (json['format'] !== 'minigpt-onnx') broken.push('format');
  if (json['formatVersion'] !== 2) broken.push('formatVersion');
  const count = (where: string, value: unknown, max: number, optional = false) => {
    if (optional && value === undefined) return;
    if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max)
      broken.push(where);
  };
  count('opset', json['opset'], 1000);
  count('irVersion', json['irVersion'], 1000, true);
  count('vocabSize', model['vocabSize'], 4_194_304);
  count('blockSize', model['blockSize'], 1_048_576);
  count('nLayer', model['nLayer'], 1024);
  count('nHead', model['nHead'], 4096);
  count('nEmbd', model['nEmbd'], 65_536);
  const { nLayer, blockSize, nEmbd, nHead, dropout, bias } = model as Record<string, number>;
  if (broken.length === 0) {
    if (nEmbd! % nHead! !== 0) broken.push('nEmbd % nHead');
    if (nLayer! * blockSize! * nEmbd! > 268_435_456) broken.push('cache size');
  }
  if (dropout !== undefined && !(typeof dropout === 'number' && dropout >= 0 && dropout < 1))
    broken.push('dropout');
  if (bias !== undefined && typeof bias !== 'boolean') broken.push('bias');
  const name = (where: string, value: unknown, layers: boolean, optional = false) => {
    if (optional && value === undefined) return;
    const ok =
      typeof value === 'string' &&
      value.length >= 1 &&
      value.length <= 256 &&
      ![...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f) &&
      value.split('{i}').length === (layers ? 2 : 1);
    if (!ok) broken.push(where);
  };
  for (const key of ['inputIds', 'attentionMask', 'positionIds']) name(key, inputs[key], false);
  name('numLogitsToKeep', inputs['numLogitsToKeep'], false, true);
  name('logits', outputs['logits'], false);
  for (const [where, value] of [
    ['pastKey', inputs['pastKey']],
    ['pastValue', inputs['pastValue']],
    ['presentKey', outputs['presentKey']],
    ['presentValue', outputs['presentValue']],
  ] as const)
    name(where, value, true);
  name('newKey', outputs['newKey'], true, true);
  name('newValue', outputs['newValue'], true, true);
  if ((outputs['newKey'] === undefined) !== (outputs['newValue'] === undefined))
    broken.push('newKey/newValue together');
  if (dtypes['inputIds'] !== 'int64') broken.push('dtypes.inputIds');
  if (dtypes['cache'] !== 'float32') broken.push('dtypes.cache');
  if (dtypes['logits'] !== 'float32') broken.push('dtypes.logits');
  // A relative '/'-separated path of at most 4 parts, each a plain name.
  const plainPart = (part: string) =>
    /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(part) &&
    !part.includes('..') &&
    !part.endsWith('.') &&
    !/^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\.|$)/i.test(part);
  for (const key of ['model', 'modelQuantized', 'vocab']) {
    const file = files[key];
    if (key === 'modelQuantized' && file === undefined) continue;
    const ok =
      typeof file === 'string' &&
      file.length <= 128 &&
      file.split('/').length <= 4 &&
      file.split('/').every(plainPart);
    if (!ok) broken.push(`files.${key}`);
  }
  const kind = json['tokenizer'];
  if (typeof kind !== 'string' || kind.length < 1 || kind.length > 64) broken.push('tokenizer');
  if (broken.length === 0) {
    // Every tensor name, for every layer, distinct.
    const all = [
      inputs['inputIds'],
      inputs['attentionMask'],
      inputs['positionIds'],
      inputs['numLogitsToKeep'],
      outputs['logits'],
    ].filter((tensorName) => tensorName !== undefined) as string[];
    const patterns = [
      inputs['pastKey'],
      inputs['pastValue'],
      outputs['presentKey'],
      outputs['presentValue'],
      outputs['newKey'],
      outputs['newValue'],
    ].filter((p): p is string => p !== undefined);
    for (let layer = 0; layer < nLayer!; layer++)
      for (const pattern of patterns) all.push(pattern.replace('{i}', String(layer)));
    if (new Set(all).size !== all.length) broken.push('names collide');
  }
  return broken;
}

const paths: string[][] = [
  ...Object.entries(valid).flatMap(([key, value]) => [
    [key],
    ...(isObject(value) ? Object.keys(value).map((inner) => [key, inner]) : []),
  ]),
  ['extra'],
  ['model', 'extra'],
  ['files', 'extra'],
];

const hostileValue = fc.oneof(
  fc.constant(undefined), // remove the key
  fc.jsonValue({ maxDepth: 2 }),
  fc.integer({ min: -3, max: 70_000 }),
  fc.constantFrom(0, 1, 3, 7, 1000, 1001, 1024, 1025, 4096, 65_536, 65_537, 1_048_577, 2 ** 53),
  fc.constantFrom(4_194_304, 4_194_305, 1.5, -0, Number.NaN, Number.POSITIVE_INFINITY),
  fc.string({ maxLength: 12 }),
  fc.string({ maxLength: 6 }).map((text) => `${text}{i}${text}`),
  fc.constantFrom('{i}', 'a{i}', 'a1{i}', '{i}{i}', 'present.{i}.key', 'input_ids', 'logits'),
  fc.constantFrom('model.onnx', 'vocab.json', '../model.onnx', '/abs', 'C:x', '%2e%2e', 'CON'),
  fc.constantFrom('.', '..', 'a..b', 'x.', 'é.onnx', 'http://h/x', 'float32', 'int64', ''),
  fc.constantFrom(
    'onnx/model.onnx',
    'a/b/c/d',
    'a/b/c/d/e',
    'onnx/../x',
    'onnx//x',
    'onnx/',
    'x\\y',
  ),
  fc.constantFrom('attention_mask', 'position_ids', 'num_logits_to_keep', 2, '2', 3),
  // Paths of 1 to 6 parts, mostly plain ones: the level cap and each part's rules.
  fc
    .array(
      fc.oneof(
        { arbitrary: fc.constantFrom('onnx', 'm.onnx', 'a', 'b_c-1'), weight: 6 },
        { arbitrary: fc.constantFrom('..', '.', '', 'CON', 'a b', 'x.', 'c:'), weight: 1 },
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((parts) => parts.join('/')),
  fc.string({ unit: 'grapheme-ascii', maxLength: 8 }).map((text) => `m${text}`),
);

const mutation = fc.tuple(fc.constantFrom(...paths), hostileValue);

function mutate(changes: ReadonlyArray<readonly [string[], unknown]>): Json {
  const json = structuredClone(valid) as Json;
  for (const [path, value] of changes) {
    let parent: Json = json;
    for (const key of path.slice(0, -1)) {
      const next = parent[key];
      if (!isObject(next)) break;
      parent = next;
    }
    const key = path.at(-1)!;
    if (path.length > 1 && parent === json) continue; // its section was replaced
    if (value === undefined) delete parent[key];
    else parent[key] = value;
  }
  return json;
}

describe('parseManifest on mutated manifests', () => {
  it('accepts exactly what the rules allow; refuses with a ManifestError and nothing else', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (changes) => {
        const json = mutate(changes);
        const broken = brokenRules(json);
        let parsed: ReturnType<typeof parseManifest>;
        try {
          parsed = parseManifest(json, 'x/minigpt.json');
        } catch (error) {
          expect(error).toBeInstanceOf(ManifestError);
          const message = (error as Error).message;
          expect(message.startsWith('x/minigpt.json: ')).toBe(true);
          expect(message).not.toMatch(/[\n\r]/);
          expect(message.length).toBeLessThan(500);
          expect(broken).not.toEqual([]);
          return;
        }
        expect(broken).toEqual([]);
        // The result keeps the rules, and holds no field the parser did not check.
        expect(brokenRules(parsed)).toEqual([]);
        expect(parsed).not.toHaveProperty('extra');
        expect(parsed.model).not.toHaveProperty('extra');
        expect(parsed.files).not.toHaveProperty('extra');
        const { model, modelQuantized, vocab } = parsed.files;
        for (const file of [
          model,
          vocab,
          ...(modelQuantized === undefined ? [] : [modelQuantized]),
        ]) {
          // Joined to a directory or a base URL, an accepted path stays inside it, unchanged
          // by normalization (no '.', '..' or empty part to fold away).
          expect(posix.resolve('/export', file)).toBe(`/export/${file}`);
          expect(win32.resolve('C:\\export', file)).toBe(
            `C:\\export\\${file.replaceAll('/', '\\')}`,
          );
          expect(new URL(file, 'https://example.invalid/export/').pathname).toBe(`/export/${file}`);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
