// The export directory (format 2): exactly the Hugging Face layout transformers.js loads
// (onnx/model.onnx, onnx/model_quantized.onnx, config.json, generation_config.json,
// tokenizer.json, tokenizer_config.json) plus minigpt.json and tokenizer.minigpt.json; the
// Hugging Face tokenizer gives minigpt's ids and never an id past the vocabulary; a replaced
// export leaves no stale file behind, and an existing one is never replaced without force.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { GPTConfig } from '@minigpt/model';
import { parseManifest } from '@minigpt/runtime';
import { BpeTokenizer, CharTokenizer } from '@minigpt/tokenizer';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EXPORT_FILES,
  exportFiles,
  exportModel,
  huggingFaceTokenizer,
  type ExportSource,
  type Weight,
} from './index.js';
import { exportCheckpoint, writeExport } from './node/index.js';
import { tinyModel } from './test-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-export-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every file under `dir`, as paths relative to it, sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

const readJson = (dir: string, file: string) =>
  JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;

const hfTokenizer = (json: unknown) => new HfTokenizer(json as never, {} as never);

const FORMAT_2_FILES = [
  'config.json',
  'generation_config.json',
  'minigpt.json',
  'onnx/model.onnx',
  'tokenizer.json',
  'tokenizer.minigpt.json',
  'tokenizer_config.json',
];
const FORMAT_2_QUANTIZED_FILES = [...FORMAT_2_FILES, 'onnx/model_quantized.onnx'].sort();

describe('Hugging Face tokenizer.json', () => {
  const text =
    'To be, or not to be: that is the question.\nWhether 🌍 tis nobler in the mind to suffer';

  // Unseen characters map to a character of the vocabulary, first present of U+FFFD, '?',
  // ' ', else the vocabulary's first: an id past it would crash the graph's Gather.
  const fallbackCases: Array<[string, string, string]> = [
    ['a vocabulary with a space', text, ' '],
    ['a vocabulary with ? and a space', `${text}?`, '?'],
    ['a vocabulary with U+FFFD', `${text}?\uFFFD`, '\uFFFD'],
    ['a vocabulary with none of them', 'zebra', 'a'],
  ];
  for (const [what, vocabularyText, fallback] of fallbackCases) {
    it(`maps every character of a char vocabulary to minigpt's id, unseen ones to "${fallback}" (${what})`, () => {
      const tokenizer = CharTokenizer.fromText(vocabularyText);
      const hf = hfTokenizer(huggingFaceTokenizer(tokenizer.toJSON()));
      expect(hf.encode(vocabularyText).ids).toEqual(tokenizer.encode(vocabularyText));
      const fallbackId = tokenizer.encode(fallback)[0]!;
      const sample = `${vocabularyText} Zürich 日本語 🚀?!\t~ ${vocabularyText.slice(0, 5)}`;
      const ids = hf.encode(sample).ids;
      const seen = new Set(vocabularyText);
      expect(ids).toEqual(
        [...sample].map((char) => (seen.has(char) ? tokenizer.encode(char)[0]! : fallbackId)),
      );
      expect(ids.every((id: number) => id >= 0 && id < tokenizer.vocabSize)).toBe(true);
    });
  }

  it('a byte-level BPE loads with the same ids, special tokens included', () => {
    const tokenizer = BpeTokenizer.train(`${text} `.repeat(30), 320, {
      specialTokens: ['<|endoftext|>'],
    });
    const hf = hfTokenizer(huggingFaceTokenizer(tokenizer.toJSON()));
    for (const sample of [text, "it's 2024 — naïve café, 日本語!", '  spaces\n\nand lines ']) {
      expect(hf.encode(sample).ids).toEqual(tokenizer.encode(sample));
    }
    expect(hf.encode('hi<|endoftext|>').ids.at(-1)).toBe(
      tokenizer.specialTokens.get('<|endoftext|>'),
    );
  });
});

