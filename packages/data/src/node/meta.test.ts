// Hostile meta.json files, one broken rule each: every one is refused with a DataError naming
// meta.json, the field and the value found, before any token file is read.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../index.js';
import { metaFor, useTempDir, writeSplits } from '../test-helpers.js';
import { openTokenDataset, readMeta } from './index.js';

const tempDir = useTempDir();

/** A valid data directory whose meta.json is then replaced by `text`. */
function dirWithMeta(text: string): string {
  const dir = tempDir();
  writeSplits(dir, 'uint16', 10, [1, 2, 3, 4], [5, 6]);
  writeFileSync(join(dir, 'meta.json'), text);
  return dir;
}

const valid = metaFor('uint16', 10, 4, 2);
const withField = (field: string, value: unknown) => JSON.stringify({ ...valid, [field]: value });
const withSource = (field: string, value: unknown) =>
  JSON.stringify({ ...valid, source: { ...(valid['source'] as object), [field]: value } });
const without = (field: string) => {
  const copy: Record<string, unknown> = { ...valid };
  delete copy[field];
  return JSON.stringify(copy);
};

/** [rule, meta.json text, what the message must say after "meta.json: "]. */
const hostile: Array<[string, string, string | RegExp]> = [
  ['not JSON', '{"format": "minigpt-data",', /^is not valid JSON \(.*\)\. Prepare it again/],
  ['an array', '[]', /^"?the file"?: .*expected object/],
  ['null', 'null', /^"?the file"?: .*expected object/],
  ['another format', withField('format', 'nanogpt'), 'is not a minigpt data meta file'],
  ['no format', without('format'), 'is not a minigpt data meta file'],
  ['a newer version', withField('formatVersion', 2), /format version 2;.*Upgrade @minigpt\/data/],
  ['an older version', withField('formatVersion', 0), /format version 0;.*Prepare it again/],
  ['a version as text', withField('formatVersion', '1'), /format version "1";.*Prepare it again/],
  ['an unknown dtype', withField('dtype', 'int8'), '"dtype": '],
  ['no dtype', without('dtype'), /"dtype": .*\(missing\)/],
  ['vocabSize 0', withField('vocabSize', 0), '"vocabSize": must be at least 1, got 0'],
  ['vocabSize negative', withField('vocabSize', -5), '"vocabSize": must be at least 1, got -5'],
  ['vocabSize fractional', withField('vocabSize', 9.5), /"vocabSize": .*got 9\.5/],
  ['vocabSize as text', withField('vocabSize', '10'), /"vocabSize": .*got "10"/],
  [
    'vocabSize too big for uint16',
    withField('vocabSize', 65537),
    '"vocabSize": must be ≤ 65536 when dtype is "uint16" (ids 0…65535), got 65537',
  ],
  [
    'vocabSize too big for uint32',
    JSON.stringify({ ...valid, dtype: 'uint32', vocabSize: 2 ** 32 + 1 }),
    '"vocabSize": must be ≤ 4294967296 (uint32 ids), got 4294967297',
  ],
  ['no vocabSize', without('vocabSize'), /"vocabSize": .*\(missing\)/],
  ['no tokenizer', without('tokenizer'), /"tokenizer": .*\(missing\)/],
  ['an empty tokenizer', withField('tokenizer', ''), '"tokenizer": must name a tokenizer type'],
  [
    'a huge tokenizer name',
    withField('tokenizer', 'x'.repeat(10_000)),
    /"tokenizer": must be ≤ 100 characters, got "x+…\. Prepare it again/,
  ],
  [
    'trainTokens negative',
    withField('trainTokens', -1),
    '"trainTokens": must be a whole number ≥ 0, got -1',
  ],
  [
    'trainTokens unsafe',
    withField('trainTokens', 2 ** 53),
    /"trainTokens": .*got 9007199254740992/,
  ],
  [
    'trainTokens infinite',
    // 1e400 parses as Infinity (shown as Infinity, or null by a JSON-based preview).
    withField('trainTokens', 0).replace('"trainTokens":0', '"trainTokens":1e400'),
    /"trainTokens": .*, got (Infinity|null)\./,
  ],
  ['valTokens fractional', withField('valTokens', 2.5), /"valTokens": .*got 2\.5/],
  ['no valTokens', without('valTokens'), /"valTokens": .*\(missing\)/],
  [
    'trainCharacters as text',
    withField('trainCharacters', 'many'),
    /"trainCharacters": .*got "many"/,
  ],
  [
    'valCharacters negative',
    withField('valCharacters', -3),
    '"valCharacters": must be a whole number ≥ 0, got -3',
  ],
  [
    'valFraction 0',
    withField('valFraction', 0),
    '"valFraction": must be between 0 and 1 (exclusive), got 0',
  ],
  [
    'valFraction 1',
    withField('valFraction', 1),
    '"valFraction": must be between 0 and 1 (exclusive), got 1',
  ],
  ['valFraction as text', withField('valFraction', '0.1'), /"valFraction": .*got "0\.1"/],
  ['unknown newlines', withField('newlines', 'crlf'), /"newlines": .*got "crlf"/],
  ['no source', without('source'), /"source": .*\(missing\)/],
  ['source as text', withField('source', 'input.txt'), /"source": .*got "input\.txt"/],
  [
    'an empty source file',
    withSource('file', ''),
    '"source.file": must name the input file, got ""',
  ],
  [
    'source bytes negative',
    withSource('bytes', -1),
    '"source.bytes": must be a whole number ≥ 0, got -1',
  ],
  [
    'a short sha256',
    withSource('sha256', 'abc'),
    '"source.sha256": must be 64 lowercase hex digits, got "abc"',
  ],
  [
    'a sha256 with non-hex',
    withSource('sha256', 'g'.repeat(64)),
    '"source.sha256": must be 64 lowercase hex digits',
  ],
  [
    'an oversized file',
    JSON.stringify({ ...valid, padding: ' '.repeat(2 ** 21) }),
    /^is \d+ bytes, far more than a meta\.json holds/,
  ],
];

describe('readMeta refuses a hostile meta.json', () => {
  for (const [rule, text, expected] of hostile) {
    it(rule, async () => {
      const dir = dirWithMeta(text);
      const path = join(dir, 'meta.json');
      for (const attempt of [() => readMeta(dir), () => openTokenDataset(dir, 'train')]) {
        const error = await attempt().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).toBeInstanceOf(DataError);
        expect((error as DataError).file).toBe(path);
        const message = (error as Error).message;
        expect(message.startsWith(`${path}: `)).toBe(true);
        const problem = message.slice(path.length + 2);
        if (typeof expected === 'string') expect(problem).toContain(expected);
        else expect(problem).toMatch(expected);
        expect(message.length).toBeLessThan(400);
      }
    });
  }
});

describe('readMeta accepts', () => {
  it('the bounds themselves, and ignores fields it does not know', async () => {
    const edge = {
      ...valid,
      vocabSize: 65536,
      trainTokens: 4,
      valTokens: 2,
      trainCharacters: Number.MAX_SAFE_INTEGER,
      valCharacters: 0,
      valFraction: 0.999,
      newlines: 'keep',
      addedLater: { anything: true },
    };
    const meta = await readMeta(dirWithMeta(JSON.stringify(edge)));
    expect(meta.vocabSize).toBe(65536);
    expect(meta).not.toHaveProperty('addedLater');
    const uint32 = await readMeta(
      dirWithMeta(JSON.stringify({ ...valid, dtype: 'uint32', vocabSize: 2 ** 32 })),
    );
    expect(uint32.vocabSize).toBe(2 ** 32);
  });
});
