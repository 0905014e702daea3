// Fine-tuning a pretrained GPT-2 from the command line, the way a user with a Hugging Face
// directory does it: prepare --tokenizer <dir>, train --init-from <dir>, export --hf, and
// the exported directory read back as starting weights, every weight bit-identical. The
// "pretrained" model is a small random one written in the Hugging Face layout here.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { huggingFaceTokenizer } from '@minigpt/export-onnx';
import { GPT, decodeSafetensors, type GPTConfig } from '@minigpt/model';
import { gpt2DirectoryFiles, readGpt2Directory } from '@minigpt/model/huggingface';
import { Random } from '@minigpt/random';
import { BpeTokenizer } from '@minigpt/tokenizer';
import { runCli, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

const WORDS = 'to be or not that is the question whether tis nobler in mind suffer'.split(' ');

function text(lines: number, seed: number): string {
  const random = new Random(seed);
  return Array.from({ length: lines }, () =>
    Array.from({ length: 3 + random.nextInt(6) }, () => WORDS[random.nextInt(WORDS.length)]).join(
      ' ',
    ),
  ).join('\n');
}

/** A small random "GPT-2" in the Hugging Face layout, with a byte-level BPE tokenizer.json. */
async function pretrainedDirectory(dir: string): Promise<{ config: GPTConfig; vocab: number }> {
  const tokenizer = BpeTokenizer.train(text(300, 7), 300, {
    pattern: 'gpt2',
    specialTokens: ['<|endoftext|>'],
  });
  const config: GPTConfig = {
    vocabSize: tokenizer.vocabSize,
    blockSize: 32,
    nLayer: 2,
    nHead: 2,
    nEmbd: 32,
    dropout: 0,
    bias: true,
    activation: 'gelu_tanh',
  };
  const model = GPT.create(config, { log: null });
  const weights = await model.weightData();
  model.dispose();
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of gpt2DirectoryFiles(config, weights))
    writeFileSync(join(dir, name), bytes);
  writeFileSync(
    join(dir, 'tokenizer.json'),
    JSON.stringify(huggingFaceTokenizer(tokenizer.toJSON())),
  );
  return { config, vocab: tokenizer.vocabSize };
}

const quick = [
  '--max-iters=2',
  '--eval-interval=2',
  '--eval-iters=1',
  '--checkpoint-interval=2',
  '--batch-size=2',
  '--block-size=8',
  '--learning-rate=1e-4',
  '--min-lr=1e-5',
  '--no-progress',
  '--backend=cpu',
];