describe('writeExport', () => {
  // A nano GPT over a char vocabulary with no '?' or U+FFFD: unseen characters become ' '.
  const vocabularyText = 'all the world is a stage,\nand all the men and women merely players.';
  const tokenizer = CharTokenizer.fromText(vocabularyText);
  let config: GPTConfig;
  let weights: Map<string, Weight>;
  let source: ExportSource;
  beforeAll(async () => {
    const made = await tinyModel({ vocabSize: tokenizer.vocabSize, blockSize: 24 }, 'nano', 8);
    config = made.config;
    weights = await made.model.weightData();
    made.model.dispose();
    source = { config, weights, tokenizer: tokenizer.toJSON(), source: 'test model' };
  });

  it('exportFiles gives in memory exactly the files writeExport writes, manifest last', async () => {
    const out = join(work, 'in-memory');
    await writeExport(source, { outDir: out, quantize: 'int8' });
    const { files, modelBytes } = exportFiles(source, { quantize: 'int8' });
    expect([...files.keys()].sort()).toEqual(filesUnder(out));
    for (const [file, bytes] of files)
      expect(Buffer.from(bytes).equals(readFileSync(join(out, file)))).toBe(true);
    expect([...files.keys()].at(-1)).toBe(EXPORT_FILES.manifest);
    expect(modelBytes).toBe(files.get(EXPORT_FILES.model)!.length);
  });

  it('writes exactly the Hugging Face layout plus minigpt.json and tokenizer.minigpt.json', async () => {
    const out = join(work, 'layout');
    const result = await writeExport(source, { outDir: out, quantize: 'int8' });
    expect(filesUnder(out)).toEqual(FORMAT_2_QUANTIZED_FILES);
    expect(result.modelBytes).toBe(readFileSync(join(out, 'onnx/model.onnx')).length);
    expect(result.quantizedBytes).toBe(readFileSync(join(out, 'onnx/model_quantized.onnx')).length);
    // The files are exportModel's bytes, and both graphs load in onnxruntime.
    const expected = exportModel(config, weights, 'char', { quantize: 'int8' });
    expect(new Uint8Array(readFileSync(join(out, 'onnx/model.onnx')))).toEqual(expected.onnx);
    expect(new Uint8Array(readFileSync(join(out, 'onnx/model_quantized.onnx')))).toEqual(
      expected.onnxQuantized,
    );
    for (const file of ['onnx/model.onnx', 'onnx/model_quantized.onnx']) {
      const session = await ort.InferenceSession.create(join(out, file));
      // Hugging Face's GPT-2 inputs; no num_logits_to_keep, which transformers.js v3 lacks.
      expect(session.inputNames.slice(0, 4)).toEqual([
        'input_ids',
        'attention_mask',
        'position_ids',
        'past_key_values.0.key',
      ]);
    }

    const manifest = parseManifest(readJson(out, EXPORT_FILES.manifest));
    expect(manifest).toMatchObject({
      format: 'minigpt-onnx',
      formatVersion: 2,
      files: {
        model: 'onnx/model.onnx',
        modelQuantized: 'onnx/model_quantized.onnx',
        vocab: 'tokenizer.minigpt.json',
      },
      tokenizer: 'char',
    });
    expect(readJson(out, 'tokenizer.minigpt.json')).toEqual(tokenizer.toJSON());

    const hfConfig = readJson(out, 'config.json');
    expect(hfConfig).toMatchObject({
      model_type: 'gpt2',
      vocab_size: tokenizer.vocabSize,
      n_positions: 24,
      n_layer: 2,
      n_head: 2,
      n_embd: 32,
      activation_function: 'gelu', // the exact GELU
      'transformers.js_config': { dtype: 'fp32', minigpt_dtypes: ['fp32', 'q8'] },
    });
    const padId = hfConfig['pad_token_id'] as number;
    expect(padId).toBe(tokenizer.encode(' ')[0]);
    expect(readJson(out, 'generation_config.json')).toMatchObject({
      max_length: 24,
      pad_token_id: padId,
    });
    expect(readJson(out, 'tokenizer_config.json')).toMatchObject({
      tokenizer_class: 'GPT2Tokenizer',
      padding_side: 'left',
      model_max_length: 24,
      pad_token: ' ',
      unk_token: ' ',
    });

    // The tokenizer.json written never gives an id past the embedding.
    const hf = hfTokenizer(readJson(out, 'tokenizer.json'));
    const ids = hf.encode('All the World? 🎭 Ünïcödé, 42!').ids;
    expect(ids.length).toBe([...'All the World? 🎭 Ünïcödé, 42!'].length);
    expect(ids.every((id: number) => id >= 0 && id < config.vocabSize)).toBe(true);
    expect(ids[0]).toBe(tokenizer.encode(' ')[0]); // 'A' is unseen
    expect(hf.encode(vocabularyText).ids).toEqual(tokenizer.encode(vocabularyText));
  });

  it('names the tanh GELU "gelu_new" in config.json and keeps it in minigpt.json', async () => {
    const out = join(work, 'gelu-tanh');
    const tanhConfig = { ...config, activation: 'gelu_tanh' as const };
    await writeExport({ ...source, config: tanhConfig }, { outDir: out });
    expect(readJson(out, 'config.json')['activation_function']).toBe('gelu_new');
    expect(readJson(out, EXPORT_FILES.manifest)['model']).toMatchObject({
      activation: 'gelu_tanh',
    });
    // The graph is the tanh GELU's: the same bytes as exportModel builds for that config.
    expect(new Uint8Array(readFileSync(join(out, 'onnx/model.onnx')))).toEqual(
      exportModel(tanhConfig, weights, 'char').onnx,
    );
    expect(exportModel(tanhConfig, weights, 'char').opTypes.has('Tanh')).toBe(true);
    // Without the key, nothing in minigpt.json names a GELU (exports stay as they were).
    const exact = join(work, 'gelu-exact');
    await writeExport(source, { outDir: exact });
    expect(readJson(exact, EXPORT_FILES.manifest)['model']).not.toHaveProperty('activation');
    expect(readJson(exact, 'config.json')['activation_function']).toBe('gelu');
  });

  it('without quantize writes no int8 graph, and config.json lists fp32 only', async () => {
    const out = join(work, 'float-only');
    const result = await writeExport(source, { outDir: out });
    expect(filesUnder(out)).toEqual(FORMAT_2_FILES);
    expect(result.quantizedBytes).toBeUndefined();
    expect(readJson(out, 'config.json')['transformers.js_config']).toEqual({
      dtype: 'fp32',
      minigpt_dtypes: ['fp32'],
    });
    expect(readJson(out, EXPORT_FILES.manifest)['files']).toEqual({
      model: 'onnx/model.onnx',
      vocab: 'tokenizer.minigpt.json',
    });
  });

  it('refuses an existing export (format 2) without force; with force, drops a stale int8 graph', async () => {
    const out = join(work, 'replace');
    await writeExport(source, { outDir: out, quantize: 'int8' });
    await expect(writeExport(source, { outDir: out })).rejects.toThrow(
      /already holds an export .* Pass force: true to replace it, or choose another outDir$/,
    );
    // The rule a tool maps to its own flag (the CLI says --force).
    await expect(writeExport(source, { outDir: out })).rejects.toMatchObject({
      rule: 'output-exists',
      file: out,
    });
    expect(filesUnder(out)).toEqual(FORMAT_2_QUANTIZED_FILES); // untouched

    await writeExport(source, { outDir: out, force: true });
    // A float-only export must not leave the previous model's int8 graph beside it.
    expect(filesUnder(out)).toEqual(FORMAT_2_FILES);
    expect(readJson(out, EXPORT_FILES.manifest)['files']).toEqual({
      model: 'onnx/model.onnx',
      vocab: 'tokenizer.minigpt.json',
    });
  });

  it('refuses a format-1 export without force; with force, removes its model.onnx and vocab.json', async () => {
    const out = join(work, 'format-1');
    mkdirSync(out);
    // The layout of format 1: graph and vocabulary at the top level.
    const format1: Record<string, string> = {
      'minigpt.json': JSON.stringify({ format: 'minigpt-onnx', formatVersion: 1 }),
      'model.onnx': 'old graph',
      'vocab.json': JSON.stringify(tokenizer.toJSON()),
      'config.json': '{}',
      'tokenizer.json': '{}',
    };
    for (const [file, content] of Object.entries(format1)) writeFileSync(join(out, file), content);
    await expect(writeExport(source, { outDir: out })).rejects.toThrow(
      /already holds an export \(minigpt\.json, config\.json, model\.onnx, vocab\.json\)\. Pass force: true/,
    );
    expect(filesUnder(out)).toEqual(Object.keys(format1).sort());
    // Only the graph file of format 1, without its manifest: still an export.
    rmSync(join(out, 'minigpt.json'));
    rmSync(join(out, 'config.json'));
    await expect(writeExport(source, { outDir: out })).rejects.toThrow(/already holds an export/);

    await writeExport(source, { outDir: out, force: true, quantize: 'int8' });
    expect(filesUnder(out)).toEqual(FORMAT_2_QUANTIZED_FILES);
    expect(readJson(out, 'tokenizer.json')['model']).toMatchObject({ type: 'BPE' });
  });
});

