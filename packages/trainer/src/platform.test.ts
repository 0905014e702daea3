// The trainer's platform-free path — a text prepared in memory, the run's files in a
// RunStorage — is the same training as Node's directories: same losses, same checkpoint
// bytes. And a run in memory resumes exactly, as one on disk does.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CHECKPOINT_FILES,
  memoryStorage,
  readRunPointer,
  type RunStorage,
} from '@minigpt/checkpoint';
import { prepareText } from '@minigpt/data';
import { binarize } from '@minigpt/data/node';
import { describe, expect, it } from 'vitest';
import { Trainer, type TrainerEvent } from './index.js';
import { startTraining } from './node/index.js';
import { useTempDir } from './test-helpers.js';

const tempDir = useTempDir();
const TEXT = 'the king and queen went to see a play about a ship at sea.\n'.repeat(120);
const CONFIG = {
  preset: 'nano',
  maxIters: 12,
  evalInterval: 6,
  evalIters: 2,
  checkpointInterval: 6,
  dropout: 0.1,
};

async function losses(trainer: Trainer): Promise<{ steps: number[]; evals: number[] }> {
  const steps: number[] = [];
  const evals: number[] = [];
  await trainer.train((event: TrainerEvent) => {
    if (event.type === 'step') steps.push(event.loss);
    if (event.type === 'eval') evals.push(event.trainLoss, event.valLoss);
  });
  trainer.dispose();
  return { steps, evals };
}

async function checkpointFiles(storage: RunStorage): Promise<Map<string, string>> {
  const latest = await readRunPointer(storage, 'latest');
  const files = new Map<string, string>();
  for (const file of Object.values(CHECKPOINT_FILES)) {
    const bytes = (await storage.readFile(`checkpoints/${latest}/${file}`, 1 << 24))!;
    let text = Buffer.from(bytes).toString('base64');
    // state.json says when it was saved: the one field that may differ.
    if (file === CHECKPOINT_FILES.state) {
      const state = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
      delete state['savedAt'];
      text = JSON.stringify(state);
    }
    files.set(file, text);
  }
  return files;
}

describe('one trainer for every platform', () => {
  it('trains a text prepared in memory into memory exactly as a prepared directory into a directory', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'input.txt'), TEXT);
    await binarize({ input: join(dir, 'input.txt'), outDir: join(dir, 'data') });
    const outDir = join(dir, 'out');
    const onDisk = await losses(
      await startTraining({ dataDir: join(dir, 'data'), outDir, backend: 'cpu', config: CONFIG }),
    );

    const storage = memoryStorage('memory:run');
    const inMemory = await losses(
      await Trainer.start({
        data: await prepareText(TEXT),
        storage,
        backend: 'cpu',
        config: CONFIG,
      }),
    );

    expect(inMemory.steps).toHaveLength(12);
    expect(inMemory.steps).toEqual(onDisk.steps);
    expect(inMemory.evals).toEqual(onDisk.evals);
    const fromDisk = await checkpointFiles(
      (await import('@minigpt/checkpoint/node')).directoryStorage(outDir),
    );
    expect(await checkpointFiles(storage)).toEqual(fromDisk);
    // The logs too: metrics.jsonl records the same losses (times differ, so compare those).
    const lossesOf = (text: string) =>
      text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, number>)
        .map(({ iter, loss, trainLoss, valLoss }) => ({ iter, loss, trainLoss, valLoss }));
    const memoryMetrics = Buffer.from(
      (await storage.readFile('metrics.jsonl', 1 << 20))!,
    ).toString();
    expect(lossesOf(memoryMetrics)).toEqual(
      lossesOf(readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')),
    );
    expect(await storage.kind('loss.svg')).toBe('file');
  });

  it('resumes a run kept in memory to the losses of an uninterrupted one', async () => {
    const uninterrupted = await losses(
      await Trainer.start({
        data: await prepareText(TEXT),
        storage: memoryStorage(),
        backend: 'cpu',
        config: CONFIG,
      }),
    );
    const storage = memoryStorage();
    const first = await losses(
      await Trainer.start({
        data: await prepareText(TEXT),
        storage,
        backend: 'cpu',
        config: { ...CONFIG, maxIters: 6 },
      }),
    );
    const resumed = await Trainer.resume({
      data: await prepareText(TEXT),
      storage,
      backend: 'cpu',
      config: { maxIters: 12 },
    });
    const second = await losses(resumed);
    expect([...first.steps, ...second.steps]).toEqual(uninterrupted.steps);
  });

  it('refuses to resume with another text, naming both', async () => {
    const storage = memoryStorage('memory:a');
    await losses(
      await Trainer.start({
        data: await prepareText(TEXT),
        storage,
        backend: 'cpu',
        config: { ...CONFIG, maxIters: 6 },
      }),
    );
    const other = await prepareText(TEXT.toUpperCase(), { source: 'another text' });
    await expect(Trainer.resume({ data: other, storage, backend: 'cpu' })).rejects.toThrow(
      /memory:a.*checkpoints\/ckpt-000000006: cannot resume — it was trained on data with sha256 .*another text holds/,
    );
  });
});
