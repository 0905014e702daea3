// GPT-2's own tokenizer, loaded from its Hugging Face files and checked against an
// independent implementation: js-tiktoken's GPT-2 (its ranks, its BPE). The files are
// rebuilt from those ranks by @minigpt/gpt2-reference (tooling/, no network), loaded with
// bpeFromHuggingFace / bpeFromVocabMerges, and must give js-tiktoken's ids and text on over
// 1 MB of varied text. Then: what the loaders refuse, and the `byteIds` field of our JSON.
import { Tiktoken } from 'js-tiktoken/lite';
import { beforeAll, describe, expect, it } from 'vitest';
import { GPT2_RANKS, gpt2Files, variedText } from '@minigpt/gpt2-reference';
import {
  BpeTokenizer,
  GPT2_SPLIT_PATTERN,
  GPT4_SPLIT_PATTERN,
  MAX_MERGES_TEXT_LENGTH,
  TokenizerError,
  bpeFromHuggingFace,
  bpeFromVocabMerges,
  tokenizerFromJSON,
  type BpeTokenizerJSON,
} from './index.js';

const END_OF_TEXT = '<|endoftext|>';
const reference = new Tiktoken(GPT2_RANKS);

/** The first index where the ids differ (-1: none), with what each side has there. */
function firstDifference(ours: number[], theirs: number[]): string | undefined {
  const length = Math.max(ours.length, theirs.length);
  for (let i = 0; i < length; i++) {
    if (ours[i] === theirs[i]) continue;
    const around = (ids: number[]) => ids.slice(Math.max(0, i - 3), i + 4);
    return (
      `ids differ at ${i}: ours ${JSON.stringify(around(ours))}, js-tiktoken ` +
      `${JSON.stringify(around(theirs))} (${JSON.stringify(reference.decode(around(theirs)))})`
    );
  }
  return undefined;
}

type Json = Record<string, unknown>;
const files = () => gpt2Files();
const hfJson = () => files().tokenizerJson as unknown as Json;
const model = () => hfJson()['model'] as Json;

let small: Json | undefined;

/**
 * GPT-2's tokenizer.json cut to its first 40 merges, for the refusal cases (fast): a fresh
 * copy of the top level and the model each call, for the cases to change.
 */
function smallGpt2(): Json {
  if (small === undefined) {
    const merges = 40;
    const vocab: Record<string, number> = {};
    for (const [token, id] of Object.entries(files().vocabJson)) {
      if (id < 256 + merges) vocab[token] = id;
    }
    vocab[END_OF_TEXT] = 256 + merges;
    small = {
      ...hfJson(),
      added_tokens: [{ id: 256 + merges, content: END_OF_TEXT, special: true, normalized: true }],
      model: { ...model(), vocab, merges: (model()['merges'] as string[]).slice(0, merges) },
    };
  }
  return { ...small, model: { ...(small['model'] as Json) } };
}