describe('exportCheckpoint', () => {
  async function checkpoint(): Promise<string> {
    const dir = join(work, `ckpt-${Math.random().toString(36).slice(2)}`);
    const { binarize } = await import('@minigpt/data/node');
    const { startTraining } = await import('@minigpt/trainer/node');
    writeFileSync(join(work, 'input.txt'), 'all the world is a stage.\n'.repeat(100));
    await binarize({ input: join(work, 'input.txt'), outDir: join(dir, 'data') });
    const trainer = await startTraining({
      dataDir: join(dir, 'data'),
      outDir: join(dir, 'run'),
      backend: 'cpu',
      config: { preset: 'nano', maxIters: 2, evalIters: 1 },
    });
    await trainer.train();
    trainer.dispose();
    return join(dir, 'run');
  }

  it("exports a training run's latest checkpoint, refusing to overwrite without force", async () => {
    const run = await checkpoint();
    const out = join(work, 'export');
    const result = await exportCheckpoint({ checkpoint: run, outDir: out, quantize: 'int8' });
    expect(filesUnder(out)).toEqual(FORMAT_2_QUANTIZED_FILES);
    expect(result.checkpointDir).toMatch(/ckpt-000000002$/);
    expect(readJson(out, EXPORT_FILES.manifest)).toMatchObject({
      format: 'minigpt-onnx',
      formatVersion: 2,
      opset: 17,
      model: { nLayer: 2, nHead: 2, nEmbd: 32, blockSize: 16 },
      tokenizer: 'char',
    });
    expect(readJson(out, 'config.json')).toMatchObject({
      model_type: 'gpt2',
      n_layer: 2,
      n_head: 2,
      n_embd: 32,
      n_positions: 16,
      'transformers.js_config': { dtype: 'fp32' },
    });
    expect(readJson(out, 'generation_config.json')).toMatchObject({ max_length: 16 });
    expect(readJson(out, 'tokenizer_config.json')).toMatchObject({
      padding_side: 'left',
      model_max_length: 16,
    });
    await expect(exportCheckpoint({ checkpoint: run, outDir: out })).rejects.toThrow(
      /already holds an export .* Pass force: true to replace it, or choose another outDir$/,
    );
    await exportCheckpoint({ checkpoint: run, outDir: out, force: true });
    expect(filesUnder(out)).toEqual(FORMAT_2_FILES);
    // No lock or temporary directory is left behind.
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  }, 60_000);

  it('names a missing or damaged checkpoint', async () => {
    await expect(
      exportCheckpoint({ checkpoint: join(work, 'nope'), outDir: join(work, 'x') }),
    ).rejects.toThrow(/nope: no such checkpoint directory/);
    const run = await checkpoint();
    const ckpt = join(
      run,
      'checkpoints',
      readFileSync(join(run, 'checkpoints', 'latest'), 'utf8').trim(),
    );
    writeFileSync(join(ckpt, 'model.safetensors'), Buffer.alloc(20));
    await expect(exportCheckpoint({ checkpoint: ckpt, outDir: join(work, 'y') })).rejects.toThrow(
      /model\.safetensors: header does not start with "\{"/,
    );
    expect(existsSync(join(work, 'y'))).toBe(false);
  }, 60_000);
});
