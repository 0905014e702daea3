// The readers under fuzz, each with its seed inputs (valid files made here with the
// project's own writers) and how one mutated case is made and fed to the reader. A reader
// passes a case by returning or by throwing a MinigptError; anything else is a finding.
import { encodeCheckpoint, memorySource, readCheckpoint } from '@minigpt/checkpoint';
import { decodeSafetensors } from '@minigpt/model/safetensors';
import { weightShapes } from '@minigpt/model/weights';
import { Random } from '@minigpt/random';
import {
  MANIFEST_FORMAT_VERSION,
  checkGraphAgainstManifest,
  parseManifest,
} from '@minigpt/runtime';
import { BpeTokenizer, CharTokenizer, tokenizerFromJSON } from '@minigpt/tokenizer';
import { mutateJsonFile, mutateJsonText, mutateSafetensors } from './mutate.mjs';

const MODEL = { vocabSize: 6, blockSize: 4, nLayer: 1, nHead: 2, nEmbd: 4, dropout: 0, bias: true };

/** The five files of a small valid checkpoint, written by the project's own encoder. */
function seedCheckpoint() {
  const random = new Random(7);
  const weights = new Map(
    [...weightShapes(MODEL)].map(([name, shape]) => [
      name,
      {
        shape,
        data: Float32Array.from(
          { length: shape.reduce((a, b) => a * b, 1) },
          () => random.nextNormal() * 0.02,
        ),
      },
    ]),
  );
  const moments = new Map(
    [...weights].map(([name, { data }]) => [
      name,
      { m: data.map((x) => x / 10), v: data.map((x) => x * x) },
    ]),
  );
  return encodeCheckpoint({
    config: { model: MODEL, train: { preset: 'nano', batchSize: 2 } },
    state: {
      iteration: 5,
      bestValLoss: 1.5,
      random: new Random(1).getState(),
      backend: 'wasm',
      savedAt: '2026-11-29T12:00:00.000Z',
      dataSha256: '0f'.repeat(32),
    },
    tokenizer: CharTokenizer.fromText('\n abcd').toJSON(),
    weights,
    optimizer: { step: 5, moments },
  });
}

const decoder = new TextDecoder();

export const TARGETS = {
  safetensors: {
    what: 'decodeSafetensors (model and optimizer files)',
    prepare() {
      const files = seedCheckpoint();
      return [files.get('model.safetensors'), files.get('optimizer.safetensors')];
    },
    make: (seeds, random) => mutateSafetensors(seeds[random.nextInt(seeds.length)], random),
    run: (_, bytes) => void decodeSafetensors(bytes, 'fuzz/model.safetensors'),
  },
  checkpoint: {
    what: 'readCheckpoint (all five files, with the optimizer)',
    prepare: () => seedCheckpoint(),
    make(seeds, random) {
      const files = new Map(seeds);
      const names = [...seeds.keys()];
      for (let n = 1 + random.nextInt(2); n > 0; n--) {
        const name = names[random.nextInt(names.length)];
        const bytes = seeds.get(name);
        files.set(
          name,
          name.endsWith('.json')
            ? mutateJsonFile(JSON.parse(decoder.decode(bytes)), random)
            : mutateSafetensors(bytes, random),
        );
      }
      return files;
    },
    run: (_, files) => readCheckpoint(memorySource('fuzz', files), { optimizer: true }),
  },
  tokenizer: {
    what: 'tokenizerFromJSON (char and byte-level BPE), then an encode/decode round trip',
    prepare() {
      const text = 'the quick brown fox jumps over the lazy dog; über 🙂 日本語\n'.repeat(20);
      return [
        CharTokenizer.fromText(text).toJSON(),
        { ...CharTokenizer.fromText(text).toJSON(), unknown: { replaceWith: '?' } },
        BpeTokenizer.train(text, 300, { specialTokens: ['<|endoftext|>'] }).toJSON(),
        BpeTokenizer.train(text, 280, { pattern: 'gpt2' }).toJSON(),
      ];
    },
    make(seeds, random) {
      const seed = seeds[random.nextInt(seeds.length)];
      // Mostly structure-aware; a quarter of the cases also break the JSON text itself,
      // which the reader never sees (the caller's JSON.parse fails first): skip those.
      return mutateJsonText(seed, random);
    },
    run(_, text) {
      const tokenizer = tokenizerFromJSON(JSON.parse(text), 'fuzz/tokenizer.json');
      tokenizer.decode(tokenizer.encode('the fox 🙂 über <|endoftext|>\n'));
    },
  },
  manifest: {
    what: 'parseManifest (minigpt.json), then the check against the graph',
    prepare: () => [MANIFEST],
    make: (seeds, random) => mutateJsonText(seeds[0], random),
    run(_, text) {
      const manifest = parseManifest(JSON.parse(text), 'fuzz/minigpt.json');
      checkGraphAgainstManifest(manifest, GRAPH, 'fuzz/onnx/model.onnx');
      checkGraphAgainstManifest(manifest, GRAPH_WITH_ROWS, 'fuzz/onnx/model.onnx');
    },
  },
};

/** minigpt.json of an int8 export of MODEL (format 2), with the optional numLogitsToKeep too (exports
 * leave it out), so mutations reach every field parseManifest reads. */
const MANIFEST = {
  format: 'minigpt-onnx',
  formatVersion: MANIFEST_FORMAT_VERSION,
  opset: 17,
  irVersion: 8,
  model: MODEL,
  inputs: {
    inputIds: 'input_ids',
    attentionMask: 'attention_mask',
    positionIds: 'position_ids',
    numLogitsToKeep: 'num_logits_to_keep',
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
  files: {
    model: 'onnx/model.onnx',
    modelQuantized: 'onnx/model_quantized.onnx',
    vocab: 'tokenizer.minigpt.json',
  },
  tokenizer: 'char',
};

/**
 * What onnxruntime reports of the graph of an export of MODEL (1 layer, 2 heads of 2), dims
 * named as the exporter names them; GRAPH_WITH_ROWS adds the cache-rows outputs, as
 * the runners declare them (cacheRowsModel), present kept.
 */
const TOTAL = 'past_sequence_length + sequence_length';
const cache = (name, length) => ({ name, type: 'float32', shape: ['batch_size', 2, length, 2] });
const GRAPH = {
  inputs: [
    { name: 'input_ids', type: 'int64', shape: ['batch_size', 'sequence_length'] },
    { name: 'attention_mask', type: 'int64', shape: ['batch_size', TOTAL] },
    { name: 'position_ids', type: 'int64', shape: ['batch_size', 'sequence_length'] },
    { name: 'num_logits_to_keep', type: 'int64', shape: [] },
    cache('past_key_values.0.key', 'past_sequence_length'),
    cache('past_key_values.0.value', 'past_sequence_length'),
  ],
  outputs: [
    { name: 'logits', type: 'float32', shape: ['batch_size', 'logits_length', 6] },
    cache('present.0.key', TOTAL),
    cache('present.0.value', TOTAL),
  ],
};
const GRAPH_WITH_ROWS = {
  inputs: GRAPH.inputs,
  outputs: [
    ...GRAPH.outputs,
    cache('new_key_values.0.key', 'sequence_length'),
    cache('new_key_values.0.value', 'sequence_length'),
  ],
};
