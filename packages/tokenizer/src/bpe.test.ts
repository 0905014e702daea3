import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BpeTokenizer,
  GPT2_SPLIT_PATTERN,
  GPT4_SPLIT_PATTERN,
  registerSplitPattern,
} from './index.js';
import { forEachPiece, compileSplitPattern } from './pretokenize.js';

const corpus =
  "It's the first citizen's turn: we'll speak, you've heard, they're 12345 strong.\n".repeat(30) +
  'The quick brown fox jumps over the lazy dog 42 times!\n\n   Indented line.\n'.repeat(30);

/** Reference trainer: recounts every pair before each merge (slow, obviously right). */
function naiveMerges(text: string, merges: number, pattern: string): Array<[number, number]> {
  const words: number[][] = [];
  forEachPiece(text, compileSplitPattern(pattern), (piece) =>
    words.push(Array.from(new TextEncoder().encode(piece))),
  );
  const result: Array<[number, number]> = [];
  for (let m = 0; m < merges; m++) {
    const counts = new Map<number, number>();
    for (const word of words) {
      for (let i = 0; i + 1 < word.length; i++) {
        const key = word[i]! * 16777216 + word[i + 1]!;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    let bestKey = -1;
    let bestCount = 1; // minFrequency 2
    for (const [key, count] of counts) {
      if (count > bestCount || (count === bestCount && key < bestKey)) {
        bestKey = key;
        bestCount = count;
      }
    }
    if (bestKey < 0) break;
    const pair: [number, number] = [Math.floor(bestKey / 16777216), bestKey % 16777216];
    result.push(pair);
    for (let w = 0; w < words.length; w++) {
      const word = words[w]!;
      const merged: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (word[i] === pair[0] && word[i + 1] === pair[1]) {
          merged.push(256 + m);
          i++;
        } else merged.push(word[i]!);
      }
      words[w] = merged;
    }
  }
  return result;
}

describe('BpeTokenizer', () => {
  it('learns exactly the merges of a full recount, with incremental counts', () => {
    for (const pattern of [GPT4_SPLIT_PATTERN, GPT2_SPLIT_PATTERN]) {
      const tokenizer = BpeTokenizer.train(corpus, 256 + 120, { pattern });
      expect(tokenizer.toJSON().merges).toEqual(naiveMerges(corpus, 120, pattern));
    }
  });

  it('compresses text it was trained on and stops early when pairs run out', () => {
    const tokenizer = BpeTokenizer.train(corpus, 600);
    expect(tokenizer.encode(corpus).length).toBeLessThan(
      new TextEncoder().encode(corpus).length / 3,
    );
    const tiny = BpeTokenizer.train('abab', 1000);
    expect(tiny.vocabSize).toBe(257); // only "ab" occurs twice
  });

  it('splits like GPT-4: contractions, 1–3 digit groups, punctuation, newlines', () => {
    const pieces: string[] = [];
    forEachPiece(
      "I'LL pay 123456 now!!\n\n  ok",
      compileSplitPattern(GPT4_SPLIT_PATTERN),
      (piece) => pieces.push(piece),
    );
    expect(pieces).toEqual(['I', "'LL", ' pay', ' ', '123', '456', ' now', '!!\n\n', ' ', ' ok']);
  });

  it('maps special tokens only when allowed, and never learns them', () => {
    const tokenizer = BpeTokenizer.train(`${corpus}<|endoftext|>`.repeat(3), 400, {
      specialTokens: ['<|endoftext|>'],
    });
    const endId = tokenizer.specialTokens.get('<|endoftext|>')!;
    expect(endId).toBe(tokenizer.vocabSize - 1);
    const text = 'hi<|endoftext|>there';
    expect(tokenizer.encode(text, { allowedSpecial: 'all' })).toContain(endId);
    expect(tokenizer.encode(text)).not.toContain(endId);
    expect(tokenizer.decode(tokenizer.encode(text, { allowedSpecial: 'all' }))).toBe(text);
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    expect(() => tokenizer.encode(text, { allowedSpecial: new Set(['<|nope|>']) })).toThrow(
      /not a special token/,
    );
  });

  it('refuses lone surrogates with their position instead of corrupting them', () => {
    const tokenizer = BpeTokenizer.train(corpus, 300);
    expect(() => tokenizer.encode('ab\uD800c')).toThrow(/lone surrogate U\+D800 at position 2/);
  });

  it('streams word-like text in pieces with the ids of the whole text', () => {
    const tokenizer = BpeTokenizer.train(corpus, 500);
    const word = fc.constantFrom('the', 'fox', "it's", '42', 'ünï', '日本', '!!', 'a');
    const separator = fc.constantFrom(' ', '\n', '  ', '\n\n', ' \n', '\t', '');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(word, separator), { maxLength: 80 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (parts, cutSeeds) => {
          const text = parts.map(([w, s]) => w + s).join('');
          const cuts = [...new Set(cutSeeds.map((seed) => seed % (text.length + 1)))].sort(
            (a, b) => a - b,
          );
          const stream = tokenizer.createStreamEncoder();
          const ids: number[] = [];
          let start = 0;
          for (const cut of [...cuts, text.length]) {
            ids.push(...stream.push(text.slice(start, cut)));
            start = cut;
          }
          ids.push(...stream.end());
          expect(ids).toEqual(tokenizer.encode(text));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects damaged JSON with the field at fault', () => {
    const json = BpeTokenizer.train(corpus, 300).toJSON();
    expect(() => BpeTokenizer.fromJSON({ ...json, merges: [[1, 999]] })).toThrow(
      /^bpe tokenizer JSON: "merges\[0\]" must be a pair \[first, second\] of integer ids below 256 .*got \[1,999\]/,
    );
    expect(() => BpeTokenizer.fromJSON({ ...json, pattern: '(' })).toThrow(
      /"pattern" "\(" is not a split pattern this process trusts/,
    );
    expect(() => registerSplitPattern('(')).toThrow(/not a valid regular expression/);
    expect(() => BpeTokenizer.fromJSON({ ...json, version: 7 })).toThrow(
      /unsupported format version 7/,
    );
    expect(() => BpeTokenizer.train('x', 100)).toThrow(/vocabSize must be an integer from 256/);
  });
});