describe('minigpt prepare --tokenizer, train --init-from, export --hf (spawned CLI)', () => {
  it('fine-tunes a Hugging Face GPT-2 directory and exports one that reads back bit-identical', async () => {
    const cwd = tempDir();
    const { config, vocab } = await pretrainedDirectory(join(cwd, 'gpt2'));
    writeFileSync(join(cwd, 'notes.txt'), text(400, 1));

    const prepared = runCli(['prepare', '--input', 'notes.txt', '--tokenizer', 'gpt2'], { cwd });
    expect(prepared.status, prepared.stderr).toBe(0);
    expect(prepared.stderr).toContain(`tokenizer: gpt2/tokenizer.json (bpe, vocab size ${vocab})`);
    expect(prepared.stdout).toMatch(/→ data\/notes-gpt2\//);
    const meta = JSON.parse(readFileSync(join(cwd, 'data', 'notes-gpt2', 'meta.json'), 'utf8'));
    expect(meta.vocabSize).toBe(config.vocabSize);

    const trained = runCli(
      ['train', '--init-from', 'gpt2', '--data', 'data/notes-gpt2', '--out', 'run', ...quick],
      { cwd },
    );
    expect(trained.status, trained.stderr).toBe(0);
    expect(trained.stderr).toMatch(/starting weights: gpt2\n/);
    expect(trained.stderr).toContain(`model: 2 layers, 2 heads, 32 wide, block 8, vocab ${vocab}`);
    // The same command plus --resume continues the run (its tanh GELU and all), from its
    // checkpoint: the starting weights are not read again.
    const resumed = runCli(
      [
        'train',
        '--init-from',
        'gpt2',
        '--data',
        'data/notes-gpt2',
        '--out',
        'run',
        ...quick,
        '--resume',
        '--max-iters=4',
      ],
      { cwd },
    );
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from run\/checkpoints\/ckpt-000000002 at iteration 2/);
    expect(resumed.stderr).toMatch(/--init-from is not read on --resume/);

    const exported = runCli(['export', '--checkpoint', 'run', '--out', 'exported', '--hf'], {
      cwd,
    });
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/model\.safetensors \(GPT-2 layout\)/);
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'onnx/model.onnx'])
      expect(existsSync(join(cwd, 'exported', file)), file).toBe(true);

    // The round trip: the export read as a GPT-2 directory holds the checkpoint's weights.
    const latest = readFileSync(join(cwd, 'run', 'checkpoints', 'latest'), 'utf8').trim();
    const checkpoint = decodeSafetensors(
      readFileSync(join(cwd, 'run', 'checkpoints', latest, 'model.safetensors')),
    ).tensors;
    const back = await readGpt2Directory(async (name) =>
      existsSync(join(cwd, 'exported', name))
        ? new Uint8Array(readFileSync(join(cwd, 'exported', name)))
        : undefined,
    );
    expect(back.config).toMatchObject({ ...config, blockSize: 8 });
    expect([...back.weights.keys()].sort()).toEqual([...checkpoint.keys()].sort());
    for (const [name, tensor] of checkpoint) {
      const read = back.weights.get(name)!.data as Float32Array;
      const saved = tensor.data as Float32Array;
      expect(
        Buffer.from(read.buffer, read.byteOffset, read.byteLength).equals(
          Buffer.from(saved.buffer, saved.byteOffset, saved.byteLength),
        ),
        name,
      ).toBe(true);
    }

    // …and it starts a run again, as any GPT-2 directory does.
    const again = runCli(
      ['train', '--init-from', 'exported', '--data', 'data/notes-gpt2', '--out', 'run2', ...quick],
      { cwd },
    );
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/starting weights: exported\n/);
  }, 120_000);

  it('refuses, in one line with exit 1: a missing file, data of another tokenizer, a reshaping flag', async () => {
    const cwd = tempDir();
    await pretrainedDirectory(join(cwd, 'gpt2'));
    writeFileSync(join(cwd, 'notes.txt'), text(400, 1));
    expect(runCli(['prepare', '--input', 'notes.txt', '--out', 'chars'], { cwd }).status).toBe(0);
    expect(
      runCli(['prepare', '--input', 'notes.txt', '--tokenizer', 'gpt2', '--out', 'bpe'], { cwd })
        .status,
    ).toBe(0);
    const oneLine = (result: { status: number | null; stderr: string }) => {
      expect(result.status, result.stderr).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      return result.stderr;
    };

    expect(
      oneLine(runCli(['prepare', '--input', 'notes.txt', '--tokenizer', 'gtp2'], { cwd })),
    ).toMatch(/--tokenizer gtp2: not char or bpe, and no such file or directory/);

    const otherData = oneLine(
      runCli(['train', '--init-from', 'gpt2', '--data', 'chars', '--out', 'a', ...quick], { cwd }),
    );
    expect(otherData).toMatch(
      /gpt2\/tokenizer\.json: the data was tokenized by another tokenizer than this model's; prepare it with this one \(minigpt prepare --tokenizer gpt2\)/,
    );

    const reshaped = oneLine(
      runCli(
        ['train', '--init-from', 'gpt2', '--data', 'bpe', '--out', 'b', ...quick, '--n-layer=4'],
        { cwd },
      ),
    );
    expect(reshaped).toMatch(/gpt2: the starting weights fix the model's nLayer \(2, not 4\)/);

    rmSync(join(cwd, 'gpt2', 'model.safetensors'));
    expect(
      oneLine(
        runCli(['train', '--init-from', 'gpt2', '--data', 'bpe', '--out', 'c', ...quick], { cwd }),
      ),
    ).toMatch(/gpt2\/model\.safetensors: no such file.*config\.json, model\.safetensors/);

    writeFileSync(join(cwd, 'gpt2', 'config.json'), JSON.stringify({ model_type: 'llama' }));
    expect(
      oneLine(
        runCli(['train', '--init-from', 'gpt2', '--data', 'bpe', '--out', 'c', ...quick], { cwd }),
      ),
    ).toMatch(/gpt2\/config\.json: .*model_type/);
  }, 120_000);
});
