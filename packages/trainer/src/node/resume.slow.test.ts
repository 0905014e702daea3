// Resume and crash safety with real processes: a child trains, the test kills it with
// SIGKILL, and the resumed run must match an uninterrupted one loss for loss.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from './index.js';
import { prepareData, useTempDir } from '../test-helpers.js';

const tempDir = useTempDir();
const CHILD = fileURLToPath(new URL('../../test/fixtures/train-child.mjs', import.meta.url));
const config = {
  preset: 'nano',
  maxIters: 20,
  logInterval: 1,
  evalInterval: 1000,
  checkpointInterval: 10,
  dropout: 0.1,
};

/** Runs the child to completion, or until `killWhen(line)` says to SIGKILL it. */
function runChild(
  options: object,
  killWhen?: (event: { type: string; iter: number | null }) => boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!existsSync(join(CHILD, '../../../dist/index.js')))
      reject(new Error('build @minigpt/trainer first (pnpm build)'));
    const child = spawn(process.execPath, [CHILD, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let buffered = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (killWhen?.(JSON.parse(line))) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      if (code === 0 || signal === 'SIGKILL') resolve();
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

function lossesByIteration(outDir: string): Map<number, number> {
  const records = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return new Map(records.filter((r) => 'loss' in r).map((r) => [r.iter, r.loss]));
}

describe('resume after kill -9', () => {
  it('10 iterations + SIGKILL + resume gives the losses of 20 uninterrupted iterations', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    await runChild({ dataDir, outDir: join(dir, 'straight'), config });
    const straight = lossesByIteration(join(dir, 'straight'));
    expect(straight.size).toBe(20);

    const outDir = join(dir, 'killed');
    // Slow after iteration 10 so the kill lands mid-run, after some unsaved steps.
    await runChild(
      { dataDir, outDir, config, slowAfter: 10, stepDelayMs: 300 },
      (e) => e.type === 'step' && e.iter === 12,
    );
    expect(readFileSync(join(outDir, 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      'ckpt-000000010',
    );
    await runChild({ dataDir, outDir, config, resume: true });
    const resumed = lossesByIteration(outDir);
    expect([...resumed.keys()]).toEqual([...straight.keys()]); // the killed run's steps 11–12 were dropped
    for (const [iter, loss] of straight) expect(resumed.get(iter)).toBe(loss);
  }, 120_000);

  it('a SIGKILL at any moment leaves `latest` naming a complete checkpoint', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    const outDir = join(dir, 'out');
    const everyStep = { ...config, maxIters: 400, checkpointInterval: 1, keepCheckpoints: 2 };
    let resume = false;
    // Kill after a varying number of steps: lands during checkpoint writes, renames, pruning.
    for (const killAt of [3, 7, 12, 18, 25]) {
      await runChild(
        { dataDir, outDir, config: everyStep, resume },
        (e) => e.type === 'checkpoint' && (e.iter ?? 0) >= killAt,
      );
      resume = true;
      const loaded = await loadCheckpoint(outDir);
      expect(loaded.state.iteration).toBeGreaterThanOrEqual(killAt - 1);
      loaded.model.dispose();
    }
  }, 120_000);
});