describe("GPT-2's tokenizer from its files", () => {
  let fromTokenizerJson: BpeTokenizer;
  let text: string;
  let expected: number[];
  beforeAll(() => {
    fromTokenizerJson = bpeFromHuggingFace(hfJson(), 'gpt2/tokenizer.json');
    text = variedText(1_100_000);
    expected = reference.encode(text, 'all');
  });

  it('gives the known ids', () => {
    const tokenizer = fromTokenizerJson;
    expect(tokenizer.vocabSize).toBe(50257);
    expect(tokenizer.encode('Hello world')).toEqual([15496, 995]);
    expect(tokenizer.encode(' Hello world')).toEqual([18435, 995]);
    expect(tokenizer.encode('hello world')).toEqual([31373, 995]);
    expect(tokenizer.encode('The')).toEqual([464]);
    expect(tokenizer.encode(' the')).toEqual([262]);
    // Byte ids in the order of GPT-2's table: "!" (byte 33) is id 0, a space 220, "\n" 198.
    expect(tokenizer.encode('!')).toEqual([0]);
    expect(tokenizer.encode(' ')).toEqual([220]);
    expect(tokenizer.encode('\n')).toEqual([198]);
    expect(tokenizer.encode('\n\n')).toEqual([628]);
    expect(tokenizer.decode([0, 220, 198])).toBe('! \n');
    expect(tokenizer.encode(END_OF_TEXT, { allowedSpecial: 'all' })).toEqual([50256]);
    expect(tokenizer.encode(END_OF_TEXT)).not.toContain(50256); // text unless allowed
    expect(tokenizer.decode([50256])).toBe(END_OF_TEXT);
  });

  it("encodes and decodes over 1 MB of varied text exactly as js-tiktoken's GPT-2", () => {
    expect(Buffer.byteLength(text)).toBeGreaterThan(1_000_000);
    expect(expected).toContain(50256); // the special token is in the text, and allowed
    // Pieces of over 128 bytes merge by the heap, not the scan: the text has some of each kind.
    const longPieces = [...text.matchAll(new RegExp(GPT2_SPLIT_PATTERN, 'gu'))]
      .map(([piece]) => piece)
      .filter((piece) => Buffer.byteLength(piece) > 128);
    expect(longPieces.length).toBeGreaterThanOrEqual(15);
    expect(longPieces.some((piece) => /^[a-z]+$/.test(piece))).toBe(true);
    expect(longPieces.some((piece) => /^[0-9]+$/.test(piece))).toBe(true);
    const ids = fromTokenizerJson.encode(text, { allowedSpecial: 'all' });
    expect(firstDifference(ids, expected)).toBeUndefined();
    expect(fromTokenizerJson.decode(ids)).toBe(text);
    // Ids that cut characters in two decode as js-tiktoken does (U+FFFD), in slices.
    for (let start = 0; start < 20_000; start += 997) {
      const slice = expected.slice(start, start + 13);
      expect(fromTokenizerJson.decode(slice)).toBe(reference.decode(slice));
    }
  });

  it('merges a long word in bounded time (n log n, not n²)', () => {
    let word = '';
    for (let i = 0; word.length < 300_000; i++)
      word += ['the', 'ing', 'an', 'st', 'e'][(i * 7) % 5];
    const started = performance.now();
    const ids = fromTokenizerJson.encode(word);
    expect(performance.now() - started).toBeLessThan(5_000); // the scan takes minutes
    expect(fromTokenizerJson.decode(ids)).toBe(word);
    expect(ids.length).toBeLessThan(word.length / 2);
  });

  it('loads vocab.json + merges.txt to the same tokenizer', () => {
    const tokenizer = bpeFromVocabMerges(files().vocabJson, files().mergesTxt, {
      vocab: 'gpt2/vocab.json',
      merges: 'gpt2/merges.txt',
    });
    expect(tokenizer.toJSON()).toEqual(fromTokenizerJson.toJSON());
    const sample = text.slice(0, 30_000);
    expect(
      firstDifference(
        tokenizer.encode(sample, { allowedSpecial: 'all' }),
        reference.encode(sample, 'all'),
      ),
    ).toBeUndefined();
  });

  it('reads merges as [a, b] pairs, an untyped model and our exporter’s pre-tokenizer alike', () => {
    const pairs = (model()['merges'] as string[]).map((merge) => merge.split(' '));
    const untyped = { ...model() };
    delete untyped['type'];
    const variant = {
      ...hfJson(),
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          {
            type: 'Split',
            pattern: { Regex: GPT2_SPLIT_PATTERN },
            behavior: 'Isolated',
            invert: false,
          },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
      decoder: null,
      post_processor: null,
      model: { ...untyped, merges: pairs },
    };
    expect(bpeFromHuggingFace(variant).toJSON()).toEqual(fromTokenizerJson.toJSON());
  });

  it('round-trips through toJSON and the registry to an equal tokenizer', () => {
    const json = JSON.parse(JSON.stringify(fromTokenizerJson.toJSON())) as BpeTokenizerJSON;
    expect(json.byteIds?.slice(30, 36)).toEqual(
      [...'\u001e\u001f !"#'].map((c) => fromTokenizerJson.encode(c)[0]),
    );
    const reloaded = tokenizerFromJSON(json, 'ckpt/tokenizer.json') as BpeTokenizer;
    expect(reloaded.toJSON()).toEqual(fromTokenizerJson.toJSON());
    const sample = text.slice(300_000, 330_000);
    expect(
      firstDifference(
        reloaded.encode(sample, { allowedSpecial: 'all' }),
        reference.encode(sample, 'all'),
      ),
    ).toBeUndefined();
  });
});

