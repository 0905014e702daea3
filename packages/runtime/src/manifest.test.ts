// parseManifest on hostile input: one broken manifest per rule, each a ManifestError naming
// the file, the field and the value. The random mutations are in manifest.property.test.ts.
import { MinigptError } from '@minigpt/errors';
import { describe, expect, it } from 'vitest';
import {
  MANIFEST_FORMAT_VERSION,
  MANIFEST_LIMITS,
  ManifestError,
  cacheNames,
  layerName,
  parseManifest,
} from './index.js';

const valid = {
  format: 'minigpt-onnx',
  formatVersion: MANIFEST_FORMAT_VERSION,
  opset: 17,
  irVersion: 8,
  model: {
    vocabSize: 65,
    blockSize: 128,
    nLayer: 6,
    nHead: 8,
    nEmbd: 256,
    dropout: 0.1,
    bias: false,
  },
  inputs: {
    inputIds: 'input_ids',
    pastKey: 'past_key_values.{i}.key',
    pastValue: 'past_key_values.{i}.value',
  },
  outputs: {
    logits: 'logits',
    presentKey: 'present.{i}.key',
    presentValue: 'present.{i}.value',
    newKey: 'new_key_values.{i}.key',
    newValue: 'new_key_values.{i}.value',
  },
  dtypes: { inputIds: 'int64', cache: 'float32', logits: 'float32' },
  files: { model: 'model.onnx', vocab: 'vocab.json' },
  tokenizer: 'char',
};

type Json = Record<string, unknown>;

/** `valid` with `section.key` set to `value` (or removed, for undefined). */
function withField(section: keyof typeof valid | null, key: string, value: unknown): Json {
  const copy = structuredClone(valid) as Json;
  const target = section === null ? copy : (copy[section] as Json);
  if (value === undefined) delete target[key];
  else target[key] = value;
  return copy;
}

/** The ManifestError parseManifest throws for `json`. */
function refusal(json: unknown, source = 'exports/minigpt.json'): ManifestError {
  try {
    parseManifest(json, source);
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    expect(error).toBeInstanceOf(MinigptError);
    expect((error as ManifestError).file).toBe(source);
    expect((error as Error).message.startsWith(`${source}: `)).toBe(true);
    return error as ManifestError;
  }
  throw new Error(`parseManifest accepted ${JSON.stringify(json)}`);
}

