// The trainer with files it did not write itself: a second run into the same directory,
// damaged or hostile checkpoints to resume from. Each is refused before anything changes.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '@minigpt/checkpoint';
import { DirectoryLockedError } from '@minigpt/checkpoint/node';
import { ModelError } from '@minigpt/model';
import { describe, expect, it } from 'vitest';
import { TrainingError } from './index.js';
import { startTraining } from './node/index.js';
import { prepareData, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();
const nano = {
  preset: 'nano',
  maxIters: 4,
  checkpointInterval: 2,
  evalInterval: 1000,
  evalIters: 1,
};

async function trainedRun(): Promise<{ dataDir: string; outDir: string }> {
  const dir = tempDir();
  const dataDir = await prepareData(dir, 120);
  const outDir = join(dir, 'out');
  const trainer = await startTraining({ dataDir, outDir, backend: 'cpu', config: nano });
  await trainer.train();
  trainer.dispose();
  return { dataDir, outDir };
}

const resume = (dataDir: string, outDir: string) =>
  startTraining({
    dataDir,
    outDir,
    backend: 'cpu',
    resume: true,
    config: { ...nano, maxIters: 6 },
  });

describe('one run per output directory', () => {
  it('refuses a second trainer while the first holds the directory, naming it', async () => {
    const { dataDir, outDir } = await trainedRun();
    const first = await resume(dataDir, outDir);
    const error = await resume(dataDir, outDir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DirectoryLockedError);
    expect((error as Error).message).toMatch(
      new RegExp(`^${outDir}: in use by minigpt train \\(pid ${process.pid}, started `),
    );
    first.dispose();
    const second = await resume(dataDir, outDir);
    await second.train();
    second.dispose();
    expect(readdirSync(outDir)).not.toContain('minigpt.lock');
  });
});

describe('resuming from a damaged or hostile checkpoint', () => {
  const stateEdits: Array<[string, unknown, RegExp]> = [
    ['iteration "x"', 'x', /state\.json: breaks the checkpoint schema: "iteration": .*got "x"/],
    [
      'iteration -5',
      -5,
      /state\.json: breaks the checkpoint schema: "iteration": Too small.*got -5/,
    ],
  ];
  for (const [what, value, message] of stateEdits) {
    it(`refuses state.json with ${what} and leaves metrics.jsonl as it was`, async () => {
      const { dataDir, outDir } = await trainedRun();
      const state = join(outDir, 'checkpoints', 'ckpt-000000004', 'state.json');
      writeFileSync(
        state,
        JSON.stringify({ ...JSON.parse(readFileSync(state, 'utf8')), iteration: value }),
      );
      const metrics = readFileSync(join(outDir, 'metrics.jsonl'));
      const error = await resume(dataDir, outDir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointError);
      expect((error as Error).message).toMatch(message);
      expect(readFileSync(join(outDir, 'metrics.jsonl')).equals(metrics)).toBe(true);
      expect(readdirSync(outDir).sort()).toEqual(['checkpoints', 'loss.svg', 'metrics.jsonl']);
    });
  }

  it('refuses a model.safetensors whose header length was shortened', async () => {
    const { dataDir, outDir } = await trainedRun();
    const model = join(outDir, 'checkpoints', 'ckpt-000000004', 'model.safetensors');
    const bytes = readFileSync(model);
    bytes.writeUInt32LE(bytes.readUInt32LE(0) - 8, 0);
    writeFileSync(model, bytes);
    const error = await resume(dataDir, outDir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelError);
    expect((error as Error).message).toMatch(/^.*ckpt-000000004\/model\.safetensors: /);
  });

  it('refuses a latest pointer that leads out of the checkpoints folder', async () => {
    const { dataDir, outDir } = await trainedRun();
    writeFileSync(join(outDir, 'checkpoints', 'latest'), '../../somewhere-else\n');
    await expect(resume(dataDir, outDir)).rejects.toThrow(
      /checkpoints\/latest: does not name a checkpoint directory/,
    );
  });
});

describe('models too large for the backend', () => {
  it('refuses, before allocating, a model whose training state cannot fit wasm’s 4 GB', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir, 120);
    const error = await startTraining({
      dataDir,
      outDir: join(dir, 'out'),
      backend: 'wasm',
      config: { preset: 'nano', nLayer: 96, nEmbd: 1024, nHead: 16 },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingError);
    expect((error as Error).message).toMatch(
      /^the model has 1209\.3M parameters: weights, gradients and Adam moments need 18\.\d GiB, more than the wasm backend's 4 GiB heap holds/,
    );
    expect(readdirSync(dir)).not.toContain('out');
  });
});