describe('the GPT-2 loaders refuse what a BpeTokenizer cannot reproduce', () => {
  const SOURCE = 'gpt2/tokenizer.json';
  const refusal = (json: unknown): TokenizerError => {
    try {
      bpeFromHuggingFace(json, SOURCE);
    } catch (error) {
      expect(error).toBeInstanceOf(TokenizerError);
      expect((error as TokenizerError).message.startsWith(`${SOURCE}: `)).toBe(true);
      expect((error as TokenizerError).file).toBe(SOURCE);
      return error as TokenizerError;
    }
    throw new Error('expected the tokenizer.json to be refused');
  };
  const withModel = (change: Json) => ({
    ...smallGpt2(),
    model: { ...(smallGpt2()['model'] as Json), ...change },
  });
  const vocabOf = () => ({
    ...((smallGpt2()['model'] as Json)['vocab'] as Record<string, number>),
  });

  it('loads the small GPT-2 the cases start from', () => {
    const tokenizer = bpeFromHuggingFace(smallGpt2(), SOURCE);
    expect(tokenizer.vocabSize).toBe(256 + 40 + 1);
    const sample = 'the inner thing, rethought';
    expect(tokenizer.decode(tokenizer.encode(sample))).toBe(sample);
  });

  const cases: Array<[string, () => unknown, RegExp, string]> = [
    ['not an object', () => [], /the file must be a JSON object, got an array/, 'json'],
    [
      'another model',
      () => withModel({ type: 'WordPiece' }),
      /"model.type" is "WordPiece"; only byte-level BPE/,
      'model.type',
    ],
    [
      'a normalizer',
      () => ({ ...smallGpt2(), normalizer: { type: 'NFC' } }),
      /"normalizer" is \{"type":"NFC"\}; a normalizer changes the text/,
      'normalizer',
    ],
    [
      'a prefix space',
      () => ({ ...smallGpt2(), pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true } }),
      /"pre_tokenizer.add_prefix_space" is true; only false/,
      'pre_tokenizer.add_prefix_space',
    ],
    [
      'a pre-tokenizer that splits nothing',
      () => ({
        ...smallGpt2(),
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: false },
      }),
      /"pre_tokenizer.use_regex" is false; a ByteLevel pre-tokenizer alone must split/,
      'pre_tokenizer.use_regex',
    ],
    [
      'an untrusted Split regex',
      () => ({
        ...smallGpt2(),
        pre_tokenizer: {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Split', pattern: { Regex: '(a+)+$' }, behavior: 'Isolated', invert: false },
            { type: 'ByteLevel', add_prefix_space: false, use_regex: false },
          ],
        },
      }),
      /"pre_tokenizer.pretokenizers\[0\].pattern.Regex" is "\(a\+\)\+\$", not a split pattern this process trusts.*registerSplitPattern/,
      'pre_tokenizer.pretokenizers[0].pattern.Regex',
    ],
    [
      'a template post-processor',
      () => ({ ...smallGpt2(), post_processor: { type: 'TemplateProcessing' } }),
      /"post_processor" is \{"type":"TemplateProcessi.*, which adds or changes ids/,
      'post_processor',
    ],
    [
      'truncation',
      () => ({ ...smallGpt2(), truncation: { max_length: 8 } }),
      /"truncation" is .* only null/,
      'truncation',
    ],
    ['dropout', () => withModel({ dropout: 0.1 }), /"model.dropout" is 0.1/, 'model.dropout'],
    [
      'a word-end suffix',
      () => withModel({ end_of_word_suffix: '</w>' }),
      /"model.end_of_word_suffix" is "<\/w>"/,
      'model.end_of_word_suffix',
    ],
    [
      'ignore_merges',
      () => withModel({ ignore_merges: true }),
      /"model.ignore_merges" is true/,
      'model.ignore_merges',
    ],
    [
      'a byte token past 255',
      () => {
        const vocab = vocabOf();
        const space = vocab['Ġ']!;
        vocab['Ġ'] = vocab['Ġt']!; // swap the space with merge 0's result
        vocab['Ġt'] = space;
        return withModel({ vocab });
      },
      /"model.vocab" gives the token of byte 0x20 \("Ġ"\) the id 256; the 256 byte tokens must have the ids 0–255/,
      'model.vocab',
    ],
    [
      'a missing byte token',
      () => {
        const vocab = vocabOf();
        delete vocab['Ā'];
        return withModel({ vocab });
      },
      /"model.vocab" has no token for byte 0x00 \("Ā"\)/,
      'model.vocab',
    ],
    [
      'merges out of id order',
      () => {
        const merges = [...((smallGpt2()['model'] as Json)['merges'] as string[])];
        [merges[3], merges[4]] = [merges[4]!, merges[3]!];
        return withModel({ merges });
      },
      /"model.merges\[3\]" makes "re", which has the id 260 in the vocabulary; merge i must make the token of id 256 \+ i \(259\)/,
      'model.merges[3]',
    ],
    [
      'a merge of an unknown token',
      () => withModel({ merges: ['Ġ t', 'Ġ xyz'] }),
      /"model.merges\[1\]" joins "xyz" as its second token, which is not in the vocabulary/,
      'model.merges[1]',
    ],
    [
      'a merge with two spaces',
      () => withModel({ merges: ['Ġ t x'] }),
      /"model.merges\[0\]" must be "first second"/,
      'model.merges[0]',
    ],
    [
      'a vocabulary entry that is nothing',
      () => withModel({ vocab: { ...vocabOf(), stray: 297 } }),
      /"model.vocab" has "stray" with the id 297, which is neither a byte, a merge's result nor an added token/,
      'model.vocab',
    ],
    [
      'two tokens with one id',
      () => withModel({ vocab: { ...vocabOf(), twin: 5 } }),
      /"model.vocab" gives both .* and "twin" the id 5/,
      'model.vocab',
    ],
    [
      'a special id left unused',
      () => ({
        ...smallGpt2(),
        added_tokens: [{ id: 297, content: END_OF_TEXT }],
        model: { ...(smallGpt2()['model'] as Json), vocab: { ...vocabOf(), [END_OF_TEXT]: 297 } },
      }),
      /"added_tokens" gives "<\|endoftext\|>" the id 297; the 1 special tokens must have the ids 296–296/,
      'added_tokens',
    ],
    [
      'an added token among the merges',
      () => ({
        ...smallGpt2(),
        added_tokens: [
          { id: 256, content: 'Ġt' },
          { id: 296, content: END_OF_TEXT },
        ],
      }),
      /"added_tokens" gives "Ġt" the id 256, among the bytes and merges/,
      'added_tokens',
    ],
    [
      'an added token that strips spaces',
      () => ({ ...smallGpt2(), added_tokens: [{ id: 296, content: END_OF_TEXT, lstrip: true }] }),
      /"added_tokens\[0\].lstrip" is true; only exact matches/,
      'added_tokens[0].lstrip',
    ],
  ];
  for (const [what, make, message, rule] of cases) {
    it(`refuses ${what}`, () => {
      const error = refusal(make());
      expect(error.message).toMatch(message);
      expect(error.rule).toBe(rule);
    });
  }

  it('caps sizes before reading entries', () => {
    const claimsLength = (length: number): unknown[] =>
      new Proxy([], {
        get: (target, key, receiver) =>
          key === 'length' ? length : (Reflect.get(target, key, receiver) as unknown),
      });
    expect(refusal(withModel({ merges: claimsLength(2 ** 24) })).message).toMatch(
      /"model.merges" has 16777216 entries, more than 16776960/,
    );
    expect(refusal({ ...smallGpt2(), added_tokens: claimsLength(5000) }).message).toMatch(
      /"added_tokens" has 5000 entries, more than 4096/,
    );
    expect(() =>
      bpeFromVocabMerges(files().vocabJson, 'a'.repeat(MAX_MERGES_TEXT_LENGTH + 1)),
    ).toThrow(/^merges.txt: the file is 33554433 characters long, more than 33554432/);
  });

  it('names the file and line of vocab.json and merges.txt problems', () => {
    const vocab = (smallGpt2()['model'] as Json)['vocab'] as Record<string, number>;
    const merges = `#version: 0.2\n${((smallGpt2()['model'] as Json)['merges'] as string[]).join('\n')}\n`;
    const tokenizer = bpeFromVocabMerges(vocab, merges);
    expect(tokenizer.specialTokens).toEqual(new Map([[END_OF_TEXT, 296]]));
    // Windows line ends and no #version line read the same.
    const crlf = merges.replace(/^#version[^\n]*\n/, '').replaceAll('\n', '\r\n');
    expect(bpeFromVocabMerges(vocab, crlf).toJSON()).toEqual(tokenizer.toJSON());
    expect(() =>
      bpeFromVocabMerges(vocab, merges.replace('Ġ t', 'Ġt'), { merges: 'm.txt' }),
    ).toThrow(/^m.txt: line 2 must be one merge, "first second" .* got "Ġt"/);
    expect(() => bpeFromVocabMerges(vocab, merges.replace('\nĠ a\n', '\nĠ b\n'))).toThrow(
      /^merges.txt: line 3 \(merge 1\) makes "Ġb", which has the id \d+ in the vocabulary; merge i must make the token of id 256 \+ i \(257\)/,
    );
    expect(() =>
      bpeFromVocabMerges({ ...vocab, '<|pad|>': 400 }, merges, { vocab: 'v.json' }),
    ).toThrow(
      /^v.json: the vocabulary gives "<\|pad\|>" the id 400; the 2 special tokens must have the ids 296–297/,
    );
    expect(() => bpeFromVocabMerges([], merges)).toThrow(
      /^vocab.json: the vocabulary must be a JSON object, got an array/,
    );
    expect(() => bpeFromVocabMerges(vocab, 42 as unknown as string)).toThrow(
      /^merges.txt: expected the text of a merges file, got number/,
    );
  });
});