describe('parseManifest', () => {
  it('accepts a manifest the exporter writes, and one written before newKey/newValue existed', () => {
    const manifest = parseManifest(valid);
    expect(manifest.model.nLayer).toBe(6);
    expect(manifest.outputs.newKey).toBe('new_key_values.{i}.key');
    expect(layerName(valid.inputs.pastKey, 3)).toBe('past_key_values.3.key');
    const older = withField('outputs', 'newKey', undefined);
    delete (older['outputs'] as Json)['newValue'];
    delete older['irVersion'];
    expect(parseManifest(older).outputs.newKey).toBeUndefined();
  });

  it('accepts unknown keys at any level and drops them from the result', () => {
    const json = { ...withField('model', 'activation', 'gelu'), producer: { name: 'x' } };
    const manifest = parseManifest(json);
    expect(manifest).not.toHaveProperty('producer');
    expect(manifest.model).not.toHaveProperty('activation');
    // JSON.parse makes "__proto__" an own key; it must neither survive nor reach a prototype.
    const hostile = JSON.parse(
      JSON.stringify(valid).replace('{', '{"__proto__":{"polluted":1},'),
    ) as Json;
    expect(Object.hasOwn(hostile, '__proto__')).toBe(true);
    const parsed = parseManifest(hostile);
    expect(Object.hasOwn(parsed, '__proto__')).toBe(false);
    expect((parsed as unknown as Json)['polluted']).toBeUndefined();
    expect(({} as Json)['polluted']).toBeUndefined();
  });

  it('names the file and the fix for another format or version', () => {
    expect(refusal({ ...valid, formatVersion: 2 }, 'out/minigpt.json').message).toMatch(
      /^out\/minigpt\.json: format version 2, but this runner reads version 1\. Upgrade/,
    );
    expect(refusal({ ...valid, formatVersion: 0 }).message).toMatch(/Re-export the checkpoint/);
    expect(refusal({ ...valid, formatVersion: '1' }).message).toMatch(
      /format version "1", but this runner reads version 1\. Re-export/,
    );
    expect(refusal({ ...valid, format: 'onnx' }).message).toMatch(
      /not a minigpt export manifest \(no "format": "minigpt-onnx", got "onnx"\)/,
    );
    for (const json of [null, [], 'minigpt', 42]) {
      expect(refusal(json).rule).toBe('format');
    }
    expect(refusal({ ...valid, formatVersion: 2 }).rule).toBe('format-version');
  });

  // One manifest per rule: [what, manifest, the message's field and rule].
  const hostile: Array<[string, Json, RegExp]> = [
    ['a missing model section', withField(null, 'model', undefined), /"model": .*\(missing\)/],
    ['opset as a string', withField(null, 'opset', '17'), /"opset": .*expected number/],
    [
      'opset above the cap',
      withField(null, 'opset', 100_000),
      /"opset": Too big: expected number to be <=1000, got 100000/,
    ],
    ['irVersion 0', withField(null, 'irVersion', 0), /"irVersion": Too small.*got 0/],
    ['vocabSize 0', withField('model', 'vocabSize', 0), /"model\.vocabSize": Too small.*got 0/],
    [
      'vocabSize over 4,194,304',
      withField('model', 'vocabSize', MANIFEST_LIMITS.vocabSize + 1),
      /"model\.vocabSize": Too big: expected number to be <=4194304, got 4194305/,
    ],
    [
      'a fractional vocabSize',
      withField('model', 'vocabSize', 64.5),
      /"model\.vocabSize": .*expected int.*got 64\.5/,
    ],
    [
      'blockSize over 1,048,576',
      withField('model', 'blockSize', 2 ** 21),
      /"model\.blockSize": Too big: expected number to be <=1048576/,
    ],
    ['a negative nLayer', withField('model', 'nLayer', -2), /"model\.nLayer": Too small.*got -2/],
    [
      'nLayer over 1024',
      withField('model', 'nLayer', 1025),
      /"model\.nLayer": Too big: expected number to be <=1024, got 1025/,
    ],
    [
      'nLayer of 2^40 (which must not be counted to)',
      withField('model', 'nLayer', 2 ** 40),
      /"model\.nLayer": Too big: expected number to be <=1024, got 1099511627776/,
    ],
    ['nLayer as a string', withField('model', 'nLayer', '6'), /"model\.nLayer": .*got "6"/],
    ['nHead 0', withField('model', 'nHead', 0), /"model\.nHead": Too small.*got 0/],
    [
      'nEmbd over 65,536',
      withField('model', 'nEmbd', 65_544),
      /"model\.nEmbd": Too big: expected number to be <=65536, got 65544/,
    ],
    [
      'an nEmbd nHead does not divide',
      withField('model', 'nEmbd', 250),
      /"model\.nEmbd": must be divisible by model\.nHead \(8\), got 250/,
    ],
    [
      'nEmbd as Infinity (1e999)',
      JSON.parse(
        JSON.stringify(withField('model', 'nEmbd', 0)).replace('"nEmbd":0', '"nEmbd":1e999'),
      ) as Json,
      /"model\.nEmbd": Invalid input: expected number/,
    ],
    [
      'a KV cache over the cap (each number within its own)',
      {
        ...valid,
        model: { ...valid.model, nLayer: 64, blockSize: 65_536, nEmbd: 1024, nHead: 16 },
      },
      /"model\.blockSize": gives a KV cache of nLayer × blockSize × nEmbd = 4294967296 floats per side, over the cap of 268435456/,
    ],
    ['dropout of 1', withField('model', 'dropout', 1), /"model\.dropout": Too big/],
    ['bias as a string', withField('model', 'bias', 'no'), /"model\.bias": .*expected boolean/],
    ['an empty graph name', withField('inputs', 'inputIds', ''), /"inputs\.inputIds": Too small/],
    [
      'a graph name of 300 characters',
      withField('outputs', 'logits', 'l'.repeat(300)),
      /"outputs\.logits": Too big: expected string to have <=256 characters/,
    ],
    [
      'a graph name with a newline',
      withField('outputs', 'logits', 'logits\nInjected: line'),
      /"outputs\.logits": must not contain control characters/,
    ],
    [
      'a graph name as a number',
      withField('inputs', 'inputIds', 7),
      /"inputs\.inputIds": .*expected string.*got 7/,
    ],
    [
      'input ids with {i}',
      withField('inputs', 'inputIds', 'ids.{i}'),
      /"inputs\.inputIds": must not contain "\{i\}": this tensor is not per layer/,
    ],
    [
      'a cache pattern without {i}',
      withField('inputs', 'pastKey', 'past_key'),
      /"inputs\.pastKey": must contain "\{i\}" \(the layer index\) exactly once, got "past_key"/,
    ],
    [
      'a cache pattern with {i} twice',
      withField('outputs', 'presentValue', 'present.{i}.{i}'),
      /"outputs\.presentValue": must contain "\{i\}" .*exactly once/,
    ],
    [
      'a missing present pattern',
      withField('outputs', 'presentKey', undefined),
      /"outputs\.presentKey": .*\(missing\)/,
    ],
    [
      'newKey without newValue',
      withField('outputs', 'newValue', undefined),
      /"outputs\.newKey": is set but outputs\.newValue is not: the two come together/,
    ],
    [
      'two patterns with one name',
      withField('outputs', 'presentKey', 'past_key_values.{i}.key'),
      /"outputs\.presentKey": names "past_key_values\.0\.key" for layer 0, which inputs\.pastKey \(layer 0\) names too/,
    ],
    [
      'patterns that collide at another layer ("k{i}" at 10 = "k1{i}" at 0)',
      {
        ...valid,
        model: { ...valid.model, nLayer: 11 },
        inputs: { ...valid.inputs, pastKey: 'k{i}', pastValue: 'k1{i}' },
      },
      /"inputs\.pastKey": names "k10" for layer 10, which inputs\.pastValue \(layer 0\) names too/,
    ],
    [
      'logits named like input ids',
      withField('outputs', 'logits', 'input_ids'),
      /"outputs\.logits": names "input_ids", which inputs\.inputIds names too/,
    ],
    ['a float16 cache', withField('dtypes', 'cache', 'float16'), /"dtypes\.cache": .*"float32"/],
    ['int32 ids', withField('dtypes', 'inputIds', 'int32'), /"dtypes\.inputIds": .*got "int32"/],
    ['no tokenizer kind', withField(null, 'tokenizer', ''), /"tokenizer": Too small/],
    [
      'files as an array',
      withField(null, 'files', ['model.onnx']),
      /"files": Invalid input: expected object, received array/,
    ],
  ];
  it.each(hostile)('refuses %s', (_, json, message) => {
    const error = refusal(json);
    expect(error.message).toMatch(message);
    expect(error.rule).toBe('schema');
    expect(error.message).toMatch(/\. Re-export the checkpoint with `minigpt export`/);
    expect(error.message).not.toContain('\n');
  });

  // files.model / files.vocab: a plain name inside the directory, or nothing is read.
  const badNames: Array<[string, RegExp]> = [
    ['../../outside/model.onnx', /is a path/],
    ['sub/model.onnx', /is a path/],
    ['/etc/passwd', /is a path/],
    ['..\\model.onnx', /is a path/],
    ['C:\\models\\model.onnx', /is a path/],
    ['C:model.onnx', /is a URL or drive path/],
    ['https://example.invalid/model.onnx', /is a path/],
    ['file:model.onnx', /is a URL or drive path/],
    ['..', /contains '\.\.'/],
    ['model..onnx', /contains '\.\.'/],
    ['.', /starts with '\.'/],
    ['.hidden', /starts with '\.'/],
    ['', /is empty/],
    ['model.onnx\0.txt', /contains a NUL character/],
    ['%2e%2e', /has characters other than/],
    ['model.onnx?download=1', /has characters other than/],
    ['model.onnx#x', /has characters other than/],
    ['mödel.onnx', /has characters other than/],
    ['model onnx', /has characters other than/],
    ['model.onnx.', /ends with '\.'/],
    ['CON', /is a Windows device name/],
    ['nul.json', /is a Windows device name/],
    ['Lpt1.onnx', /is a Windows device name/],
    ['m'.repeat(129), /is longer than 128 characters/],
  ];
  it.each(badNames)('refuses the file name %j', (name, reason) => {
    for (const key of ['model', 'vocab']) {
      const error = refusal(withField('files', key, name));
      expect(error.message).toMatch(
        new RegExp(
          `"files\\.${key}": must be a plain file name inside the export directory, but it ${reason.source}`,
        ),
      );
    }
  });

  it('accepts plain file names', () => {
    for (const name of [
      'model.onnx',
      'model-v2.onnx',
      'vocab_1.json',
      'M',
      '_x',
      'a.b.c',
      'console.json',
    ]) {
      expect(parseManifest(withField('files', 'model', name)).files.model).toBe(name);
    }
  });

  it('accepts every number at its cap, and a KV cache exactly at its cap', () => {
    const atCaps = (model: Json) =>
      parseManifest({
        ...valid,
        opset: 1000,
        irVersion: 1000,
        model: { ...valid.model, ...model },
      });
    const cap = MANIFEST_LIMITS.cacheUnits;
    for (const model of [
      { vocabSize: MANIFEST_LIMITS.vocabSize, nLayer: 1024, blockSize: 256, nEmbd: 1024 },
      { nLayer: 1, blockSize: 4096, nEmbd: MANIFEST_LIMITS.nEmbd, nHead: MANIFEST_LIMITS.nHead },
      { nLayer: 1, blockSize: MANIFEST_LIMITS.blockSize, nEmbd: 256 },
    ]) {
      const { nLayer, blockSize, nEmbd } = atCaps(model).model;
      expect(nLayer * blockSize * nEmbd).toBe(cap);
    }
    expect(refusal(withField('model', 'nHead', MANIFEST_LIMITS.nHead + 1)).message).toMatch(
      /"model\.nHead": Too big: expected number to be <=4096/,
    );
  });

  it("pairs each past input with its present output, and this step's rows when exported", () => {
    const older = withField('outputs', 'newKey', undefined);
    delete (older['outputs'] as Json)['newValue'];
    const names = cacheNames(parseManifest(older));
    expect(names).toHaveLength(12);
    expect(names[3]).toEqual({ input: 'past_key_values.1.value', output: 'present.1.value' });
    expect(cacheNames(parseManifest(valid))[2]).toEqual({
      input: 'past_key_values.1.key',
      output: 'present.1.key',
      added: 'new_key_values.1.key',
    });
  });
});
