import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
      'dtype',
      'firstTokenMs',
      'newTokens',
      'prompts',
      'tokensPerSec',
    ]);
    expect(generate('--seed', '3').stdout).toBe(first.stdout);
    expect(generate('--temperature', '0').status).toBe(0);
    const quantized = generate('--seed', '3', '--dtype', 'q8', '--stats');
    expect(quantized.status, quantized.stderr).toBe(0);
    expect(JSON.parse(quantized.stderr.trim().split('\n').pop()!)).toMatchObject({
      newTokens: 50,
      dtype: 'q8',
    });

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
      /minigpt\.json: format version 9, but this runner reads version 2\. Upgrade/,
    );
    expect(readFileSync(join(cwd, 'minigpt.json'), 'utf8')).toMatch(/formatVersion/);
    // An export of the first format (model.onnx beside minigpt.json): re-export it.
    writeFileSync(
      join(cwd, 'minigpt.json'),
      JSON.stringify({ format: 'minigpt-onnx', formatVersion: 1 }),
    );
    const older = runCli(['generate', '--model', '.'], { cwd });
    expect(older.status).toBe(1);
    expect(older.stderr).toMatch(
      /format version 1, .*Re-export the checkpoint with `minigpt export`/,
    );
    expect(older.stderr.trim().split('\n')).toHaveLength(1);

    writeFileSync(join(cwd, 'empty.txt'), '\n\n');
    writeFileSync(join(cwd, 'binary.txt'), Uint8Array.of(0xff, 0xfe, 0x0a));
    writeFileSync(join(cwd, 'huge.txt'), 'a'.repeat(16 * 1024 * 1024 + 1));
    mkdirSync(join(cwd, 'folder'));
    for (const [file, message] of [
      ['empty.txt', /empty\.txt: no prompts/],
      ['missing.txt', /missing\.txt: no such prompt file/],
      ['binary.txt', /binary\.txt: not UTF-8 text/],
      ['huge.txt', /huge\.txt: over the 16777216 bytes a prompt file may have/],
      ['folder', /folder: is a directory, where a file was expected/],
    ] as const) {
      const result = runCli(['generate', '--model', '.', '--prompt-file', file], { cwd });
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(message);
    }
    const both = runCli(
      ['generate', '--model', '.', '--prompt', 'a', '--prompt-file', 'empty.txt'],
      { cwd },
    );
    expect(both.stderr).toMatch(/--prompt or --prompt-file, not both/);
  });
});