describe('byteIds in the BPE JSON', () => {
  const corpus = 'the cat sat on the mat, the dog sat on the log. 42 cats! '.repeat(20);

  it('is written only for a permutation, so other tokenizers keep their JSON', () => {
    const trained = BpeTokenizer.train(corpus, 300, { specialTokens: [END_OF_TEXT] });
    const json = trained.toJSON();
    expect(Object.keys(json)).toEqual(['type', 'version', 'pattern', 'merges', 'specialTokens']);
    const identity = Array.from({ length: 256 }, (_, byte) => byte);
    const explicit = new BpeTokenizer({ ...json, byteIds: identity });
    expect(JSON.stringify(explicit.toJSON())).toBe(JSON.stringify(json));
  });

  it('numbers the byte tokens, and a permuted tokenizer round-trips', () => {
    const trained = BpeTokenizer.train(corpus, 300, { pattern: 'gpt4' }).toJSON();
    // Reversed byte ids: byte b is id 255 − b; merges name ids, so they are renumbered too.
    const byteIds = Array.from({ length: 256 }, (_, byte) => 255 - byte);
    const renumber = (id: number) => (id < 256 ? 255 - id : id);
    const merges = trained.merges.map(([a, b]) => [renumber(a), renumber(b)] as [number, number]);
    const permuted = new BpeTokenizer({
      pattern: GPT4_SPLIT_PATTERN,
      byteIds,
      merges,
      specialTokens: {},
    });
    const plain = BpeTokenizer.fromJSON(trained);
    const sample = 'the cat sat, ünï 日本 🐈!';
    expect(permuted.encode(sample)).toEqual(plain.encode(sample).map(renumber));
    expect(permuted.encode('a')).toEqual([255 - 97]);
    expect(permuted.decode(permuted.encode(sample))).toBe(sample);
    const json = JSON.parse(JSON.stringify(permuted.toJSON())) as BpeTokenizerJSON;
    expect(json.byteIds).toEqual(byteIds);
    expect(tokenizerFromJSON(json).toJSON()).toEqual(permuted.toJSON());
  });

  it('refuses byte ids that are not a permutation of 0–255, naming the file', () => {
    const json = BpeTokenizer.train(corpus, 300).toJSON();
    const twice = Array.from({ length: 256 }, (_, byte) => (byte === 7 ? 6 : byte));
    const cases: Array<[unknown, RegExp]> = [
      [null, /"byteIds" must be an array of 256 ids .*got null/],
      [[1, 2, 3], /"byteIds" must be an array of 256 ids/],
      [twice, /"byteIds\[7\]" is 6; the byte ids must be 256 distinct integers from 0 to 255/],
      [Array.from({ length: 256 }, (_, byte) => byte + 0.5), /"byteIds\[0\]" is 0.5/],
      [
        Array.from({ length: 256 }, (_, byte) => (byte === 0 ? 256 : byte)),
        /"byteIds\[0\]" is 256/,
      ],
    ];
    for (const [byteIds, message] of cases) {
      expect(() => tokenizerFromJSON({ ...json, byteIds }, 'ckpt/tokenizer.json')).toThrow(message);
      expect(() => tokenizerFromJSON({ ...json, byteIds }, 'ckpt/tokenizer.json')).toThrow(
        /^ckpt\/tokenizer.json: /,
      );
    }
  });
});
