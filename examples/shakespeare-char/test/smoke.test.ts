// Smoke test of the example: both config files load through the CLI and train a couple of
// iterations on a small text made here, then a sample comes out.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const exampleDir = fileURLToPath(new URL('..', import.meta.url));
const bin = fileURLToPath(new URL('../../../packages/cli/dist/bin.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'minigpt-example-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function minigpt(...args: string[]) {
  if (!existsSync(bin)) throw new Error('build the CLI first: pnpm build');
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: work,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { ...result, output: `${result.stdout}${result.stderr}` };
}

describe('examples/shakespeare-char', () => {
  it('trains with each config file for a few iterations and samples', () => {
    const text =
      'ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nO Romeo, Romeo!\n';
    writeFileSync(join(work, 'input.txt'), text.repeat(300));
    expect(minigpt('prepare', '--input', 'input.txt', '--out', 'data').status).toBe(0);
    for (const [name, extra] of [
      ['train_shakespeare.ts', ['--batchSize=2', '--evalIters=1']],
      ['train_shakespeare_cpu.ts', ['--evalIters=2']],
    ] as const) {
      const out = `out-${name}`;
      const train = minigpt(
        'train',
        '--config',
        join(exampleDir, 'config', name),
        '--data',
        'data',
        '--out',
        out,
        '--maxIters=2',
        '--evalInterval=2',
        '--no-progress',
        ...extra,
      );
      expect(train.status, train.output).toBe(0);
      expect(train.output).toMatch(/eval at iter 2: train loss [\d.]+, val loss [\d.]+/);
      expect(train.output).toMatch(
        name === 'train_shakespeare.ts'
          ? /model: 6 layers, 8 heads, 256 wide, block 128/
          : /model: 4 layers, 4 heads, 128 wide, block 64/,
      );
      const sample = minigpt(
        'sample',
        '--checkpoint',
        out,
        '--prompt',
        'ROMEO:',
        '--max-new-tokens',
        '20',
      );
      expect(sample.status, sample.output).toBe(0);
      expect(sample.stdout.startsWith('ROMEO:')).toBe(true);
      expect(sample.stdout.length).toBeGreaterThanOrEqual('ROMEO:'.length + 20);
    }
  }, 240_000);

  it('fine-tunes a GPT-2 directory with finetune_shakespeare.ts', () => {
    // A stand-in for the Hugging Face gpt2 directory, made by the CLI itself: a nano model
    // with a byte-level BPE, exported with --hf (config.json, model.safetensors, tokenizer.json).
    const text = 'ROMEO:\nBut soft, what light through yonder window breaks?\n\n'.repeat(300);
    writeFileSync(join(work, 'pretrain.txt'), text);
    writeFileSync(
      join(work, 'play.txt'),
      'JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n'.repeat(200),
    );
    const run = (...args: string[]) => {
      const result = minigpt(...args);
      expect(result.status, result.output).toBe(0);
      return result;
    };
    run(
      'prepare',
      '--input',
      'pretrain.txt',
      '--tokenizer',
      'bpe',
      '--vocab-size',
      '300',
      '--out',
      'pre',
    );
    run(
      'train',
      '--data',
      'pre',
      '--out',
      'pre-run',
      '--preset=nano',
      '--maxIters=2',
      '--no-progress',
    );
    run('export', '--checkpoint', 'pre-run', '--out', 'gpt2', '--hf');
    run('prepare', '--input', 'play.txt', '--tokenizer', 'gpt2', '--out', 'data-gpt2');
    const train = run(
      'train',
      '--config',
      join(exampleDir, 'config', 'finetune_shakespeare.ts'),
      '--init-from',
      'gpt2',
      '--data',
      'data-gpt2',
      '--out',
      'finetuned',
      // The stand-in has 16 positions, GPT-2 1,024: the config's 256 is cropped further here.
      '--blockSize=16',
      '--maxIters=2',
      '--no-progress',
    );
    expect(train.output).toMatch(/starting weights: gpt2\n/);
    expect(train.output).toMatch(/model: 2 layers, 2 heads, 32 wide, block 16, vocab 300/);
    expect(train.output).toMatch(/training: batch 4×2, lr 0.00003 → 0.00003, 2 iterations/);
    const sample = run(
      'sample',
      '--checkpoint',
      'finetuned',
      '--prompt',
      'ROMEO:',
      '--max-new-tokens',
      '10',
    );
    expect(sample.stdout.startsWith('ROMEO:')).toBe(true);
  }, 240_000);
});
