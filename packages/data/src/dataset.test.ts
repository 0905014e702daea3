// TokenDataset over arrays and Blobs: batches equal to the ones the file-based dataset of the
// previous release gave (known answers), equal across sources, and bad input refused by name.
import { Random } from '@minigpt/random';
import { describe, expect, it } from 'vitest';
import { DataError, TokenDataset } from './index.js';

/** The split the known answers below were taken from (ids (i·7919) mod 97). */
const tokens = () => Uint16Array.from({ length: 1000 }, (_, i) => (i * 7919) % 97);
const options = { split: 'train', vocabSize: 97, source: 'ids' } as const;

/** The rejection (or throw) of `attempt`, which must be a DataError. */
async function dataError(attempt: () => unknown): Promise<DataError> {
  const error = await (async () => attempt())().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DataError);
  return error as DataError;
}

describe('TokenDataset.fromTokens', () => {
  it("samples the batches 0.x's TokenDataset.open sampled for the same generator state", () => {
    // Taken with TokenDataset.open on a directory holding these ids, before the split into
    // '@minigpt/data' and '@minigpt/data/node'.
    const dataset = TokenDataset.fromTokens(tokens(), options);
    const random = new Random(42);
    const offsets = [0, 1, 2].map(() => dataset.sampleBatch(random, 4, 8).offsets);
    expect(offsets).toEqual([
      [556, 617, 282, 62],
      [148, 970, 978, 544],
      [422, 758, 549, 578],
    ]);
    const batch = dataset.sampleBatch(random, 2, 5);
    expect(Array.from(batch.x)).toEqual([16, 78, 43, 8, 70, 19, 81, 46, 11, 73]);
    expect(Array.from(batch.y)).toEqual([78, 43, 8, 70, 35, 81, 46, 11, 73, 38]);
  });

  it('gives x as the windows at the offsets and y shifted by one, from a Uint32Array too', () => {
    const ids = Uint32Array.from(tokens());
    const dataset = TokenDataset.fromTokens(ids, options);
    expect(dataset.length).toBe(1000);
    expect(dataset).toMatchObject({ split: 'train', vocabSize: 97, source: 'ids' });
    const batch = dataset.sampleBatch(new Random(7), 3, 16);
    batch.offsets.forEach((start, row) => {
      expect(Array.from(batch.x.subarray(row * 16, row * 16 + 16))).toEqual(
        Array.from(ids.subarray(start, start + 16)),
      );
      expect(Array.from(batch.y.subarray(row * 16, row * 16 + 16))).toEqual(
        Array.from(ids.subarray(start + 1, start + 17)),
      );
    });
  });

  it('refuses an id at or above vocabSize, naming the source, the token and the rule', async () => {
    const ids = tokens();
    ids[500] = 97;
    const error = await dataError(() => TokenDataset.fromTokens(ids, options));
    expect(error.file).toBe('ids');
    expect(error.message).toBe(
      'ids: token 500 (byte offset 1000) has id 97, but the vocabSize given is 97 (ids 0…96): ' +
        'the tokens were made with another tokenizer. Encode the text with the tokenizer the model uses, or pass its vocabSize',
    );
    // A caller that checked the ids itself may skip the scan.
    expect(TokenDataset.fromTokens(ids, { ...options, checkIds: false }).length).toBe(1000);
    // A vocabulary that fills the dtype cannot be exceeded.
    expect(
      TokenDataset.fromTokens(Uint16Array.of(65535, 0), { ...options, vocabSize: 65536 }).length,
    ).toBe(2);
  });

  it('refuses a split too small for one block, and an unknown split', async () => {
    const dataset = TokenDataset.fromTokens(Uint16Array.of(1, 2, 3), options);
    let error = await dataError(() => dataset.sampleBatch(new Random(1), 1, 3));
    expect(error.message).toBe(
      'ids: holds 3 tokens, too few for one block of 3 (needs 4). Use a smaller blockSize or prepare more text',
    );
    error = await dataError(() =>
      TokenDataset.fromTokens(Uint16Array.of(1), { ...options, split: 'test' as 'train' }),
    );
    expect(error.message).toBe(`ids: unknown split "test"; use 'train' or 'val'`);
  });

  it('refuses arguments only a bug passes: not a typed array, a bad vocabSize or batch size', () => {
    expect(() => TokenDataset.fromTokens([1, 2] as unknown as Uint16Array, options)).toThrow(
      TypeError,
    );
    expect(() => TokenDataset.fromTokens(tokens(), { ...options, vocabSize: 0 })).toThrow(
      RangeError,
    );
    expect(() => TokenDataset.fromTokens(tokens(), { ...options, source: '' })).toThrow(TypeError);
    const dataset = TokenDataset.fromTokens(tokens(), options);
    expect(() => dataset.sampleBatch(new Random(1), 0, 4)).toThrow(RangeError);
    expect(() => dataset.readWindow(999, new Int32Array(2))).toThrow(RangeError);
  });

  it('keeps working after close: the array is the caller’s', () => {
    const dataset = TokenDataset.fromTokens(tokens(), options);
    dataset.close();
    expect(dataset.sampleBatch(new Random(42), 4, 8).offsets).toEqual([556, 617, 282, 62]);
  });
});

describe('TokenDataset.fromBlob', () => {
  /** A .bin file's bytes: little-endian ids, as nanoGPT writes them. */
  function littleEndian(ids: readonly number[], width: 2 | 4): Uint8Array {
    const bytes = new Uint8Array(ids.length * width);
    const view = new DataView(bytes.buffer);
    ids.forEach((id, i) => {
      if (width === 2) view.setUint16(i * 2, id, true);
      else view.setUint32(i * 4, id, true);
    });
    return bytes;
  }

  it('reads a uint16 or uint32 .bin Blob into the same batches as the array', async () => {
    const ids = Array.from(tokens());
    const fromArray = TokenDataset.fromTokens(tokens(), options);
    for (const [dtype, width] of [
      ['uint16', 2],
      ['uint32', 4],
    ] as const) {
      const blob = new Blob([littleEndian(ids, width)]);
      const dataset = await TokenDataset.fromBlob(blob, { ...options, dtype });
      expect(dataset.length).toBe(1000);
      const a = fromArray.sampleBatch(new Random(5), 3, 12);
      const b = dataset.sampleBatch(new Random(5), 3, 12);
      expect(Array.from(b.x)).toEqual(Array.from(a.x));
      expect(Array.from(b.y)).toEqual(Array.from(a.y));
    }
  });

  it('refuses a size that is not a whole number of ids, and an id out of range', async () => {
    const odd = new Blob([new Uint8Array(7)]);
    let error = await dataError(() =>
      TokenDataset.fromBlob(odd, { ...options, source: 'train.bin', dtype: 'uint32' }),
    );
    expect(error.message).toBe(
      'train.bin: is 7 bytes, not a whole number of uint32 ids (4 bytes each): it is truncated, or not a uint32 token file. Check the file and its dtype',
    );
    error = await dataError(() =>
      TokenDataset.fromBlob(new Blob([littleEndian([1, 2, 300, 4], 2)]), {
        ...options,
        source: 'val.bin',
        dtype: 'uint16',
      }),
    );
    expect(error.message).toMatch(
      /^val\.bin: token 2 \(byte offset 4\) has id 300, but the vocabSize given is 97/,
    );
    await expect(
      TokenDataset.fromBlob(new Blob([]), { ...options, dtype: 'int8' as 'uint16' }),
    ).rejects.toThrow(RangeError);
  });
});
