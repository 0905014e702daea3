// The id scan on its own: the unrolled maximum against a plain loop at every tail length, and
// the first offender in a split held in memory.
import { describe, expect, it } from 'vitest';
import { badTokenIdError, findBadTokenId, idsCannotReach, maxId } from './id-check.js';

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

describe('badTokenIdError', () => {
  it("words meta.json's limit and a caller's limit each with its own fix", () => {
    const bad = { index: 3, id: 70 };
    const fromMeta = badTokenIdError('/d/train.bin', 'uint16', 65, bad);
    expect(fromMeta.message).toBe(
      "/d/train.bin: token 3 (byte offset 6) has id 70, but meta.json's vocabSize is 65 (ids 0…64): " +
        'the file is damaged or was made with another tokenizer. Prepare it again (binarize with force: true)',
    );
    expect(fromMeta.remedy).toBe('prepare-again');
    const given = badTokenIdError('ids.bin', 'uint32', 65, bad, 'given');
    expect(given.message).toBe(
      'ids.bin: token 3 (byte offset 12) has id 70, but the vocabSize given is 65 (ids 0…64): ' +
        'the tokens were made with another tokenizer. Encode the text with the tokenizer the model uses, or pass its vocabSize',
    );
    expect(given.remedy).toBeUndefined();
  });
});
