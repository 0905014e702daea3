// Parity at the tfjs → ONNX boundary: the same weights give the same logits in tfjs and
// onnxruntime, decoding with the KV cache gives the full pass's logits, ONNX's own checker
// accepts the file, and the Hugging Face files load in @huggingface/tokenizers.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { GPT, resolveGPTConfig, type GPTConfig } from '@minigpt/model';
import { Random } from '@minigpt/random';
import { BpeTokenizer, CharTokenizer } from '@minigpt/tokenizer';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPORT_FILES, exportCheckpoint, exportModel, huggingFaceTokenizer } from './index.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-export-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

async function sessionFor(config: GPTConfig, model: GPT) {
  const { onnx } = exportModel(config, await model.weightData(), 'char');
  return ort.InferenceSession.create(onnx);
}

function feeds(config: GPTConfig, ids: number[][], past?: Record<string, ort.Tensor>) {
  const headSize = config.nEmbd / config.nHead;
  const result: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor(
      'int64',
      BigInt64Array.from(ids.flat(), (id) => BigInt(id)),
      [ids.length, ids[0]!.length],
    ),
  };
  for (let layer = 0; layer < config.nLayer; layer++) {
    for (const kind of ['key', 'value']) {
      result[`past_key_values.${layer}.${kind}`] =
        past?.[`present.${layer}.${kind}`] ??
        new ort.Tensor('float32', new Float32Array(0), [ids.length, config.nHead, 0, headSize]);
    }
  }
  return result;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function randomIds(count: number, vocab: number, seed: number): number[] {
  const random = new Random(seed);
  return Array.from({ length: count }, () => random.nextInt(vocab));
}

describe('ONNX export parity', () => {
  for (const bias of [true, false]) {
    it(`tfjs and onnxruntime logits agree (nano, bias ${bias}), batch 2, dynamic lengths`, async () => {
      const config = resolveGPTConfig({ vocabSize: 37, bias }, 'nano');
      const model = GPT.create(config, { log: null, random: new Random(bias ? 1 : 2) });
      const session = await sessionFor(config, model);
      for (const length of [1, 7, config.blockSize]) {
        const ids = [randomIds(length, 37, length), randomIds(length, 37, length + 100)];
        const { logits } = await session.run(feeds(config, ids));
        expect(logits!.dims).toEqual([2, length, 37]);
        expect(
          maxAbsDiff(
            logits!.data as Float32Array,
            model.forward(tf.tensor2d(ids, [2, length], 'int32')).dataSync(),
          ),
        ).toBeLessThanOrEqual(1e-4);
      }
      model.dispose();
    });
  }

  it('decoding token by token with the KV cache gives the full pass logits', async () => {
    const config = resolveGPTConfig({ vocabSize: 37 }, 'nano');
    const model = GPT.create(config, { log: null, random: new Random(3) });
    const session = await sessionFor(config, model);
    const ids = randomIds(config.blockSize, 37, 9);
    const full = (await session.run(feeds(config, [ids])))['logits']!.data as Float32Array; // (1, T, V)
    // Prefill 5 tokens, then one at a time.
    let results = await session.run(feeds(config, [ids.slice(0, 5)]));
    expect(
      maxAbsDiff(results['logits']!.data as Float32Array, full.slice(0, 5 * 37)),
    ).toBeLessThanOrEqual(1e-4);
    for (let t = 5; t < ids.length; t++) {
      results = await session.run(feeds(config, [[ids[t]!]], results));
      expect(results['present.0.key']!.dims).toEqual([
        1,
        config.nHead,
        t + 1,
        config.nEmbd / config.nHead,
      ]);
      // new_key_values holds exactly the step's last row of present (B, nh, P+T, hs).
      const headSize = config.nEmbd / config.nHead;
      const present = results['present.0.value']!.data as Float32Array;
      const added = results['new_key_values.0.value']!.data as Float32Array;
      expect(results['new_key_values.0.value']!.dims).toEqual([1, config.nHead, 1, headSize]);
      for (let head = 0; head < config.nHead; head++) {
        const row = (head * (t + 1) + t) * headSize;
        expect(added.subarray(head * headSize, (head + 1) * headSize)).toEqual(
          present.subarray(row, row + headSize),
        );
      }
      expect(
        maxAbsDiff(results['logits']!.data as Float32Array, full.slice(t * 37, (t + 1) * 37)),
      ).toBeLessThanOrEqual(1e-4);
    }
    model.dispose();
  });

  it('holds for a seed-size model (6 layers, 256 wide, vocab 65)', async () => {
    const config = resolveGPTConfig({ vocabSize: 65 }, 'seed');
    const model = GPT.create(config, { log: null, random: new Random(4) });
    const session = await sessionFor(config, model);
    const ids = [randomIds(64, 65, 5)];
    const { logits } = await session.run(feeds(config, ids));
    expect(
      maxAbsDiff(
        logits!.data as Float32Array,
        model.forward(tf.tensor2d(ids, [1, 64], 'int32')).dataSync(),
      ),
    ).toBeLessThanOrEqual(1e-4);
    model.dispose();
  }, 60_000);

  it("passes ONNX's own checker (onnx.checker.check_model, full_check)", async () => {
    const config = resolveGPTConfig({ vocabSize: 37 }, 'nano');
    const model = GPT.create(config, { log: null });
    const { onnx, opTypes } = exportModel(config, await model.weightData(), 'char');
    model.dispose();
    expect([...opTypes].sort()).toEqual([
      'Add',
      'Concat',
      'Div',
      'Erf',
      'Gather',
      'LayerNormalization',
      'MatMul',
      'Mul',
      'Reshape',
      'Shape',
      'Slice',
      'Softmax',
      'Split',
      'Transpose',
    ]);
    const path = join(work, 'checked.onnx');
    writeFileSync(path, onnx);
    // Debian's python3-onnx (installed by .ci/run): MINIGPT_ONNX_PYTHON overrides the interpreter.
    const python = process.env['MINIGPT_ONNX_PYTHON'] ?? '/usr/bin/python3';
    const script = `import onnx, sys\nm = onnx.load(sys.argv[1])\nonnx.checker.check_model(m, full_check=True)\nprint(m.ir_version, m.opset_import[0].version)`;
    const output = execFileSync(python, ['-c', script, path], { encoding: 'utf8' });
    expect(output.trim()).toBe('8 17');
  });
});

