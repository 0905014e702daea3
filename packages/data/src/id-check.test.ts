// The id scan on its own: the unrolled maximum against a plain loop at every tail length, and
// the file scan across chunk boundaries (tiny chunks), a short file and an empty split.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from './errors.js';
import { findBadTokenId, findBadTokenIdInFile, idsCannotReach, maxId } from './id-check.js';
import { useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

function file(ids: readonly number[], dtype: 'uint16' | 'uint32'): string {
  const path = join(tempDir(), 'split.bin');
  const array = dtype === 'uint16' ? Uint16Array.from(ids) : Uint32Array.from(ids);
  writeFileSync(path, Buffer.from(array.buffer));
  return path;
}

describe('maxId', () => {
  it('equals a plain loop for every length and start, whichever lane holds the maximum', () => {
    const tokens = Uint32Array.from({ length: 40 }, (_, i) => (i * 7919) % 101);
    for (let start = 0; start < 9; start++) {
      for (let end = start; end <= tokens.length; end++) {
        let expected = 0;
        for (let i = start; i < end; i++) expected = Math.max(expected, tokens[i]!);
        expect(maxId(tokens, start, end), `[${start}, ${end})`).toBe(expected);
      }
    }
  });
});

describe('findBadTokenId', () => {
  it('finds the first id at or above the vocabulary size, or none', () => {
    const tokens = new Uint16Array(5_000_000).fill(3);
    expect(findBadTokenId(tokens, 4)).toBeUndefined();
    tokens[4_999_999] = 4; // the last token, in the second chunk of the scan
    tokens[4_200_000] = 9;
    expect(findBadTokenId(tokens, 4)).toEqual({ index: 4_200_000, id: 9 });
    expect(findBadTokenId(tokens, 10)).toBeUndefined();
    expect(findBadTokenId(new Uint32Array(0), 1)).toBeUndefined();
  });

  it('skips only vocabularies that fill the dtype', () => {
    expect(idsCannotReach('uint16', 65536)).toBe(true);
    expect(idsCannotReach('uint16', 65535)).toBe(false);
    expect(idsCannotReach('uint32', 2 ** 32)).toBe(true);
    expect(idsCannotReach('uint32', 2 ** 32 - 1)).toBe(false);
  });
});

describe('findBadTokenIdInFile', () => {
  const ids = Array.from({ length: 23 }, (_, i) => i % 5);

  for (const dtype of ['uint16', 'uint32'] as const) {
    it(`finds the offender in any chunk, also the last partial one (${dtype})`, async () => {
      const big = dtype === 'uint16' ? 65535 : 2 ** 32 - 1;
      for (const chunkBytes of [1, 7, 8, 12, 1 << 20]) {
        for (const index of [0, 3, 4, 11, 22]) {
          const bad = ids.slice();
          bad[index] = big;
          bad[22] = index === 22 ? big : 5; // a second offender after the first
          const found = await findBadTokenIdInFile(file(bad, dtype), dtype, 5, 23, chunkBytes);
          expect(found, `chunk ${chunkBytes}, index ${index}`).toEqual(
            index === 22 ? { index: 22, id: big } : { index, id: big },
          );
        }
        expect(
          await findBadTokenIdInFile(file(ids, dtype), dtype, 5, 23, chunkBytes),
        ).toBeUndefined();
      }
    });
  }

  it('scans an empty split, and refuses a file shorter than its token count', async () => {
    expect(await findBadTokenIdInFile(file([], 'uint16'), 'uint16', 5, 0)).toBeUndefined();
    const path = file(ids, 'uint16');
    const error = await findBadTokenIdInFile(path, 'uint16', 5, 30, 8).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toContain(`${path}: ended at byte 46`);
  });
});
