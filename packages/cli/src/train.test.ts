import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, useTempDir } from './test-helpers.js';

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
      /^minigpt: error: unknown option or config key "--max_iters"; config keys: preset, nLayer/,
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
});
