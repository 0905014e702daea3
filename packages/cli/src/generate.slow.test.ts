// The whole export → generate path on a freshly trained model (over 20 s: a slow test).
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
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

    const exported = runCli(
      ['export', '--checkpoint', 'run', '--out', 'onnx', '--quantize', 'int8'],
      { cwd },
    );
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(
      /exported run\/checkpoints\/ckpt-000000020 → onnx\/ \(onnx\/model\.onnx [\d.]+ MB, int8 onnx\/model_quantized\.onnx [\d.]+ MB, 2 layers, 32 wide, vocab \d+, opset 17\)/,
    );
    // The next step it prints runs as printed (outside a clone: node and the bin's path).
    const hint = /\ngenerate: (node \S+ generate --model onnx)\n$/.exec(exported.stdout);
    expect(hint, exported.stdout).not.toBeNull();
    const hinted = spawnSync('sh', ['-c', hint![1]!], { cwd, encoding: 'utf8', timeout: 60_000 });
    expect(hinted.status, hinted.stderr).toBe(0);
    expect(hinted.stderr).toBe('');
    for (const file of [
      'onnx/model.onnx',
      'onnx/model_quantized.onnx',
      'minigpt.json',
      'tokenizer.minigpt.json',
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ])
      expect(existsSync(join(cwd, 'onnx', file)), file).toBe(true);
    // In the CLI's words (--force, --out), not the library's (force: true, outDir).
    expect(runCli(['export', '--checkpoint', 'run', '--out', 'onnx'], { cwd }).stderr).toBe(
      'minigpt: error: onnx: already holds an export. Pass --force to replace it, or choose another --out\n',
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
      'dtype',
      'firstTokenMs',
      'newTokens',
      'prompts',
      'tokensPerSec',
    ]);
    const again = generate('--seed', '3');
    expect(again.stdout).toBe(first.stdout);
    // How onnxruntime's threads wait, and how many there are, change no token.
    for (const threading of [
      ['--spinning', 'off'],
      ['--spinning', 'on', '--threads', '1'],
      ['--spinning', '400', '--threads', '2'],
      ['--threads', 'default'],
      ['--threads', 'adaptive'],
    ]) {
      const result = generate('--seed', '3', ...threading);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toBe(first.stdout);
    }
    expect(again.stderr).toBe(''); // onnxruntime's own log stays quiet
    expect(generate('--temperature', '0').status).toBe(0);
    const quantized = generate('--seed', '3', '--dtype', 'q8', '--stats');
    expect(quantized.status, quantized.stderr).toBe(0);
    expect(JSON.parse(quantized.stderr.trim().split('\n').pop()!)).toMatchObject({
      newTokens: 50,
      dtype: 'q8',
    });

    // --fused: the same weights in onnxruntime's com.microsoft operators, the same greedy text.
    const fused = runCli(['export', '--checkpoint', 'run', '--out', 'fused', '--fused'], { cwd });
    expect(fused.status, fused.stderr).toBe(0);
    expect(fused.stdout).toMatch(/MB, com\.microsoft operators, 2 layers/);
    const greedy = (model: string) =>
      runCli(
        [
          'generate',
          '--model',
          model,
          '--prompt',
          'to be',
          '--max-new-tokens',
          '50',
          '--temperature',
          '0',
        ],
        { cwd },
      );
    const fusedText = greedy('fused');
    expect(fusedText.status, fusedText.stderr).toBe(0);
    expect(fusedText.stdout).toBe(greedy('onnx').stdout);

    // A prompt file in batches of 2 gives, row for row, what each prompt gives alone, greedy
    // (empty lines skipped, \r\n accepted). Sampled rows are compared in the runtime's tests:
    // a padded batch's logits differ from a lone prompt's in the last float bits, which a
    // sampling threshold can tell apart.
    writeFileSync(join(cwd, 'prompts.txt'), 'to be\r\n\nthe question\nor not\n');
    const batched = runCli(
      [
        'generate',
        '--model',
        'onnx',
        '--prompt-file',
        'prompts.txt',
        '--batch-size',
        '2',
        '--max-new-tokens',
        '30',
        '--temperature',
        '0',
      ],
      { cwd },
    );
    expect(batched.status, batched.stderr).toBe(0);
    const alone = ['to be', 'the question', 'or not'].map(
      (prompt, index) =>
        `--- ${index + 1}/3 ---\n` +
        runCli(
          [
            'generate',
            '--model',
            'onnx',
            '--prompt',
            prompt,
            '--max-new-tokens',
            '30',
            '--temperature',
            '0',
          ],
          { cwd },
        ).stdout,
    );
    expect(batched.stdout).toBe(alone.join(''));

    // Either this machine runs CUDA, or it says it does not and runs on CPU — never an error.
    const cuda = generate('--device', 'cuda', '--stats');
    expect(cuda.status, cuda.stderr).toBe(0);
    const device = JSON.parse(cuda.stderr.trim().split('\n').pop()!).device;
    if (device === 'cpu') {
      // One line says so; onnxruntime's own log of the provider libraries it could not load
      // shows only when asked for.
      const [warning, ...rest] = cuda.stderr.trim().split('\n');
      expect(warning).toMatch(/^minigpt: warning: CUDA is not available .*running on CPU/);
      expect(rest).toHaveLength(1); // the stats
      const verbose = generate('--device', 'cuda', '--verbose');
      expect(verbose.status, verbose.stderr).toBe(0);
      expect(verbose.stderr).toMatch(/onnxruntime/);
      expect(verbose.stderr.split('\n').length).toBeGreaterThan(2);
    } else {
      expect(device).toBe('cuda');
      expect(cuda.stderr).not.toMatch(/warning/);
    }
  }, 90_000);
});
