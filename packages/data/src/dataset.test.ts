import { rmSync, truncateSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Random } from '@minigpt/random';
import { CharTokenizer } from '@minigpt/tokenizer';
import { describe, expect, it } from 'vitest';
import { DataError, TokenDataset, binarize } from './index.js';
import { readTokens, useTempDir, writeSplits, writeTokenAt } from './test-helpers.js';

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

  it('reads meta.json fields as numbers and strings it checked', async () => {
    const dataset = await TokenDataset.open(await prepared(), 'train');
    expect(dataset.meta.dtype).toBe('uint16');
    expect(dataset.meta.source.sha256).toMatch(/^[0-9a-f]{64}$/);
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
    expect((error as Error).message).toMatch(/meta\.json: not found.*Prepare it first/);
    expect((error as DataError).remedy).toBe('prepare');
  });
});

/** The rejection of `promise`, which must be a DataError. */
async function dataError(promise: Promise<unknown>): Promise<DataError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DataError);
  return error as DataError;
}

describe('TokenDataset.open checks every id against meta.json', () => {
  for (const mode of ['memory', 'file'] as const) {
    it(`refuses an out-of-range input id and a last token that is only a target (${mode})`, async () => {
      const dir = await prepared();
      const path = join(dir, 'train.bin');
      const { vocabSize } = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as {
        vocabSize: number;
      };
      const last = readTokens(path).length - 1;
      const original = readTokens(path);

      writeTokenAt(path, 37, vocabSize);
      writeTokenAt(path, last, 65535); // also wrong, but after the first
      let error = await dataError(TokenDataset.open(dir, 'train', { mode }));
      expect(error.file).toBe(path);
      expect(error.message).toContain(
        `${path}: token 37 (byte offset 74) has id ${vocabSize}, but meta.json's vocabSize is ${vocabSize}`,
      );
      expect(error.message).toMatch(/Prepare it again \(binarize with force: true\)$/);
      expect(error.remedy).toBe('prepare-again');

      writeTokenAt(path, 37, original[37]!);
      error = await dataError(TokenDataset.open(dir, 'train', { mode }));
      expect(error.message).toContain(
        `${path}: token ${last} (byte offset ${last * 2}) has id 65535`,
      );

      // A caller that checked the file itself may skip the scan.
      const unchecked = await TokenDataset.open(dir, 'train', { mode, checkIds: false });
      unchecked.close();
      writeTokenAt(path, last, original[last]!);
      const fine = await TokenDataset.open(dir, 'train', { mode });
      fine.close();
    });

    it(`checks uint32 splits, and skips a vocabulary that fills the dtype (${mode})`, async () => {
      const dir = tempDir();
      const train = Array.from({ length: 50 }, (_, i) => i % 100);
      train[49] = 100;
      writeSplits(dir, 'uint32', 100, train, [1, 2, 3]);
      const error = await dataError(TokenDataset.open(dir, 'train', { mode }));
      expect(error.message).toContain(
        `${join(dir, 'train.bin')}: token 49 (byte offset 196) has id 100`,
      );
      (await TokenDataset.open(dir, 'val', { mode })).close();

      writeSplits(dir, 'uint16', 65536, [0, 65535, 7], [65535, 1]);
      (await TokenDataset.open(dir, 'train', { mode })).close();
    });
  }
});

describe('TokenDataset.tokenizer checks vocab.json against meta.json', () => {
  it('refuses a tokenizer of another size or type, bad JSON, and a missing file', async () => {
    const dir = await prepared();
    const vocabPath = join(dir, 'vocab.json');
    const dataset = await TokenDataset.open(dir, 'val');
    const other = CharTokenizer.fromText('abc');
    writeFileSync(vocabPath, JSON.stringify(other.toJSON()));
    let error = await dataError(dataset.tokenizer());
    expect(error.file).toBe(vocabPath);
    expect(error.message).toContain(
      `${vocabPath}: holds a tokenizer with vocabSize ${other.vocabSize} but meta.json says ${dataset.meta.vocabSize}`,
    );

    writeFileSync(vocabPath, '{"type": "char", ');
    error = await dataError(dataset.tokenizer());
    expect(error.message).toMatch(/vocab\.json: is not valid JSON \(.*\)\. Prepare it again/);

    const metaPath = join(dir, 'meta.json');
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(metaPath, JSON.stringify({ ...meta, tokenizer: 'bpe' }));
    writeFileSync(vocabPath, JSON.stringify(CharTokenizer.fromText('x').toJSON()));
    const bpeMeta = await TokenDataset.open(dir, 'val');
    error = await dataError(bpeMeta.tokenizer());
    expect(error.message).toContain(
      `${vocabPath}: holds a "char" tokenizer but meta.json says "bpe"`,
    );

    rmSync(vocabPath);
    error = await dataError(bpeMeta.tokenizer());
    expect(error.message).toContain(`${vocabPath}: not found`);
  });
});
