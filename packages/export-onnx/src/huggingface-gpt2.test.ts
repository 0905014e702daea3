// GPT-2's own tokenizer.json → @minigpt/tokenizer's loader → huggingFaceTokenizer → a
// tokenizer.json whose vocabulary and merges are GPT-2's, and which @huggingface/tokenizers
// and our loader both read to GPT-2's ids. GPT-2's files are rebuilt from js-tiktoken's ranks
// by @minigpt/gpt2-reference (tooling/).
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import * as reference from '@minigpt/gpt2-reference';
import { resolveGPTConfig } from '@minigpt/model';
import { BpeTokenizer, bpeFromHuggingFace, tokenizerFromJSON } from '@minigpt/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';
import { huggingFaceTokenizer, huggingFaceTokenizerConfig } from './index.js';

type Json = Record<string, unknown>;
const hfTokenizer = (json: unknown) => new HfTokenizer(json as never, {} as never);
const END_OF_TEXT = '<|endoftext|>';

describe("GPT-2's tokenizer through the Hugging Face writer", () => {
  let original: ReturnType<typeof reference.gpt2Files>['tokenizerJson'];
  let gpt2: BpeTokenizer;
  let written: Json;
  let text: string;
  beforeAll(() => {
    original = reference.gpt2Files().tokenizerJson;
    gpt2 = bpeFromHuggingFace(original, 'gpt2/tokenizer.json');
    written = JSON.parse(JSON.stringify(huggingFaceTokenizer(gpt2.toJSON()))) as Json;
    // Varied: prose, code, emoji, CJK, combining marks, whitespace runs, <|endoftext|>.
    text = reference.variedText(100_000, 7);
  });

  it("writes GPT-2's vocabulary, merges and special token", () => {
    const model = written['model'] as { vocab: Record<string, number>; merges: string[][] };
    expect(model.vocab).toEqual(original.model.vocab);
    expect(model.merges).toEqual(original.model.merges.map((merge) => merge.split(' ')));
    expect(written['added_tokens']).toMatchObject([{ id: 50256, content: END_OF_TEXT }]);
  });

  it('loads in @huggingface/tokenizers and in our loader with identical ids', () => {
    const ids = gpt2.encode(text, { allowedSpecial: 'all' });
    expect(ids).toContain(50256);
    expect(gpt2.encode('Hello world')).toEqual([15496, 995]);
    // @huggingface/tokenizers reads GPT-2's own file to the same ids: the reference holds.
    expect(hfTokenizer(original).encode(text).ids).toEqual(ids);
    const hf = hfTokenizer(written);
    expect(hf.encode(text).ids).toEqual(ids);
    expect(hf.decode(ids, { clean_up_tokenization_spaces: false })).toBe(text);
    const reloaded = bpeFromHuggingFace(written, 'export/tokenizer.json');
    expect(reloaded.toJSON()).toEqual(gpt2.toJSON());
    expect(reloaded.encode(text, { allowedSpecial: 'all' })).toEqual(ids);
    expect(tokenizerFromJSON(reloaded.toJSON()).decode(ids)).toBe(text);
  });

  it('pads with the token of id 0 ("!" in GPT-2\'s byte order) when there is no <|endoftext|>', () => {
    const noSpecials = new BpeTokenizer({ ...gpt2.toJSON(), specialTokens: {} }).toJSON();
    const config = resolveGPTConfig({ vocabSize: 50256 }, 'nano');
    expect(huggingFaceTokenizerConfig(config, noSpecials)['pad_token']).toBe('!');
    const vocab = (huggingFaceTokenizer(noSpecials)['model'] as { vocab: Record<string, number> })
      .vocab;
    expect(vocab['!']).toBe(0);
  });

  it('writes a tokenizer minigpt trained as before (special tokens only in added_tokens), and reads it back', () => {
    const trained = BpeTokenizer.train('the cat sat on the mat. '.repeat(40), 280, {
      specialTokens: [END_OF_TEXT],
    });
    const json = huggingFaceTokenizer(trained.toJSON());
    const vocab = (json['model'] as { vocab: Record<string, number> }).vocab;
    expect(Object.keys(vocab)).toHaveLength(trained.vocabSize - 1);
    expect(vocab['!']).toBe(33); // byte ids are the bytes
    expect(vocab).not.toHaveProperty([END_OF_TEXT]);
    const hf = hfTokenizer(json);
    const sample = `the cat sat${END_OF_TEXT} on 日本 🐈`;
    expect(hf.encode(sample).ids).toEqual(trained.encode(sample, { allowedSpecial: 'all' }));
    // And our loader reads it back to the tokenizer that was written (GPT-4's split pattern).
    expect(bpeFromHuggingFace(json).toJSON()).toEqual(trained.toJSON());
  });
});
