import { describe, expect, it } from 'vitest';
import { CharTokenizer, CharVocabularyBuilder, UnknownCharacterError } from './index.js';

describe('CharTokenizer', () => {
  it('orders the vocabulary by code point, astral characters as one token', () => {
    // U+FF01 sorts before U+1F30D by code point, though its UTF-16 unit is larger than 0xD83C.
    const tokenizer = CharTokenizer.fromText('b🌍a\uFF01a\n');
    expect(tokenizer.vocab).toEqual(['\n', 'a', 'b', '\uFF01', '🌍']);
    expect(tokenizer.encode('🌍ab')).toEqual([4, 1, 2]);
  });

  it("matches nanoGPT's ids: sorted(set(text)), index = id", () => {
    const text = 'hello world\nHELLO!';
    const expected = [...new Set(text)].sort();
    const tokenizer = CharTokenizer.fromText(text);
    expect(tokenizer.vocab).toEqual(expected);
    expect(tokenizer.encode('hello')).toEqual([...'hello'].map((c) => expected.indexOf(c)));
  });

  it('names the unknown character and where it is', () => {
    const tokenizer = CharTokenizer.fromText('abc\n');
    let caught: unknown;
    try {
      tokenizer.encode('ab\nc🌍x');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnknownCharacterError);
    const error = caught as UnknownCharacterError;
    expect(error.character).toBe('🌍');
    expect(error.position).toBe(4);
    expect(error.line).toBe(2);
    expect(error.column).toBe(2);
    expect(error.message).toMatch(/"🌍" \(U\+1F30D\) at position 4 \(line 2, column 2\)/);
    expect(error.message).toMatch(/unknown: 'skip'/);
  });

  it('skips or replaces unknown characters when asked, and keeps that choice in JSON', () => {
    const skipping = CharTokenizer.fromText('ab?', { unknown: 'skip' });
    expect(skipping.decode(skipping.encode('aXbY'))).toBe('ab');
    const replacing = CharTokenizer.fromText('ab?', { unknown: { replaceWith: '?' } });
    expect(replacing.decode(replacing.encode('aXb🌍'))).toBe('a?b?');
    expect(CharTokenizer.fromJSON(replacing.toJSON()).encode('Z')).toEqual(replacing.encode('?'));
    expect(() => CharTokenizer.fromText('ab', { unknown: { replaceWith: '?' } })).toThrow(
      /replacement "\?" \(U\+003F\) is not in the vocabulary/,
    );
  });

  it('builds the same vocabulary from pieces that split a surrogate pair', () => {
    const text = 'x🌍y😀';
    const builder = new CharVocabularyBuilder();
    builder.add(text.slice(0, 2));
    builder.add(text.slice(2, 5));
    builder.add(text.slice(5));
    expect(builder.characters()).toEqual(CharTokenizer.fromText(text).vocab);
  });

  it('rejects broken vocabularies and JSON with the reason', () => {
    expect(() => new CharTokenizer(['a', 'a'])).toThrow(/appears twice/);
    expect(() => new CharTokenizer(['ab'])).toThrow(/exactly one character/);
    expect(() => CharTokenizer.fromJSON({ type: 'char', version: 2, vocab: [] })).toThrow(
      /version 2.*newer @minigpt\/tokenizer/,
    );
    expect(() => CharTokenizer.fromJSON({ type: 'char', version: 1, vocab: 'abc' })).toThrow(
      /^char tokenizer JSON: "vocab" must be an array of strings/,
    );
  });
});
