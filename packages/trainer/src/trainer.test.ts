import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  MIN_CAPPED_EVAL_ITERS,
  ResumeConfigError,
  TrainingError,
  type Trainer,
  type TrainerEvent,
} from './index.js';
import { loadCheckpoint, startTraining } from './node/index.js';
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
    const trainer = await startTraining({
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
      const trainer = await startTraining({
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
    const first = await startTraining({
      dataDir,
      outDir,
      backend: 'cpu',
      config: { preset: 'nano', maxIters: 5, checkpointInterval: 5 },
    });
    await collect(first);
    first.dispose();
    const saved = readFileSync(join(outDir, 'checkpoints', 'ckpt-000000005', 'model.safetensors'));
    const resumed = await startTraining({
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
      startTraining({
        dataDir,
        outDir: join(dir, 'a'),
        backend: 'cpu',
        config: { preset: 'nano', blockSize: 512 },
      }),
    ).rejects.toThrow(/val\.bin: the val split has \d+ tokens, fewer than blockSize \+ 1 = 513/);
    const outDir = join(dir, 'out');
    const trainer = await startTraining({
      dataDir,
      outDir,
      backend: 'cpu',
      config: { preset: 'nano', maxIters: 2, checkpointInterval: 2 },
    });
    await collect(trainer);
    trainer.dispose();
    await expect(
      startTraining({ dataDir, outDir, backend: 'cpu', config: { preset: 'nano' } }),
    ).rejects.toThrow(/already holds a training run\. Continue it with Trainer\.resume/);
    await expect(
      startTraining({
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
      startTraining({
        dataDir: otherData,
        outDir,
        backend: 'cpu',
        resume: true,
        config: { preset: 'nano' },
      }),
    ).rejects.toThrow(/trained on data with sha256/);
    await expect(
      startTraining({ dataDir, outDir: join(dir, 'empty'), backend: 'cpu', resume: true }),
    ).rejects.toThrow(TrainingError);
    expect(existsSync(join(dir, 'empty', 'metrics.jsonl'))).toBe(false);
  });

  it('times its first steps before any evaluation, then evaluates the starting weights as if first', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    const config = {
      preset: 'nano',
      maxIters: 8,
      evalInterval: 4,
      evalIters: 3,
      checkpointInterval: 4,
      dropout: 0.1,
    };
    const run = async (name: string, estimate: boolean) => {
      const trainer = await startTraining({
        dataDir,
        outDir: join(dir, name),
        backend: 'cpu',
        estimate,
        config,
      });
      const events = await collect(trainer);
      trainer.dispose();
      return events;
    };
    const timed = await run('timed', true);
    const plain = await run('plain', false);
    // Timed: three steps, the estimate, then the evaluation of iteration 0.
    const order = timed
      .filter((e) => e.type !== 'eval-progress')
      .map((e) => `${e.type}${'iter' in e ? ` ${e.iter}` : ''}`);
    expect(order.slice(0, 7)).toEqual([
      'start',
      'step 1',
      'step 2',
      'step 3',
      'estimate',
      'eval 0',
      'step 4',
    ]);
    expect(plain.filter((e) => e.type === 'estimate')).toEqual([]);
    // The same run either way: the timed steps are the run's own, and iteration 0 is
    // evaluated on the starting weights although two steps came first.
    const losses = (events: TrainerEvent[]) =>
      events.flatMap((e) =>
        e.type === 'step'
          ? [`step ${e.iter} ${e.loss}`]
          : e.type === 'eval'
            ? [`eval ${e.iter} ${e.trainLoss} ${e.valLoss}`]
            : [],
      );
    expect(losses(timed).sort()).toEqual(losses(plain).sort());
    expect(losses(timed).filter((l) => l.startsWith('eval'))).toHaveLength(3);

    const estimate = timed.find((e) => e.type === 'estimate')!;
    if (estimate.type !== 'estimate') throw new Error('unreachable');
    expect(estimate.timedSteps).toBe(3);
    // The first step warms up; the faster of the next two is the pace.
    const ms = (iter: number) =>
      timed.flatMap((e) => (e.type === 'step' && e.iter === iter ? [e.msPerIter] : []))[0]!;
    expect(estimate.msPerStep).toBe(Math.min(ms(2), ms(3)));
    expect(estimate.msPerEvalBatch).toBeGreaterThan(0);
    expect(estimate.evalIters).toMatchObject({ requested: 3, used: 3 });
    // 8 steps; evaluations at 0, 4 and 8 over 2 splits × 3 batches.
    expect(estimate.run).toMatchObject({ steps: 8, evaluations: 3, evalBatches: 18 });
  });

  it('reports each evaluation batch by batch, per split, with the time so far', async () => {
    const dir = tempDir();
    const trainer = await startTraining({
      dataDir: await prepareData(dir),
      outDir: join(dir, 'out'),
      backend: 'cpu',
      config: { preset: 'nano', maxIters: 2, evalInterval: 100, evalIters: 3 },
    });
    const events = await collect(trainer);
    trainer.dispose();
    const progress = events.filter((e) => e.type === 'eval-progress');
    // Evaluations at iterations 0 and 2, each: 0 done, then 6 batches (3 train, 3 val).
    const shown = progress.map(
      (e) => `${e.iter} ${e.split} ${e.batch}/${e.batches} ${e.done}/${e.total}`,
    );
    const one = (iter: number) => [
      `${iter} train 0/3 0/6`,
      `${iter} train 1/3 1/6`,
      `${iter} train 2/3 2/6`,
      `${iter} train 3/3 3/6`,
      `${iter} val 1/3 4/6`,
      `${iter} val 2/3 5/6`,
      `${iter} val 3/3 6/6`,
    ];
    expect(shown).toEqual([...one(0), ...one(2)]);
    const elapsed = progress.slice(0, 7).map((e) => e.elapsedMs);
    expect(elapsed).toEqual([...elapsed].sort((a, b) => a - b));
    // Each evaluation's progress comes before its result.
    const evalAt = events.findIndex((e) => e.type === 'eval' && e.iter === 0);
    expect(events.findLastIndex((e) => e.type === 'eval-progress' && e.iter === 0)).toBe(
      evalAt - 1,
    );
  });

  it('caps evalIters, when asked, to what a tiny run can afford', async () => {
    const dir = tempDir();
    const trainer = await startTraining({
      dataDir: await prepareData(dir),
      outDir: join(dir, 'out'),
      backend: 'cpu',
      // Nothing always afforded: a nano evaluation is over in well under the 10 s default.
      capEvalIters: { alwaysAffordedSeconds: 0 },
      // As the issue's run: a config's evalIters 200 with a tiny maxIters.
      config: { preset: 'nano', maxIters: 2, evalIters: 200 },
    });
    const events = await collect(trainer);
    trainer.dispose();
    const estimate = events.find((e) => e.type === 'estimate');
    if (estimate?.type !== 'estimate') throw new Error('no estimate event');
    const { used, affordable, requested } = estimate.evalIters;
    expect(requested).toBe(200);
    expect(used).toBe(affordable);
    expect(used).toBeGreaterThanOrEqual(MIN_CAPPED_EVAL_ITERS);
    expect(used).toBeLessThan(200);
    const totals = new Set(events.flatMap((e) => (e.type === 'eval-progress' ? [e.total] : [])));
    expect([...totals]).toEqual([2 * used]);
    expect(events.filter((e) => e.type === 'eval').map((e) => e.iter)).toEqual([0, 2]);
    // The checkpoint keeps the configured value: a longer resumed run may afford it.
    const saved = JSON.parse(
      readFileSync(join(dir, 'out', 'checkpoints', 'ckpt-000000002', 'config.json'), 'utf8'),
    );
    expect(saved.train.evalIters).toBe(200);
  });

  it("resumes with the checkpoint's model and settings; only maxIters and the intervals may change", async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    const outDir = join(dir, 'out');
    const first = await startTraining({
      dataDir,
      outDir,
      backend: 'cpu',
      config: { preset: 'nano', nLayer: 1, learningRate: 2e-3, maxIters: 4, evalIters: 1 },
    });
    await collect(first);
    first.dispose();
    // No preset, no model keys: the checkpoint's run continues as it was.
    const resumed = await startTraining({
      dataDir,
      outDir,
      backend: 'cpu',
      resume: true,
      config: { maxIters: 6, evalInterval: 3 },
    });
    expect(resumed.modelConfig).toMatchObject({ nLayer: 1, nEmbd: 32 });
    expect(resumed.config).toMatchObject({
      preset: 'nano',
      nLayer: 1,
      learningRate: 2e-3,
      evalIters: 1,
      maxIters: 6,
      evalInterval: 3,
    });
    const events = await collect(resumed);
    resumed.dispose();
    expect(events.filter((e) => e.type === 'step').map((e) => e.iter)).toEqual([5, 6]);
    expect(events.filter((e) => e.type === 'eval').map((e) => e.iter)).toEqual([6]);
    expect(readFileSync(join(outDir, 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      'ckpt-000000006',
    );
    // The original settings repeated are fine; changing a fixed one is refused, naming it.
    const again = await startTraining({
      dataDir,
      outDir,
      backend: 'cpu',
      resume: true,
      config: { preset: 'nano', nLayer: 1, learningRate: 2e-3, maxIters: 7 },
    });
    again.dispose();
    const error = await startTraining({
      dataDir,
      outDir,
      backend: 'cpu',
      resume: true,
      config: { maxIters: 8, learningRate: 1e-2, nHead: 4 },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResumeConfigError);
    expect((error as Error).message).toMatch(
      /ckpt-000000006\/config\.json: cannot resume — the checkpoint's model differs from this run's in nHead \(checkpoint 2, now 4\); its training settings differ in learningRate \(checkpoint 0\.002, now 0\.01\)\. .*only maxIters, lrDecayIters, evalInterval, evalIters, logInterval, checkpointInterval, keepCheckpoints may change/,
    );
    expect((error as ResumeConfigError).conflicts.map((c) => c.key)).toEqual([
      'learningRate',
      'nHead',
    ]);
    expect(readdirSync(outDir)).not.toContain('minigpt.lock');
  });

  it('saves a checkpoint of the current iteration on demand, which resumes as the uninterrupted run', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    // No interval checkpoint before the end: only saveCheckpoint() writes one mid-run.
    const config = {
      preset: 'nano',
      nLayer: 1,
      maxIters: 8,
      evalInterval: 4,
      evalIters: 1,
      checkpointInterval: 100,
    };
    const reference = await startTraining({
      dataDir,
      outDir: join(dir, 'reference'),
      backend: 'cpu',
      config,
    });
    const referenceLosses = (await collect(reference))
      .filter((e) => e.type === 'step')
      .map((e) => e.loss);
    reference.dispose();
    expect(referenceLosses).toHaveLength(8);

    const outDir = join(dir, 'interrupted');
    const trainer = await startTraining({ dataDir, outDir, backend: 'cpu', config });
    let saved: { iter: number; dir: string } | undefined;
    let startWeightsRefused: unknown;
    let sawStep = false;
    for await (const event of trainer.run()) {
      if (event.type === 'step') sawStep = true;
      // After the timed first steps, run() evaluates the starting weights swapped into the
      // model: a checkpoint then would hold iteration 0's weights under a later iteration.
      if (sawStep && event.type === 'eval-progress' && event.iter === 0 && !startWeightsRefused) {
        startWeightsRefused = await trainer.saveCheckpoint().catch((error: unknown) => error);
      }
      if (event.type === 'step' && event.iter === 5) {
        saved = await trainer.saveCheckpoint();
        break; // the page closes here: iterations 6–8 never ran
      }
    }
    expect((startWeightsRefused as Error).message).toMatch(/holds the starting weights/);
    const checkpoint = join(outDir, 'checkpoints', 'ckpt-000000005');
    expect(saved).toEqual({ iter: 5, dir: checkpoint });
    expect(readFileSync(join(outDir, 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      'ckpt-000000005',
    );
    // The same iteration again: nothing changed, nothing rewritten.
    const before = readFileSync(join(checkpoint, 'state.json'), 'utf8');
    await new Promise((resolve) => setTimeout(resolve, 5)); // a rewrite would change savedAt
    expect(await trainer.saveCheckpoint()).toEqual({ iter: 5, dir: checkpoint });
    expect(readFileSync(join(checkpoint, 'state.json'), 'utf8')).toBe(before);
    expect(JSON.parse(before)).toMatchObject({ iteration: 5 });
    trainer.dispose();
    await expect(trainer.saveCheckpoint()).rejects.toThrow(/disposed/);

    // Resumed from it, the run goes on with the losses of the run never interrupted.
    const resumed = await startTraining({ dataDir, outDir, backend: 'cpu', resume: true });
    const steps = (await collect(resumed)).filter((e) => e.type === 'step');
    resumed.dispose();
    expect(steps.map((e) => e.iter)).toEqual([6, 7, 8]);
    expect(steps.map((e) => e.loss)).toEqual(referenceLosses.slice(5));
  });
});
