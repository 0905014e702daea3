// The models and prompts both transformers.js tests use (v4 in transformers.test.ts, v3 in
// transformers-v3.test.ts: each major brings its own onnxruntime-node, and two cannot load in
// one process). Not part of the published package.
import { BpeTokenizer, CharTokenizer, type Tokenizer } from '@minigpt/tokenizer';

export const BLOCK_SIZE = 128;
export const charTokenizer = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz .,\n');
// Varied enough for merges across words, digits, punctuation and multi-byte characters.
const corpus = [
  'The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!',
  'How vexingly quick daft zebras jump; the five boxing wizards jump quickly.',
  "Sphinx of black quartz, judge my vow. It's 10:45 and we don't know 2024's plans.",
  'Le café était très animé — naïve façades, déjà vu. Straße, über, smörgåsbord.',
  'Numbers 12345 and 67890 sit with tabs\tand newlines\nin this little text; the end.',
].join('\n');
const bpeTokenizer = BpeTokenizer.train(corpus.repeat(2), 350, {
  specialTokens: ['<|endoftext|>'],
});
const endOfText = bpeTokenizer.specialTokens.get('<|endoftext|>')!;

export interface Case {
  readonly name: string;
  readonly tokenizer: Tokenizer;
  readonly seed: number;
  readonly neverGreedy: readonly number[];
  /** One prompt; and four of 1 to 40 characters for a batch. */
  readonly prompt: string;
  readonly prompts: readonly string[];
}

export const cases: Case[] = [
  {
    name: 'char',
    tokenizer: charTokenizer,
    seed: 21,
    neverGreedy: [],
    prompt: 'the quick brown fox',
    prompts: [
      't',
      'the cat',
      'a quick brown fox, jumping',
      'the lazy dog sleeps. the quick fox runs\n',
    ],
  },
  {
    name: 'bpe',
    tokenizer: bpeTokenizer,
    seed: 22,
    // transformers.js ends a row at <|endoftext|> (eos in config.json); runner-node runs on.
    neverGreedy: [endOfText],
    prompt: 'The quick brown fox',
    prompts: [
      'T',
      "It's 10:45",
      'Le café — très animé',
      'Pack my box with five dozen liquor jugs!',
    ],
  },
];
