// The file scan across chunk boundaries (tiny chunks), a short file and an empty split.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../errors.js';
import { useTempDir } from '../test-helpers.js';
import { findBadTokenIdInFile } from './file-id-check.js';

const tempDir = useTempDir();

function file(ids: readonly number[], dtype: 'uint16' | 'uint32'): string {
  const path = join(tempDir(), 'split.bin');
  const array = dtype === 'uint16' ? Uint16Array.from(ids) : Uint32Array.from(ids);
  writeFileSync(path, Buffer.from(array.buffer));
  return path;
}

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
