import { readdirSync, rmSync, truncateSync, writeFileSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Random } from '@minigpt/random';
import { CharTokenizer } from '@minigpt/tokenizer';
import { describe, expect, it } from 'vitest';
import { DataError } from '../index.js';
import { readTokens, useTempDir, writeSplits, writeTokenAt } from '../test-helpers.js';
import {
  binarize,
  openPreparedData,
  openTokenDataset,
  readDataTokenizer,
  readMeta,
} from './index.js';

const tempDir = useTempDir();

async function prepared(
  text = 'The quick brown fox jumps over the lazy dog.\n'.repeat(50),
): Promise<string> {
  const dir = tempDir();
  writeFileSync(join(dir, 'input.txt'), text);
  await binarize({ input: join(dir, 'input.txt'), outDir: join(dir, 'data') });
  return join(dir, 'data');
}

describe('openTokenDataset', () => {
  it('samples (B, T) batches where y is x shifted by one, from the split file', async () => {
    const dir = await prepared();
    const dataset = await openTokenDataset(dir, 'train');
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
    const dataset = await openTokenDataset(await prepared(), 'train');
    const run = (seed: number) => {
      const random = new Random(seed);
      return [0, 1, 2].map(() => Array.from(dataset.sampleBatch(random, 3, 16).x));
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });

  it('reads the same batches from disk as from memory', async () => {
    const dir = await prepared();
    const inMemory = await openTokenDataset(dir, 'val', { mode: 'memory' });
    const fromFile = await openTokenDataset(dir, 'val', { mode: 'file' });
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
    const dataset = await openTokenDataset(
      await prepared('abcdefghijklmnopqrstuvwxyz'.repeat(2)),
      'train',
    );
    const offsets = new Set<number>();
    const random = new Random(2);
    for (let i = 0; i < 400; i++) offsets.add(dataset.sampleBatch(random, 1, 4).offsets[0]!);
    expect(Math.max(...offsets)).toBe(dataset.length - 5);
    expect(Math.min(...offsets)).toBe(0);
  });

  it('names the split, its file and its vocabulary', async () => {
    const dir = await prepared();
    const dataset = await openTokenDataset(dir, 'val');
    expect(dataset.split).toBe('val');
    expect(dataset.source).toBe(join(dir, 'val.bin'));
    expect(dataset.vocabSize).toBe((await readMeta(dir)).vocabSize);
  });

  it('reads meta.json fields as numbers and strings it checked', async () => {
    const meta = await readMeta(await prepared());
    expect(meta.dtype).toBe('uint16');
    expect(meta.source.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('explains a split too small for the block, a truncated file, and missing or newer data', async () => {
    const dir = await prepared();
    const dataset = await openTokenDataset(dir, 'val');
    expect(() => dataset.sampleBatch(new Random(1), 1, dataset.length)).toThrow(
      new RegExp(
        `val\\.bin: holds ${dataset.length} tokens, too few for one block of ${dataset.length}`,
      ),
    );
    truncateSync(join(dir, 'train.bin'), 101);
    await expect(openTokenDataset(dir, 'train')).rejects.toThrow(
      /train\.bin: has 101 bytes but meta\.json says .*truncated/,
    );
    const metaPath = join(dir, 'meta.json');
    writeFileSync(
      metaPath,
      JSON.stringify({ ...JSON.parse(readFileSync(metaPath, 'utf8')), formatVersion: 2 }),
    );
    await expect(openTokenDataset(dir, 'val')).rejects.toThrow(
      /format version 2.*Upgrade @minigpt\/data/,
    );
    const error = await openTokenDataset(tempDir(), 'train').catch((caught: unknown) => caught);
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

describe('openTokenDataset checks every id against meta.json', () => {
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
      let error = await dataError(openTokenDataset(dir, 'train', { mode }));
      expect(error.file).toBe(path);
      expect(error.message).toContain(
        `${path}: token 37 (byte offset 74) has id ${vocabSize}, but meta.json's vocabSize is ${vocabSize}`,
      );
      expect(error.message).toMatch(/Prepare it again \(binarize with force: true\)$/);
      expect(error.remedy).toBe('prepare-again');

      writeTokenAt(path, 37, original[37]!);
      error = await dataError(openTokenDataset(dir, 'train', { mode }));
      expect(error.message).toContain(
        `${path}: token ${last} (byte offset ${last * 2}) has id 65535`,
      );

      // A caller that checked the file itself may skip the scan.
      const unchecked = await openTokenDataset(dir, 'train', { mode, checkIds: false });
      unchecked.close();
      writeTokenAt(path, last, original[last]!);
      const fine = await openTokenDataset(dir, 'train', { mode });
      fine.close();
    });

    it(`checks uint32 splits, and skips a vocabulary that fills the dtype (${mode})`, async () => {
      const dir = tempDir();
      const train = Array.from({ length: 50 }, (_, i) => i % 100);
      train[49] = 100;
      writeSplits(dir, 'uint32', 100, train, [1, 2, 3]);
      const error = await dataError(openTokenDataset(dir, 'train', { mode }));
      expect(error.message).toContain(
        `${join(dir, 'train.bin')}: token 49 (byte offset 196) has id 100`,
      );
      (await openTokenDataset(dir, 'val', { mode })).close();

      writeSplits(dir, 'uint16', 65536, [0, 65535, 7], [65535, 1]);
      (await openTokenDataset(dir, 'train', { mode })).close();
    });
  }
});

describe('readDataTokenizer checks vocab.json against meta.json', () => {
  it('loads the saved tokenizer', async () => {
    const dir = await prepared('hello there\n'.repeat(10));
    const tokenizer = await readDataTokenizer(dir, await readMeta(dir));
    expect(tokenizer.decode(tokenizer.encode('hello'))).toBe('hello');
  });

  it('refuses a tokenizer of another size or type, bad JSON, and a missing file', async () => {
    const dir = await prepared();
    const vocabPath = join(dir, 'vocab.json');
    const meta = await readMeta(dir);
    const other = CharTokenizer.fromText('abc');
    writeFileSync(vocabPath, JSON.stringify(other.toJSON()));
    let error = await dataError(readDataTokenizer(dir, meta));
    expect(error.file).toBe(vocabPath);
    expect(error.message).toContain(
      `${vocabPath}: holds a tokenizer with vocabSize ${other.vocabSize} but meta.json says ${meta.vocabSize}`,
    );

    writeFileSync(vocabPath, '{"type": "char", ');
    error = await dataError(readDataTokenizer(dir, meta));
    expect(error.message).toMatch(/vocab\.json: is not valid JSON \(.*\)\. Prepare it again/);

    const metaPath = join(dir, 'meta.json');
    const metaJson = JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(metaPath, JSON.stringify({ ...metaJson, tokenizer: 'bpe' }));
    writeFileSync(vocabPath, JSON.stringify(CharTokenizer.fromText('x').toJSON()));
    const bpeMeta = await readMeta(dir);
    error = await dataError(readDataTokenizer(dir, bpeMeta));
    expect(error.message).toContain(
      `${vocabPath}: holds a "char" tokenizer but meta.json says "bpe"`,
    );

    rmSync(vocabPath);
    error = await dataError(readDataTokenizer(dir, bpeMeta));
    expect(error.message).toContain(`${vocabPath}: not found`);
  });
});

describe('openPreparedData', () => {
  it('opens meta, both splits and the tokenizer, as the files hold them', async () => {
    const text = 'hello there, general kenobi\n'.repeat(20);
    const dir = await prepared(text);
    const data = await openPreparedData(dir);
    try {
      expect(data.location).toBe(dir);
      expect(data.meta).toEqual(await readMeta(dir));
      expect(data.train.length).toBe(data.meta.trainTokens);
      expect(data.val.length).toBe(data.meta.valTokens);
      expect(data.train.source).toBe(join(dir, 'train.bin'));
      expect(data.val.split).toBe('val');
      const window = new Int32Array(data.val.length);
      data.val.readWindow(0, window);
      expect(Array.from(window)).toEqual(readTokens(join(dir, 'val.bin')));
      expect(data.tokenizer.decode(window)).toBe(text.slice(data.meta.trainCharacters));
    } finally {
      data.train.close();
      data.val.close();
    }
  });

  it('resolves a relative directory and reads splits from disk in file mode', async () => {
    const dir = await prepared();
    const data = await openPreparedData(relative(process.cwd(), dir), { mode: 'file' });
    expect(data.location).toBe(dir);
    const batch = data.train.sampleBatch(new Random(3), 2, 4);
    data.train.close();
    data.val.close();
    expect(() => data.train.sampleBatch(new Random(3), 2, 4)).toThrow(/train\.bin: is closed/);
    expect(batch.x.length).toBe(8);
  });

  it('refuses a damaged val split or vocab.json, closing the splits it opened', async () => {
    const dir = await prepared();
    truncateSync(join(dir, 'val.bin'), 3);
    let error = await dataError(openPreparedData(dir, { mode: 'file' }));
    expect(error.message).toMatch(/val\.bin: has 3 bytes but meta\.json says/);

    // Both splits are open (file mode holds a descriptor each) when vocab.json is refused.
    const other = await prepared();
    writeFileSync(join(other, 'vocab.json'), JSON.stringify(CharTokenizer.fromText('ab').toJSON()));
    const openDescriptors = () => readdirSync('/proc/self/fd').length;
    const before = openDescriptors();
    error = await dataError(openPreparedData(other, { mode: 'file' }));
    expect(error.message).toMatch(/vocab\.json: holds a tokenizer with vocabSize 2/);
    expect(openDescriptors()).toBe(before);

    rmSync(join(other, 'meta.json'));
    error = await dataError(openPreparedData(other));
    expect(error.remedy).toBe('prepare');
  });
});
