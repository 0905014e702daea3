// parseMeta on its own (no file): it names the source it is given. The hostile-file cases run
// through readMeta in ./node/meta.test.ts, which parses with it.
import { describe, expect, it } from 'vitest';
import { DataError, parseMeta } from './index.js';
import { metaFor } from './test-helpers.js';

describe('parseMeta', () => {
  it('returns the checked meta, without fields it does not know', () => {
    const json = { ...metaFor('uint16', 65, 900, 100), later: true };
    const meta = parseMeta(json, 'upload/meta.json');
    expect(meta.vocabSize).toBe(65);
    expect(meta).not.toHaveProperty('later');
  });

  it('names the source and the broken rule', () => {
    const cases: Array<[unknown, string]> = [
      [
        { ...metaFor('uint16', 70000, 4, 2) },
        '"vocabSize": must be ≤ 65536 when dtype is "uint16"',
      ],
      [{ ...metaFor('uint16', 10, 4, 2), formatVersion: 2 }, 'has format version 2;'],
      [{ format: 'other' }, 'is not a minigpt data meta file'],
      [[], 'expected object'],
    ];
    for (const [json, problem] of cases) {
      const error = (() => {
        try {
          parseMeta(json, 'upload/meta.json');
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(DataError);
      expect((error as DataError).file).toBe('upload/meta.json');
      expect((error as Error).message).toContain(`upload/meta.json: `);
      expect((error as Error).message).toContain(problem);
    }
  });
});
