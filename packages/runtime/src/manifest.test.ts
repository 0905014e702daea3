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
import { manifestJson } from './test-manifest.js';

const valid = manifestJson({
  vocabSize: 65,
  blockSize: 128,
  nLayer: 6,
  nHead: 8,
  nEmbd: 256,
  dropout: 0.1,
  bias: false,
});

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
  it('accepts a manifest the exporter writes, and one without the optional fields', () => {
    const manifest = parseManifest(valid);
    expect(manifest.model.nLayer).toBe(6);
    expect(manifest.inputs).toEqual(valid.inputs);
    expect(manifest.outputs.newKey).toBe('new_key_values.{i}.key');
    expect(manifest.files).toEqual(valid.files);
    expect(layerName(valid.inputs.pastKey, 3)).toBe('past_key_values.3.key');
    // No cache-rows outputs, no int8 graph, no irVersion: all optional.
    const plain = withField('outputs', 'newKey', undefined);
    delete (plain['outputs'] as Json)['newValue'];
    delete (plain['files'] as Json)['modelQuantized'];
    delete plain['irVersion'];
    const parsed = parseManifest(plain);
    expect(parsed.outputs.newKey).toBeUndefined();
    expect(parsed.files).toEqual({ model: 'onnx/model.onnx', vocab: 'tokenizer.minigpt.json' });
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
    expect(MANIFEST_FORMAT_VERSION).toBe(2);
    expect(refusal({ ...valid, formatVersion: 3 }, 'out/minigpt.json').message).toMatch(
      /^out\/minigpt\.json: format version 3, but this runner reads version 2\. Upgrade/,
    );
    expect(refusal({ ...valid, formatVersion: 0 }).message).toMatch(/Re-export the checkpoint/);
    expect(refusal({ ...valid, formatVersion: '2' }).message).toMatch(
      /format version "2", but this runner reads version 2\. Re-export/,
    );
    expect(refusal({ ...valid, format: 'onnx' }).message).toMatch(
      /not a minigpt export manifest \(no "format": "minigpt-onnx", got "onnx"\)/,
    );
    for (const json of [null, [], 'minigpt', 42]) {
      expect(refusal(json).rule).toBe('format');
    }
    expect(refusal({ ...valid, formatVersion: 3 }).rule).toBe('format-version');
  });

  it('refuses a format-1 manifest (graph without mask or positions) with a call to re-export', () => {
    // As the exporter wrote it before format 2: no mask, positions or num_logits_to_keep,
    // files beside minigpt.json.
    const { attentionMask, positionIds, numLogitsToKeep, ...inputs } = valid.inputs;
    void [attentionMask, positionIds, numLogitsToKeep];
    const version1 = {
      ...valid,
      formatVersion: 1,
      inputs,
      files: { model: 'model.onnx', vocab: 'vocab.json' },
    };
    const error = refusal(version1, 'old/minigpt.json');
    expect(error.rule).toBe('format-version');
    expect(error.message).toMatch(/re-export/i);
    expect(error.message).toMatch(
      /^old\/minigpt\.json: format version 1, but this runner reads version 2/,
    );
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
    [
      'no attention mask',
      withField('inputs', 'attentionMask', undefined),
      /"inputs\.attentionMask": .*\(missing\)/,
    ],
    [
      'position ids with {i}',
      withField('inputs', 'positionIds', 'position_ids.{i}'),
      /"inputs\.positionIds": must not contain "\{i\}": this tensor is not per layer/,
    ],
    [
      'num_logits_to_keep as a number',
      withField('inputs', 'numLogitsToKeep', 1),
      /"inputs\.numLogitsToKeep": .*expected string.*got 1/,
    ],
    [
      'num_logits_to_keep named like input ids',
      withField('inputs', 'numLogitsToKeep', 'input_ids'),
      /"inputs\.numLogitsToKeep": names "input_ids", which inputs\.inputIds names too/,
    ],
    [
      'logits named like the attention mask',
      withField('outputs', 'logits', 'attention_mask'),
      /"outputs\.logits": names "attention_mask", which inputs\.attentionMask names too/,
    ],
    [
      'a position ids name shared with a cache input',
      withField('inputs', 'positionIds', 'past_key_values.0.key'),
      /"inputs\.pastKey": names "past_key_values\.0\.key" for layer 0, which inputs\.positionIds names too/,
    ],
    ['a float16 cache', withField('dtypes', 'cache', 'float16'), /"dtypes\.cache": .*"float32"/],
    ['int32 ids', withField('dtypes', 'inputIds', 'int32'), /"dtypes\.inputIds": .*got "int32"/],
    ['no tokenizer kind', withField(null, 'tokenizer', ''), /"tokenizer": Too small/],
    ['no files.vocab', withField('files', 'vocab', undefined), /"files\.vocab": .*\(missing\)/],
    [
      'files.modelQuantized as a number',
      withField('files', 'modelQuantized', 8),
      /"files\.modelQuantized": .*expected string.*got 8/,
    ],
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

  // Each of files.*: a '/'-separated path of plain names inside the directory, or nothing is
  // read. Every part is held to the rules of a file name.
  const badPaths: Array<[string, RegExp]> = [
    ['../../outside/model.onnx', /has a part "\.\." that contains '\.\.'/],
    ['onnx/../../model.onnx', /has a part "\.\." that contains '\.\.'/],
    ['/etc/passwd', /has a part "" that is empty/],
    ['onnx//model.onnx', /has a part "" that is empty/],
    ['onnx/', /has a part "" that is empty/],
    ['./model.onnx', /has a part "\." that starts with '\.'/],
    ['onnx/.hidden', /has a part "\.hidden" that starts with '\.'/],
    ['..\\model.onnx', /contains '\\' \(paths are '\/'-separated\)/],
    ['C:\\models\\model.onnx', /contains '\\'/],
    ['onnx\\model.onnx', /contains '\\'/],
    ['C:model.onnx', /is a URL or drive path/],
    ['C:/models/model.onnx', /has a part "C:" that is a URL or drive path/],
    ['https://example.invalid/model.onnx', /has a part "https:" that is a URL or drive path/],
    ['file:model.onnx', /is a URL or drive path/],
    ['a/b/c/d/model.onnx', /has more than 4 levels/],
    ['..', /contains '\.\.'/],
    ['model..onnx', /contains '\.\.'/],
    ['.', /starts with '\.'/],
    ['.hidden', /starts with '\.'/],
    ['', /is empty/],
    ['model.onnx\0.txt', /contains a NUL character/],
    ['onnx/model\0.onnx', /has a part .* that contains a NUL character/],
    ['%2e%2e', /has characters other than/],
    ['onnx/%2e%2e/model.onnx', /has a part "%2e%2e" that has characters other than/],
    ['model.onnx?download=1', /has characters other than/],
    ['model.onnx#x', /has characters other than/],
    ['mödel.onnx', /has characters other than/],
    ['model onnx', /has characters other than/],
    ['model.onnx.', /ends with '\.'/],
    ['CON', /is a Windows device name/],
    ['nul.json', /is a Windows device name/],
    ['onnx/Lpt1.onnx', /has a part "Lpt1\.onnx" that is a Windows device name/],
    ['m'.repeat(129), /is longer than 128 characters/],
    [`onnx/${'m'.repeat(124)}`, /is longer than 128 characters/],
  ];
  it.each(badPaths)('refuses the file path %j', (path, reason) => {
    for (const key of ['model', 'modelQuantized', 'vocab']) {
      const error = refusal(withField('files', key, path));
      expect(error.rule).toBe('schema');
      expect(error.message).toMatch(
        new RegExp(
          `"files\\.${key}": must be a path of plain names inside the export directory, but it ${reason.source}`,
        ),
      );
    }
  });

  it('accepts paths whose every part is a plain name, up to 4 levels', () => {
    for (const path of [
      'model.onnx',
      'onnx/model.onnx',
      'onnx/model_quantized.onnx',
      'a/b/c/model.onnx',
      'model-v2.onnx',
      'vocab_1.json',
      'M',
      '_x',
      'a.b.c',
      'console.json',
      'con_x/model.onnx',
      `onnx/${'m'.repeat(123)}`,
    ]) {
      for (const key of ['model', 'modelQuantized', 'vocab'] as const) {
        expect(parseManifest(withField('files', key, path)).files[key]).toBe(path);
      }
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
    const withoutRows = withField('outputs', 'newKey', undefined);
    delete (withoutRows['outputs'] as Json)['newValue'];
    const names = cacheNames(parseManifest(withoutRows));
    expect(names).toHaveLength(12);
    expect(names[3]).toEqual({ input: 'past_key_values.1.value', output: 'present.1.value' });
    expect(cacheNames(parseManifest(valid))[2]).toEqual({
      input: 'past_key_values.1.key',
      output: 'present.1.key',
      added: 'new_key_values.1.key',
    });
  });
});
