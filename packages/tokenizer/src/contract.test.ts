// One suite, every tokenizer: whatever a kind does inside, these must hold for all of them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BpeTokenizer,
  CharTokenizer,
  TokenizerError,
  tokenizerFromJSON,
  type Tokenizer,
} from './index.js';

interface Kind {
  name: string;
  /** A tokenizer able to encode `text` (a char vocab must have seen its characters). */
  make(text: string): Tokenizer;
}

const trainingText =
  'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n'.repeat(
    20,
  ) + 'Ünïcödé — 日本語のテキスト, emoji 🌍🚀, and numbers 12345.\n';

const kinds: Kind[] = [
  { name: 'char', make: (text) => CharTokenizer.fromText(trainingText + text) },
  {
    name: 'bpe',
    make: () => BpeTokenizer.train(trainingText, 400, { specialTokens: ['<|endoftext|>'] }),
  },
];

const samples = {
  ascii: 'Before we proceed any further, hear me speak.',
  unicode: 'Ünïcödé — 日本語のテキスト, emoji 🌍🚀 👨‍👩‍👧 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  empty: '',
  long: 'All:\nSpeak, speak.\n'.repeat(5000),
  whitespace: '  \t\n\n   \r\n x  ',
  byteOrderMark: '\uFEFFstarts with a BOM',
};

for (const kind of kinds) {
  describe(`Tokenizer contract: ${kind.name}`, () => {
    for (const [name, text] of Object.entries(samples)) {
      it(`round-trips ${name} text exactly`, () => {
        const tokenizer = kind.make(text);
        const ids = tokenizer.encode(text);
        expect(tokenizer.decode(ids)).toBe(text);
        for (const id of ids)
          expect(id >= 0 && id < tokenizer.vocabSize && Number.isInteger(id)).toBe(true);
      });
    }

    it('encodes the empty string to no ids', () => {
      expect(kind.make('').encode('')).toEqual([]);
    });

    it('round-trips random strings (property)', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
          const tokenizer = kind.make(text);
          expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
        }),
        { numRuns: 300 },
      );
    });

    it('gives identical ids after JSON save → load', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (text) => {
          const tokenizer = kind.make(text);
          const reloaded = tokenizerFromJSON(JSON.parse(JSON.stringify(tokenizer.toJSON())));
          expect(reloaded.type).toBe(tokenizer.type);
          expect(reloaded.vocabSize).toBe(tokenizer.vocabSize);
          expect(reloaded.encode(text)).toEqual(tokenizer.encode(text));
          expect(reloaded.toJSON()).toEqual(tokenizer.toJSON());
        }),
        { numRuns: 100 },
      );
    });

    it('streams: pieces at any boundary give the ids of the whole text', () => {
      fc.assert(
        fc.property(
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          (text, cutSeeds) => {
            const tokenizer = kind.make(text);
            const stream = tokenizer.createStreamEncoder!();
            const cuts = [...new Set(cutSeeds.map((seed) => seed % (text.length + 1)))].sort(
              (a, b) => a - b,
            );
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
        { numRuns: 300 },
      );
    });

    it('rejects ids outside the vocabulary', () => {
      const tokenizer = kind.make('abc');
      expect(() => tokenizer.decode([tokenizer.vocabSize])).toThrow(/out of range/);
      expect(() => tokenizer.decode([-1])).toThrow(/out of range/);
      for (const id of [1.5, Number.NaN, Infinity, -Infinity, 2 ** 53, -0.5]) {
        expect(() => tokenizer.decode([0, id])).toThrow(TokenizerError);
        expect(() => tokenizer.decode([0, id])).toThrow(/at index 1 is out of range/);
      }
    });
  });
}
