import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Trainer, TrainingError, loadCheckpoint, type TrainerEvent } from './index.js';
import { prepareData, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

async function collect(trainer: Trainer): Promise<TrainerEvent[]> {
  const events: TrainerEvent[] = [];
  await trainer.train((event) => events.push(event));
  return events;
}

describe('Trainer', () => {
  it('trains nano: loss falls, logs metrics, draws the curve, checkpoints atomically', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    const outDir = join(dir, 'out');
    const trainer = await Trainer.create({
      dataDir,
      outDir,
      backend: 'wasm',
      config: {
        preset: 'nano',
        maxIters: 60,
        learningRate: 3e-3,
        evalInterval: 30,
        checkpointInterval: 20,
        logInterval: 5,
        keepCheckpoints: 2,
      },
    });
    const events = await collect(trainer);
    trainer.dispose();
    const start = events[0]!;
    expect(start).toMatchObject({ type: 'start', backend: 'wasm', startIteration: 0 });
    const evals = events.filter((e) => e.type === 'eval');
    expect(evals.map((e) => e.iter)).toEqual([0, 30, 60]);
    expect(evals[2]!.valLoss).toBeLessThan(evals[0]!.valLoss - 0.5);
    const steps = events.filter((e) => e.type === 'step');
    expect(steps).toHaveLength(60);
    expect(steps[0]!.tokensPerSec).toBeGreaterThan(0);

    const metrics = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(metrics.filter((m) => 'loss' in m).map((m) => m.iter)).toEqual([
      5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60,
    ]);
    expect(Object.keys(metrics.find((m) => 'loss' in m)).sort()).toEqual([
      'iter',
      'loss',
      'lr',
      'msPerIter',
      'tokensPerSec',
    ]);
    expect(Object.keys(metrics.find((m) => 'valLoss' in m)).sort()).toEqual([
      'iter',
      'trainLoss',
      'valLoss',
    ]);
    expect(readFileSync(join(outDir, 'loss.svg'), 'utf8')).toMatch(/^<svg[^]*<polyline[^]*<\/svg>/);

    const checkpoints = join(outDir, 'checkpoints');
    expect(readFileSync(join(checkpoints, 'latest'), 'utf8').trim()).toBe('ckpt-000000060');
    // keepCheckpoints 2 (+ the best one, here also the newest).
    expect(
      readdirSync(checkpoints)
        .filter((n) => n.startsWith('ckpt-'))
        .sort(),
    ).toEqual(['ckpt-000000040', 'ckpt-000000060']);
    expect(readdirSync(join(checkpoints, 'ckpt-000000060')).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'state.json',
      'tokenizer.json',
    ]);
    const loaded = await loadCheckpoint(outDir);
    expect(loaded.state.iteration).toBe(60);
    expect(
      loaded.tokenizer.decode(
        loaded.model.generate(loaded.tokenizer.encode('the '), 20, { seed: 1 }),
      ),
    ).toHaveLength(20);
    loaded.model.dispose();
  });

  // On wasm the native kernels are installed (fused LayerNorm, GELU and AdamW): their
  // outputs must be freed like tfjs's own.
  it.each(['cpu', 'wasm'] as const)(
    'leaks no tensors on %s: the count after iteration 2 equals the count after 50',
    async (backend) => {
      const dir = tempDir();
      const trainer = await Trainer.create({
        dataDir: await prepareData(dir),
        outDir: join(dir, 'out'),
        backend,
        config: {
          preset: 'nano',
          maxIters: 50,
          evalInterval: 1000,
          checkpointInterval: 1000,
          dropout: 0.1,
          gradientAccumulationSteps: 2,
        },
      });
      const counts = new Map<number, number>();
      await trainer.train((event) => {
        if (event.type === 'start' && backend === 'wasm')
          expect(event.nativeKernels?.installed, event.nativeKernels?.reason).toBe(true);
        if (event.type === 'step') counts.set(event.iter, tf.memory().numTensors);
      });
      expect(counts.get(50)).toBe(counts.get(2));
      trainer.dispose();
    },
  );

  it('stops on a NaN loss with a clear message and keeps the newest checkpoint', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    const outDir = join(dir, 'out');
    const first = await Trainer.create({
      dataDir,
      outDir,
      backend: 'cpu',
      config: { preset: 'nano', maxIters: 5, checkpointInterval: 5 },
    });
    await collect(first);
    first.dispose();
    const saved = readFileSync(join(outDir, 'checkpoints', 'ckpt-000000005', 'model.safetensors'));
    const resumed = await Trainer.create({
      dataDir,
      outDir,
      backend: 'cpu',
      resume: true,
      config: { preset: 'nano', maxIters: 10, checkpointInterval: 1 },
    });
    resumed.model.weights.get('h.0.mlp.c_fc.weight')!.assign(tf.fill([32, 128], Number.NaN));
    await expect(collect(resumed)).rejects.toThrow(
      /loss became NaN at iteration 6; stopped without saving\. The newest checkpoint, .*ckpt-000000005, is unchanged \(this run resumed from it\)\./,
    );
    resumed.dispose();
    expect(readFileSync(join(outDir, 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      'ckpt-000000005',
    );
    expect(
      readFileSync(join(outDir, 'checkpoints', 'ckpt-000000005', 'model.safetensors')).equals(
        saved,
      ),
    ).toBe(true);
  });

  it('refuses bad starts: a split shorter than a block, an existing run, a mismatched resume', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir, 40);
    await expect(
      Trainer.create({
        dataDir,
        outDir: join(dir, 'a'),
        backend: 'cpu',
        config: { preset: 'nano', blockSize: 512 },
      }),
    ).rejects.toThrow(/val\.bin: the val split has \d+ tokens, fewer than blockSize \+ 1 = 513/);
    const outDir = join(dir, 'out');
    const trainer = await Trainer.create({
      dataDir,
      outDir,
      backend: 'cpu',
      config: { preset: 'nano', maxIters: 2, checkpointInterval: 2 },
    });
    await collect(trainer);
    trainer.dispose();
    await expect(
      Trainer.create({ dataDir, outDir, backend: 'cpu', config: { preset: 'nano' } }),
    ).rejects.toThrow(/already holds a training run\. Pass --resume/);
    await expect(
      Trainer.create({
        dataDir,
        outDir,
        backend: 'cpu',
        resume: true,
        config: { preset: 'nano', nLayer: 3 },
      }),
    ).rejects.toThrow(
      /cannot resume — the checkpoint's model differs from this run's in nLayer \(checkpoint 2, now 3\)/,
    );
    const otherData = await prepareData(tempDir(), 40, 2);
    await expect(
      Trainer.create({
        dataDir: otherData,
        outDir,
        backend: 'cpu',
        resume: true,
        config: { preset: 'nano' },
      }),
    ).rejects.toThrow(/trained on data with sha256/);
    await expect(
      Trainer.create({ dataDir, outDir: join(dir, 'empty'), backend: 'cpu', resume: true }),
    ).rejects.toThrow(TrainingError);
    expect(existsSync(join(dir, 'empty', 'metrics.jsonl'))).toBe(false);
  });
});
