import { describe, expect, it } from 'vitest';
import {
  CharTokenizer,
  registerTokenizer,
  registeredTokenizerTypes,
  tokenizerFromJSON,
  type Tokenizer,
  type TokenizerJSON,
} from './index.js';

/** A toy kind: one token per UTF-16 unit, mod 128. Shows a plug-in needs no core change. */
class AsciiTokenizer implements Tokenizer {
  readonly type = 'ascii-test';
  readonly vocabSize = 128;
  encode(text: string): number[] {
    return [...text].map((char) => char.charCodeAt(0) % 128);
  }
  decode(ids: ArrayLike<number>): string {
    return String.fromCharCode(...Array.from(ids));
  }
  toJSON(): TokenizerJSON {
    return { type: this.type, version: 1 };
  }
}

describe('tokenizer registry', () => {
  it('dispatches on type to built-in kinds', () => {
    const char = CharTokenizer.fromText('hello');
    expect(tokenizerFromJSON(char.toJSON())).toBeInstanceOf(CharTokenizer);
    expect(registeredTokenizerTypes()).toEqual(expect.arrayContaining(['bpe', 'char']));
  });

  it('loads a kind registered from outside the package', () => {
    registerTokenizer({ type: 'ascii-test', fromJSON: () => new AsciiTokenizer() });
    const loaded = tokenizerFromJSON({ type: 'ascii-test', version: 1 });
    expect(loaded.decode(loaded.encode('hi'))).toBe('hi');
  });

  it('says which types exist when one is unknown, naming the source', () => {
    expect(() => tokenizerFromJSON({ type: 'wordpiece', version: 1 }, 'data/vocab.json')).toThrow(
      /^data\/vocab\.json: unknown tokenizer type "wordpiece"; known types: .*bpe, char/,
    );
    expect(() => tokenizerFromJSON([], 'data/vocab.json')).toThrow(
      /data\/vocab\.json: expected a JSON object/,
    );
  });
});
