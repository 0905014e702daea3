// Starting a run from given weights (TrainerOptions.initFrom): the model is those weights,
// bit for bit; the run's config cannot give them another shape; the data's vocabulary must
// be theirs; a resume continues from the checkpoint and never reads them.
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GPT, type WeightData } from '@minigpt/model';
import { gpt2DirectoryFiles } from '@minigpt/model/huggingface';
import { BpeTokenizer } from '@minigpt/tokenizer';
import { TrainingError, type Trainer, type TrainerEvent } from './index.js';
import { loadCheckpoint, readInitialWeights, startTraining } from './node/index.js';
import { prepareData, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

async function collect(trainer: Trainer): Promise<TrainerEvent[]> {
  const events: TrainerEvent[] = [];
  await trainer.train((event) => events.push(event));
  return events;
}

const valLossAtStart = (events: TrainerEvent[]) =>
  events.find(
    (event): event is Extract<TrainerEvent, { type: 'eval' }> =>
      event.type === 'eval' && event.iter === 0,
  )!.valLoss;

describe('Trainer with initFrom', () => {
  it('starts from the given weights: same bits, their loss, a fresh optimizer', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir, 200);
    const base = { preset: 'nano', evalIters: 4 } as const;
    // "Pretraining": 60 steps from a random init.
    const pretrain = await startTraining({
      dataDir,
      outDir: join(dir, 'pretrained'),
      backend: 'cpu',
      estimate: false,
      config: { ...base, maxIters: 60, evalInterval: 60, checkpointInterval: 60 },
    });
    const pretrainEvents = await collect(pretrain);
    pretrain.dispose();
    const pretrained = await loadCheckpoint(join(dir, 'pretrained'));
    const weights: ReadonlyMap<string, WeightData> = await pretrained.model.weightData();
    pretrained.model.dispose();

    const events: TrainerEvent[] = [];
    const fineTune = await startTraining({
      dataDir,
      outDir: join(dir, 'fine-tuned'),
      backend: 'cpu',
      estimate: false,
      initFrom: { config: pretrained.modelConfig, weights, source: 'pretrained/' },
      config: { ...base, maxIters: 2, evalInterval: 2, learningRate: 1e-4, minLr: 1e-5 },
    });
    try {
      const held = await fineTune.model.weightData();
      for (const [name, { data }] of weights) {
        const given = data as Float32Array;
        expect(Buffer.from((held.get(name)!.data as Float32Array).buffer)).toEqual(
          Buffer.from(given.buffer, given.byteOffset, given.byteLength),
        );
      }
      await fineTune.train((event) => events.push(event));
    } finally {
      fineTune.dispose();
    }
    const start = events.find((event) => event.type === 'start')!;
    expect(start).toMatchObject({ initFrom: 'pretrained/', startIteration: 0 });
    // The starting weights are the pretrained ones: their loss, far below a random init's.
    const randomStart = valLossAtStart(pretrainEvents);
    const pretrainedEnd = pretrainEvents.findLast((event) => event.type === 'eval')!;
    const fineTuneStart = valLossAtStart(events);
    expect(randomStart).toBeGreaterThan(3);
    expect(fineTuneStart).toBeLessThan(randomStart - 0.5);
    expect(Math.abs(fineTuneStart - (pretrainedEnd as { valLoss: number }).valLoss)).toBeLessThan(
      0.15,
    );
  });

  it('refuses a config that reshapes the weights and data of another vocabulary', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir, 60);
    const pretrain = await startTraining({
      dataDir,
      outDir: join(dir, 'pretrained'),
      backend: 'cpu',
      estimate: false,
      config: { preset: 'nano', maxIters: 1, evalIters: 1, checkpointInterval: 1 },
    });
    await collect(pretrain);
    pretrain.dispose();
    const pretrained = await loadCheckpoint(join(dir, 'pretrained'));
    const weights = await pretrained.model.weightData();
    pretrained.model.dispose();
    const init = { config: pretrained.modelConfig, weights, source: 'models/nano' };

    const reshaped = startTraining({
      dataDir,
      outDir: join(dir, 'a'),
      backend: 'cpu',
      initFrom: init,
      config: { preset: 'nano', nLayer: 3, nEmbd: 32 },
    });
    await expect(reshaped).rejects.toThrow(TrainingError);
    await expect(reshaped).rejects.toThrow(
      /^models\/nano: the starting weights fix the model's nLayer \(2, not 3\); leave it out/,
    );

    const otherVocabulary = startTraining({
      dataDir,
      outDir: join(dir, 'b'),
      backend: 'cpu',
      initFrom: { ...init, config: { ...init.config, vocabSize: init.config.vocabSize + 1 } },
      config: { preset: 'nano' },
    });
    await expect(otherVocabulary).rejects.toThrow(
      new RegExp(
        `^models/nano: its weights are for a vocabulary of ${init.config.vocabSize + 1} tokens, the data's tokenizer has ${init.config.vocabSize} `,
      ),
    );
  });

  it('reads a GPT-2 directory from disk, refusing an oversized weights file and a damaged tokenizer', async () => {
    const dir = join(tempDir(), 'gpt2');
    mkdirSync(dir);
    const config = {
      vocabSize: 300,
      blockSize: 16,
      nLayer: 1,
      nHead: 2,
      nEmbd: 16,
      dropout: 0,
      bias: true,
      activation: 'gelu_tanh' as const,
    };
    const model = GPT.create(config, { log: null });
    for (const [name, bytes] of gpt2DirectoryFiles(config, await model.weightData()))
      writeFileSync(join(dir, name), bytes);
    model.dispose();
    const read = await readInitialWeights(dir, { blockSize: 8 });
    expect(read.config).toMatchObject({ ...config, blockSize: 8 });
    expect(read.weights.get('wpe.weight')!.shape).toEqual([8, 16]);

    // A damaged tokenizer.json beside the weights is refused, not skipped.
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    const tokenizer = BpeTokenizer.train('a b c '.repeat(20), 260);
    await expect(readInitialWeights(dir, { tokenizer })).rejects.toThrow(
      new RegExp(`^${join(dir, 'tokenizer.json')}: is not valid JSON`),
    );

    // A weights file larger than the config allows is refused from its size (sparse: 300 MB
    // that are never read).
    truncateSync(join(dir, 'model.safetensors'), 300_000_000);
    const oversized = readInitialWeights(dir);
    await expect(oversized).rejects.toThrow(TrainingError);
    await expect(oversized).rejects.toThrow(
      /gpt2\/model\.safetensors: is 300000000 bytes, more than the \d+ the model's config\.json allows/,
    );
  });
});
