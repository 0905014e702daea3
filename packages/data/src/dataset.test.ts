import { truncateSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Random } from '@minigpt/random';
import { describe, expect, it } from 'vitest';
import { DataError, TokenDataset, binarize } from './index.js';
import { readTokens, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

async function prepared(
  text = 'The quick brown fox jumps over the lazy dog.\n'.repeat(50),
): Promise<string> {
  const dir = tempDir();
  writeFileSync(join(dir, 'input.txt'), text);
  await binarize({ input: join(dir, 'input.txt'), outDir: join(dir, 'data') });
  return join(dir, 'data');
}

describe('TokenDataset', () => {
  it('samples (B, T) batches where y is x shifted by one, from the split file', async () => {
    const dir = await prepared();
    const dataset = await TokenDataset.open(dir, 'train');
    const tokens = readTokens(join(dir, 'train.bin'));
    expect(dataset.length).toBe(tokens.length);
    const batch = dataset.sampleBatch(new Random(1), 4, 8);
    expect(batch.x.length).toBe(32);
    expect(batch.y.length).toBe(32);
    batch.offsets.forEach((start, row) => {
      expect(Array.from(batch.x.subarray(row * 8, row * 8 + 8))).toEqual(
        tokens.slice(start, start + 8),
      );
      expect(Array.from(batch.y.subarray(row * 8, row * 8 + 8))).toEqual(
        tokens.slice(start + 1, start + 9),
      );
    });
  });

  it('gives the same batches for the same seed, other batches for another', async () => {
    const dataset = await TokenDataset.open(await prepared(), 'train');
    const run = (seed: number) => {
      const random = new Random(seed);
      return [0, 1, 2].map(() => Array.from(dataset.sampleBatch(random, 3, 16).x));
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });

  it('reads the same batches from disk as from memory', async () => {
    const dir = await prepared();
    const inMemory = await TokenDataset.open(dir, 'val', { mode: 'memory' });
    const fromFile = await TokenDataset.open(dir, 'val', { mode: 'file' });
    try {
      const a = inMemory.sampleBatch(new Random(9), 5, 10);
      const b = fromFile.sampleBatch(new Random(9), 5, 10);
      expect(Array.from(b.x)).toEqual(Array.from(a.x));
      expect(Array.from(b.y)).toEqual(Array.from(a.y));
    } finally {
      fromFile.close();
    }
  });

  it('can reach every valid offset, including the last block', async () => {
    const dataset = await TokenDataset.open(
      await prepared('abcdefghijklmnopqrstuvwxyz'.repeat(2)),
      'train',
    );
    const offsets = new Set<number>();
    const random = new Random(2);
    for (let i = 0; i < 400; i++) offsets.add(dataset.sampleBatch(random, 1, 4).offsets[0]!);
    expect(Math.max(...offsets)).toBe(dataset.length - 5);
    expect(Math.min(...offsets)).toBe(0);
  });

  it('loads the saved tokenizer', async () => {
    const dataset = await TokenDataset.open(await prepared('hello there\n'.repeat(10)), 'train');
    const tokenizer = await dataset.tokenizer();
    expect(tokenizer.decode(tokenizer.encode('hello'))).toBe('hello');
  });

  it('explains a split too small for the block, a truncated file, and missing or newer data', async () => {
    const dir = await prepared();
    const dataset = await TokenDataset.open(dir, 'val');
    expect(() => dataset.sampleBatch(new Random(1), 1, dataset.length)).toThrow(
      new RegExp(
        `val\\.bin: holds ${dataset.length} tokens, too few for one block of ${dataset.length}`,
      ),
    );
    truncateSync(join(dir, 'train.bin'), 101);
    await expect(TokenDataset.open(dir, 'train')).rejects.toThrow(
      /train\.bin: has 101 bytes but meta\.json says .*truncated/,
    );
    const metaPath = join(dir, 'meta.json');
    writeFileSync(
      metaPath,
      JSON.stringify({ ...JSON.parse(readFileSync(metaPath, 'utf8')), formatVersion: 2 }),
    );
    await expect(TokenDataset.open(dir, 'val')).rejects.toThrow(
      /format version 2.*Upgrade @minigpt\/data/,
    );
    const error = await TokenDataset.open(tempDir(), 'train').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toMatch(/meta\.json: not found.*minigpt prepare/);
  });
});
