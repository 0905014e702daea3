// Crash trials (`pnpm test:crash`): a nano run with gradient accumulation on wasm with the
// native kernels is killed with SIGKILL at a random moment, N times. After each kill the
// output directory's `latest` must load (every file checked by @minigpt/checkpoint's reader)
// and a resumed run must reproduce an uninterrupted run's losses bit for bit.
// Usage: node bench/crash-trials.mjs [--trials=20] [--seed=1]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readCheckpointDir } from '@minigpt/checkpoint/node';
import { binarize } from '@minigpt/data/node';
import { Random } from '@minigpt/random';
import { cpuName } from '@minigpt/bench-support';

const { values: args } = parseArgs({
  options: { trials: { type: 'string' }, seed: { type: 'string' } },
});
const trials = Number(args.trials ?? 20);
const random = new Random(Number(args.seed ?? 1));
const CHILD = fileURLToPath(new URL('../test/fixtures/train-child.mjs', import.meta.url));
const config = {
  preset: 'nano',
  maxIters: 120,
  gradientAccumulationSteps: 2,
  dropout: 0.1,
  logInterval: 1,
  evalInterval: 25,
  evalIters: 2,
  checkpointInterval: 7,
  keepCheckpoints: 2,
};

/**
 * Runs the child; resolves with the events it printed and how it ended. `kill` says when to
 * SIGKILL it: `{ afterMs }` from the spawn, or `{ afterFirstStepMs }` from its first step.
 */
function runChild(options, kill) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const events = [];
    let stderr = '';
    let buffered = '';
    const started = performance.now();
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        const event = { ...JSON.parse(line), at: performance.now() - started };
        events.push(event);
        if (event.type === 'step' && kill?.afterFirstStepMs !== undefined && timer === undefined) {
          timer = setTimeout(() => child.kill('SIGKILL'), kill.afterFirstStepMs);
        }
      }
    });
    let timer =
      kill?.afterMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGKILL'), kill.afterMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      if (code === 0 || signal === 'SIGKILL') resolve({ events, killed: signal === 'SIGKILL', ms });
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

function losses(outDir) {
  const lines = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
  return new Map(
    lines
      .map((line) => JSON.parse(line))
      .filter((record) => 'loss' in record)
      .map((record) => [record.iter, record.loss]),
  );
}

const work = mkdtempSync(join(tmpdir(), 'minigpt-crash-trials-'));
try {
  const words = 'the king and queen of the land went to see a play about a ship at sea'.split(' ');
  const text = Array.from({ length: 600 }, () =>
    Array.from({ length: 6 }, () => words[random.nextInt(words.length)]).join(' '),
  ).join('.\n');
  writeFileSync(join(work, 'input.txt'), text);
  const dataDir = join(work, 'data');
  await binarize({ input: join(work, 'input.txt'), outDir: dataDir });
  const base = { dataDir, config, backend: 'wasm', nativeKernels: true };

  const straightDir = join(work, 'straight');
  const straight = await runChild({ ...base, outDir: straightDir });
  const native = straight.events.find((e) => e.type === 'start')?.native;
  const reference = losses(straightDir);
  const firstStepMs = straight.events.find((e) => e.type === 'step').at;
  console.log(
    `machine: ${cpuName()} × ${cpus().length}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`,
  );
  console.log(
    `run: nano, ${config.maxIters} iterations, gradient accumulation ${config.gradientAccumulationSteps}, dropout ${config.dropout}, ` +
      `checkpoint every ${config.checkpointInterval}, wasm backend, native kernels ${native ? 'on' : 'NOT INSTALLED'}; ` +
      `an uninterrupted run takes ${(straight.ms / 1000).toFixed(1)} s`,
  );
  console.log(
    '\ntrial |             killed at | last step seen | latest after kill | loads | resumed losses',
  );
  console.log(
    '----- | --------------------- | -------------- | ----------------- | ----- | --------------',
  );
  let loadable = 0;
  let identical = 0;
  for (let trial = 1; trial <= trials; trial++) {
    const outDir = join(work, `trial-${trial}`);
    // One kill in ten lands in start-up (before any step: the lock, the first eval); the
    // others uniformly over the training part, timed from the trial's own first step.
    const inStartup = random.nextFloat() < 0.1;
    const delay = Math.round(
      random.nextFloat() * (inStartup ? firstStepMs : straight.ms - firstStepMs),
    );
    const killed = await runChild(
      { ...base, outDir },
      inStartup ? { afterMs: delay } : { afterFirstStepMs: delay },
    );
    const killedAt = inStartup ? `${delay} ms after start` : `${delay} ms after step 1`;
    const steps = killed.events.filter((e) => e.type === 'step');
    const lastStep = steps.at(-1)?.iter ?? '-';
    let latest = '(none yet)';
    let loads = '-';
    let resume = false;
    if (existsSync(join(outDir, 'checkpoints', 'latest'))) {
      latest = readFileSync(join(outDir, 'checkpoints', 'latest'), 'utf8').trim();
      try {
        const checkpoint = await readCheckpointDir(outDir, { optimizer: true });
        loads = `yes (iteration ${checkpoint.state.iteration})`;
        loadable++;
        resume = true;
      } catch (error) {
        loads = `NO: ${error.message}`;
      }
    } else {
      loads = 'n/a';
      loadable++; // nothing saved yet is not a damaged checkpoint
    }
    // No checkpoint yet: a fresh start into the same directory (the dead run's lock is taken over).
    await runChild({ ...base, outDir, resume });
    const resumed = losses(outDir);
    const same =
      resumed.size === reference.size &&
      [...reference].every(([iter, loss]) => Object.is(resumed.get(iter), loss));
    if (same) identical++;
    console.log(
      `${String(trial).padStart(5)} | ${killedAt.padStart(21)} | ${String(lastStep).padStart(14)} | ${latest.padEnd(17)} | ${loads} | ${same ? `bit-identical (${resumed.size} losses)` : 'DIFFERENT'}`,
    );
  }
  console.log(
    `\n${loadable}/${trials} left a loadable latest; ${identical}/${trials} resumed to losses bit-identical to the uninterrupted run.`,
  );
  if (loadable !== trials || identical !== trials) process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
