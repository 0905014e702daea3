import { describe, expect, it } from 'vitest';
import { MANIFEST_FORMAT_VERSION, cacheNames, layerName, parseManifest } from './index.js';

const valid = {
  format: 'minigpt-onnx',
  formatVersion: MANIFEST_FORMAT_VERSION,
  opset: 17,
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
  outputs: { logits: 'logits', presentKey: 'present.{i}.key', presentValue: 'present.{i}.value' },
  dtypes: { inputIds: 'int64', cache: 'float32', logits: 'float32' },
  files: { model: 'model.onnx', vocab: 'vocab.json' },
  tokenizer: 'char',
};

describe('parseManifest', () => {
  it('accepts a manifest the exporter writes', () => {
    expect(parseManifest(valid).model.nLayer).toBe(6);
    expect(layerName(valid.inputs.pastKey, 3)).toBe('past_key_values.3.key');
  });

  it('names the file and the fix for another format or version', () => {
    expect(() => parseManifest({ ...valid, formatVersion: 2 }, 'out/minigpt.json')).toThrow(
      /^out\/minigpt\.json: format version 2, but this runner reads version 1\. Upgrade/,
    );
    expect(() => parseManifest({ ...valid, formatVersion: 0 }, 'm.json')).toThrow(
      /Re-export the checkpoint/,
    );
    expect(() => parseManifest({ ...valid, format: 'onnx' })).toThrow(
      /not a minigpt export manifest/,
    );
    expect(() => parseManifest({ ...valid, model: { ...valid.model, nHead: 0 } })).toThrow(
      /model\.nHead must be a positive integer/,
    );
    expect(() => parseManifest({ ...valid, files: {} })).toThrow(/files\.model/);
    expect(() =>
      parseManifest({ ...valid, outputs: { ...valid.outputs, newKey: 'new.{i}.key' } }),
    ).toThrow(/newKey and outputs\.newValue come together/);
  });

  it("pairs each past input with its present output, and this step's rows when exported", () => {
    const names = cacheNames(parseManifest(valid));
    expect(names).toHaveLength(12);
    expect(names[3]).toEqual({ input: 'past_key_values.1.value', output: 'present.1.value' });
    const withNew = parseManifest({
      ...valid,
      outputs: { ...valid.outputs, newKey: 'new.{i}.key', newValue: 'new.{i}.value' },
    });
    expect(cacheNames(withNew)[2]).toEqual({
      input: 'past_key_values.1.key',
      output: 'present.1.key',
      added: 'new.1.key',
    });
  });
});
