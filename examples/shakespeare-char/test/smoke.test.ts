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
});
