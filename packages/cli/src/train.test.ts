import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, runCli, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

function preparedDir(): string {
  const cwd = tempDir();
  writeFileSync(
    join(cwd, 'input.txt'),
    'the quick brown fox jumps over the lazy dog.\n'.repeat(200),
  );
  expect(runCli(['prepare', '--input', 'input.txt', '--out', 'data'], { cwd }).status).toBe(0);
  return cwd;
}

const nano = [
  '--preset=nano',
  '--maxIters=6',
  '--evalInterval=3',
  '--evalIters=2',
  '--checkpointInterval=3',
  '--no-progress',
  '--backend=cpu',
];

describe('minigpt train / sample (spawned CLI)', () => {
  it('trains with --key=value overrides, then resumes past maxIters', () => {
    const cwd = preparedDir();
    const first = runCli(['train', '--data', 'data', '--out', 'run', ...nano], { cwd });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/backend: cpu/);
    expect(first.stderr).toMatch(/model: 2 layers, 2 heads, 32 wide, block 16, vocab \d+/);
    expect(first.stderr).toMatch(/eval at iter 6: train loss [\d.]+, val loss [\d.]+/);
    expect(readFileSync(join(cwd, 'run', 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      'ckpt-000000006',
    );
    const again = runCli(['train', '--data', 'data', '--out', 'run', ...nano], { cwd });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already holds a training run\. Pass --resume/);
    const resumed = runCli(
      ['train', '--data', 'data', '--out', 'run', '--resume', ...nano, '--maxIters=9'],
      { cwd },
    );
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from run\/checkpoints\/ckpt-000000006 at iteration 6/);
    expect(readFileSync(join(cwd, 'run', 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      'ckpt-000000009',
    );
  }, 60_000);

  it('takes a JSON config file, with the command line overriding it', () => {
    const cwd = preparedDir();
    writeFileSync(
      join(cwd, 'config.json'),
      JSON.stringify({ preset: 'nano', maxIters: 4, nLayer: 1 }),
    );
    const result = runCli(
      [
        'train',
        '--config',
        'config.json',
        '--data',
        'data',
        '--out',
        'run',
        '--nEmbd=16',
        '--evalIters=1',
        '--no-progress',
        '--backend=cpu',
      ],
      { cwd },
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/model: 1 layers, 2 heads, 16 wide/);
    expect(readFileSync(join(cwd, 'run', 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      'ckpt-000000004',
    );
  }, 60_000);

  it('explains bad config keys, types and files in one line', () => {
    const cwd = preparedDir();
    const unknown = runCli(['train', '--data', 'data', '--max_iters=5'], { cwd });
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(
      /^minigpt: error: unknown option or config key "--max_iters" \(did you mean --max-iters\?\); config keys: --preset, --n-layer, --n-head, .*--max-iters, .*--seed\n$/,
    );
    expect(runCli(['train', '--data', 'data', '--maxIters=lots'], { cwd }).stderr).toMatch(
      /--maxIters must be a number, got "lots"/,
    );
    expect(runCli(['train', '--data', 'data', '--preset=huge'], { cwd }).stderr).toMatch(
      /unknown preset "huge"/,
    );
    expect(runCli(['train', '--data', 'nowhere'], { cwd }).stderr).toMatch(
      /nowhere\/meta\.json: not found/,
    );
    expect(runCli(['train', '--data', 'data', '--config', 'missing.ts'], { cwd }).stderr).toMatch(
      /missing\.ts: config file not found/,
    );
    const tooLong = runCli(
      ['train', '--data', 'data', '--preset=nano', '--blockSize=5000', '--backend=cpu'],
      { cwd },
    );
    expect(tooLong.stderr).toMatch(
      /val\.bin: the val split has \d+ tokens, fewer than blockSize \+ 1 = 5001/,
    );
    for (const result of [unknown, tooLong]) expect(result.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('samples reproducibly from a checkpoint, and names a bad checkpoint', () => {
    const cwd = preparedDir();
    expect(runCli(['train', '--data', 'data', '--out', 'run', ...nano], { cwd }).status).toBe(0);
    const sample = (seed: string) =>
      runCli(
        [
          'sample',
          '--checkpoint',
          'run',
          '--prompt',
          'the ',
          '--max-new-tokens',
          '40',
          '--seed',
          seed,
          '--backend',
          'cpu',
        ],
        { cwd },
      );
    const a = sample('1');
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout.startsWith('the ')).toBe(true);
    expect(a.stdout.trimEnd().length).toBeGreaterThanOrEqual(4 + 30);
    expect(sample('1').stdout).toBe(a.stdout);
    expect(sample('2').stdout).not.toBe(a.stdout);
    const missing = runCli(['sample', '--checkpoint', 'nope'], { cwd });
    expect(missing.stderr).toMatch(/^minigpt: error: nope: no such checkpoint directory/);
    writeFileSync(
      join(cwd, 'run', 'checkpoints', 'ckpt-000000006', 'model.safetensors'),
      'garbage!',
    );
    const damaged = runCli(['sample', '--checkpoint', 'run', '--backend', 'cpu'], { cwd });
    expect(damaged.status).toBe(1);
    expect(damaged.stderr).toMatch(
      /model\.safetensors: header length \d+ is over the format's bound of 100000000 bytes \[header-length\]/,
    );
  }, 60_000);

  it('takes every config key in kebab-case too, and --help lists them that way', () => {
    const cwd = preparedDir();
    const result = runCli(
      [
        'train',
        '--data',
        'data',
        '--out',
        'run',
        '--preset=nano',
        '--max-iters=4',
        '--eval-iters',
        '1',
        '--n-embd=16',
        '--checkpointInterval=2',
        '--no-progress',
        '--backend=cpu',
      ],
      { cwd },
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/model: 2 layers, 2 heads, 16 wide/);
    expect(result.stderr).toMatch(/training: .*, 4 iterations/);
    expect(result.stderr).toMatch(/time estimate: .* \+ 2 evaluations × 2 × 1 batches/);
    expect(readFileSync(join(cwd, 'run', 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      'ckpt-000000004',
    );
    const help = runCli(['train', '--help'], { cwd }).stdout;
    expect(help).toMatch(/^ {2}--max-iters=2000$/m);
    expect(help).toMatch(/^ {2}--lr-decay-iters=0$/m);
    expect(help).not.toMatch(/--maxIters|--nLayer|--evalIters/);
    expect(runCli(['train', '--data', 'data', '--max-iters=x'], { cwd }).stderr).toMatch(
      /^minigpt: error: --max-iters must be a number, got "x"/,
    );
    // The trainer's checks, in the words typed: a flag typed as a flag.
    expect(runCli(['train', '--data', 'data', '--max-iters=0'], { cwd }).stderr).toBe(
      'minigpt: error: --max-iters must be a positive integer, got 0\n',
    );
  }, 60_000);

  it("--resume continues the checkpoint's run without --preset; only what may change changes", () => {
    const cwd = preparedDir();
    const first = runCli(
      ['train', '--data', 'data', '--out', 'run', ...nano, '--n-layer=1', '--learning-rate=0.002'],
      { cwd },
    );
    expect(first.status, first.stderr).toBe(0);
    // No --preset, no model keys: the checkpoint says what the run is.
    const resumed = runCli(
      ['train', '--out', 'run', '--data', 'data', '--resume', '--max-iters=8', '--no-progress'],
      { cwd },
    );
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/model: 1 layers, 2 heads, 32 wide, block 16/);
    expect(resumed.stderr).toMatch(
      /training: batch 4×1, lr 0\.002 → 0\.0001, 8 iterations, resuming from run\/checkpoints\/ckpt-000000006 at iteration 6/,
    );
    expect(resumed.stderr).toMatch(/eval at iter 8: /);
    expect(readFileSync(join(cwd, 'run', 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      'ckpt-000000008',
    );
    const refused = runCli(
      ['train', '--out', 'run', '--data', 'data', '--resume', '--max-iters=10', '--n-layer=3'],
      { cwd },
    );
    expect(refused.status).toBe(1);
    expect(refused.stderr).toBe(
      'minigpt: error: run/checkpoints/ckpt-000000008: --resume continues that run as it was, so --n-layer=3 (the checkpoint has 1) cannot change. ' +
        'On --resume only --max-iters, --lr-decay-iters, --eval-interval, --eval-iters, --log-interval, --checkpoint-interval, --keep-checkpoints may be given; to change the model or other training settings, train into a new --out.\n',
    );
  }, 60_000);

  it('lowers a config file’s evalIters for a tiny run, and says so', () => {
    const cwd = preparedDir();
    writeFileSync(
      join(cwd, 'config.json'),
      // 2 evaluations × 2 × 20,000 batches: well over the 10 s always afforded, on any machine.
      JSON.stringify({ preset: 'nano', maxIters: 2, evalIters: 20_000 }),
    );
    const result = runCli(
      ['train', '--config', 'config.json', '--data', 'data', '--out', 'run', '--no-progress'],
      { cwd },
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /note: --eval-iters lowered from 20000 to \d+ for this run: 2 evaluations of 2 × 20000 batches would take .*, longer than its 2 steps \(.*\)\. Give --eval-iters=20000 to keep it\./,
    );
    expect(result.stderr.indexOf('note: --eval-iters lowered')).toBeLessThan(
      result.stderr.indexOf('eval at iter 0'),
    );
  }, 60_000);

  it('warns before a long run, with the projected time and how to shorten it', async () => {
    const cwd = preparedDir();
    // Ten million nano steps: days on any backend. The warning must come after the timed
    // steps, before any evaluation; the run is stopped once it is out.
    const child = spawn(
      process.execPath,
      [BIN, 'train', '--data', 'data', '--out', 'run', '--preset=nano', '--max-iters=10000000'],
      { cwd, env: { ...process.env, MINIGPT_CACHE_DIR: join(cwd, '.cache') } },
    );
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`no warning in time:\n${stderr}`));
      }, 50_000);
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
        if (/Ctrl-C stops it now/.test(stderr)) {
          clearTimeout(timer);
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => resolve());
    });
    expect(stderr).toMatch(/time estimate: \d+h\d\dm on \w+: 10000000 steps × /);
    expect(stderr).toMatch(/warning: this run will take about \d+h\d\dm on \w+, over 30m00s/);
    expect(stderr).toMatch(/ {2}- fewer steps: --max-iters=\d+ fits in 30m00s at this speed/);
    expect(stderr).not.toMatch(/eval at iter/);
  }, 60_000);
});
