import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

describe('minigpt export / generate (spawned CLI)', () => {
  it('exports a trained checkpoint and streams text from it with onnxruntime', () => {
    const cwd = tempDir();
    writeFileSync(
      join(cwd, 'input.txt'),
      'to be or not to be, that is the question.\n'.repeat(200),
    );
    expect(runCli(['prepare', '--input', 'input.txt', '--out', 'data'], { cwd }).status).toBe(0);
    const train = runCli(
      [
        'train',
        '--data',
        'data',
        '--out',
        'run',
        '--preset=nano',
        '--maxIters=20',
        '--evalIters=1',
        '--no-progress',
        '--backend=cpu',
      ],
      { cwd },
    );
    expect(train.status, train.stderr).toBe(0);

    const exported = runCli(['export', '--checkpoint', 'run', '--out', 'onnx'], { cwd });
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(
      /exported run\/checkpoints\/ckpt-000000020 → onnx\/ \(model\.onnx [\d.]+ MB, 2 layers, 32 wide, vocab \d+, opset 17\)/,
    );
    for (const file of [
      'model.onnx',
      'minigpt.json',
      'vocab.json',
      'config.json',
      'tokenizer.json',
    ])
      expect(existsSync(join(cwd, 'onnx', file))).toBe(true);
    expect(runCli(['export', '--checkpoint', 'run', '--out', 'onnx'], { cwd }).stderr).toMatch(
      /already holds an export/,
    );

    const generate = (...extra: string[]) =>
      runCli(
        ['generate', '--model', 'onnx', '--prompt', 'to be', '--max-new-tokens', '50', ...extra],
        { cwd },
      );
    const first = generate('--seed', '3', '--stats');
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout.startsWith('to be')).toBe(true);
    expect(first.stdout.length).toBeGreaterThanOrEqual('to be'.length + 50);
    const stats = JSON.parse(first.stderr.trim().split('\n').pop()!);
    expect(stats).toMatchObject({ newTokens: 50, device: 'cpu' });
    expect(Object.keys(stats).sort()).toEqual([
      'device',
      'firstTokenMs',
      'newTokens',
      'tokensPerSec',
    ]);
    expect(generate('--seed', '3').stdout).toBe(first.stdout);
    expect(generate('--temperature', '0').status).toBe(0);

    // Either this machine runs CUDA, or it says it does not and runs on CPU — never an error.
    const cuda = generate('--device', 'cuda', '--stats');
    expect(cuda.status, cuda.stderr).toBe(0);
    const device = JSON.parse(cuda.stderr.trim().split('\n').pop()!).device;
    if (device === 'cpu') {
      expect(cuda.stderr).toMatch(/minigpt: warning: CUDA is not available .*running on CPU/);
    } else {
      expect(device).toBe('cuda');
      expect(cuda.stderr).not.toMatch(/warning/);
    }
  }, 90_000);

  it('explains bad exports and arguments in one line', () => {
    const cwd = tempDir();
    expect(runCli(['generate', '--model', 'nowhere'], { cwd }).stderr).toMatch(
      /^minigpt: error: .*nowhere\/minigpt\.json: not found/,
    );
    expect(runCli(['export', '--checkpoint', 'nope', '--out', 'x'], { cwd }).stderr).toMatch(
      /^minigpt: error: .*nope: no such checkpoint directory/,
    );
    writeFileSync(
      join(cwd, 'minigpt.json'),
      JSON.stringify({ format: 'minigpt-onnx', formatVersion: 9 }),
    );
    const newer = runCli(['generate', '--model', '.'], { cwd });
    expect(newer.status).toBe(1);
    expect(newer.stderr).toMatch(
      /minigpt\.json: format version 9, but this runner reads version 1\. Upgrade/,
    );
    expect(readFileSync(join(cwd, 'minigpt.json'), 'utf8')).toMatch(/formatVersion/);
  });
});
