// Shared by the trainer tests: temp dirs and a small prepared dataset made in-process.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binarize } from '@minigpt/data/node';
import { Random } from '@minigpt/random';
import { afterEach } from 'vitest';

export function useTempDir(): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'minigpt-trainer-test-'));
    dirs.push(dir);
    return dir;
  };
}

const WORDS =
  'the king and queen of the land went to see a play about a ship at sea with many men'.split(' ');

/** A prepared char-level dataset of `sentences` pseudo-English lines in `dir/data`. */
export async function prepareData(dir: string, sentences = 400, seed = 1): Promise<string> {
  const random = new Random(seed);
  const lines: string[] = [];
  for (let i = 0; i < sentences; i++) {
    const words = Array.from(
      { length: 4 + random.nextInt(6) },
      () => WORDS[random.nextInt(WORDS.length)]!,
    );
    lines.push(`${words.join(' ')}.`);
  }
  writeFileSync(join(dir, 'input.txt'), `${lines.join('\n')}\n`);
  await binarize({ input: join(dir, 'input.txt'), outDir: join(dir, 'data') });
  return join(dir, 'data');
}