describe('Hugging Face files', () => {
  const text =
    'To be, or not to be: that is the question.\nWhether 🌍 tis nobler in the mind to suffer';
  it('a char vocabulary loads in @huggingface/tokenizers with the same ids, <unk> for the unknown', () => {
    const tokenizer = CharTokenizer.fromText(text);
    const hf = new HfTokenizer(huggingFaceTokenizer(tokenizer.toJSON()) as never, {} as never);
    expect(hf.encode(text).ids).toEqual(tokenizer.encode(text));
    expect(hf.encode('toZ').ids.at(-1)).toBe(tokenizer.vocabSize); // <unk>
  });

  it('a byte-level BPE loads with the same ids, special tokens included', () => {
    const tokenizer = BpeTokenizer.train(`${text} `.repeat(30), 320, {
      specialTokens: ['<|endoftext|>'],
    });
    const hf = new HfTokenizer(huggingFaceTokenizer(tokenizer.toJSON()) as never, {} as never);
    for (const sample of [text, "it's 2024 — naïve café, 日本語!", '  spaces\n\nand lines ']) {
      expect(hf.encode(sample).ids).toEqual(tokenizer.encode(sample));
    }
    expect(hf.encode('hi<|endoftext|>').ids.at(-1)).toBe(
      tokenizer.specialTokens.get('<|endoftext|>'),
    );
  });
});

describe('exportCheckpoint', () => {
  async function checkpoint(): Promise<string> {
    const dir = join(work, `ckpt-${Math.random().toString(36).slice(2)}`);
    const { binarize } = await import('@minigpt/data');
    const { Trainer } = await import('@minigpt/trainer');
    writeFileSync(join(work, 'input.txt'), 'all the world is a stage.\n'.repeat(100));
    await binarize({ input: join(work, 'input.txt'), outDir: join(dir, 'data') });
    const trainer = await Trainer.create({
      dataDir: join(dir, 'data'),
      outDir: join(dir, 'run'),
      backend: 'cpu',
      config: { preset: 'nano', maxIters: 2, evalIters: 1 },
    });
    await trainer.train();
    trainer.dispose();
    return join(dir, 'run');
  }

  it('writes model.onnx, minigpt.json, vocab.json, config.json and tokenizer.json, refusing to overwrite', async () => {
    const run = await checkpoint();
    const out = join(work, 'export');
    const result = await exportCheckpoint({ checkpoint: run, outDir: out });
    expect(readdirSync(out).sort()).toEqual([
      'config.json',
      'minigpt.json',
      'model.onnx',
      'tokenizer.json',
      'vocab.json',
    ]);
    expect(result.checkpointDir).toMatch(/ckpt-000000002$/);
    const manifest = JSON.parse(readFileSync(join(out, EXPORT_FILES.manifest), 'utf8'));
    expect(manifest).toMatchObject({
      format: 'minigpt-onnx',
      formatVersion: 1,
      opset: 17,
      model: { nLayer: 2, nHead: 2, nEmbd: 32 },
      tokenizer: 'char',
    });
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toMatchObject({
      model_type: 'gpt2',
      n_layer: 2,
      n_head: 2,
      n_embd: 32,
      n_positions: 16,
    });
    await expect(exportCheckpoint({ checkpoint: run, outDir: out })).rejects.toThrow(
      /already holds an export .* Pass --force/,
    );
    await exportCheckpoint({ checkpoint: run, outDir: out, force: true });
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
