// GPT-2's tokenizer files, rebuilt without network from the ranks js-tiktoken ships, and a
// deterministic varied text to compare encoders on. Used by src/gpt2.test.ts, the export-onnx
// test of the Hugging Face writer and bench/gpt2.bench.mjs. It is the reference side: it uses
// nothing of @minigpt/tokenizer.
//
// js-tiktoken knows GPT-2 as ranks: token bytes → rank, where rank = GPT-2's id. The merges
// file is not there, but each merge can be recovered: BPE on the bytes of the token of rank r,
// allowed only ranks below r, stops at exactly the two tokens whose merge made it.
import gpt2 from 'js-tiktoken/ranks/gpt2';

export { gpt2 as GPT2_RANKS };

const END_OF_TEXT = '<|endoftext|>';

/**
 * GPT-2's byte → printable character table: printable Latin-1 bytes stand for themselves,
 * the other 68 take the code points from 256 up, in byte order.
 */
export function byteToUnicode() {
  const table = new Array(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
    table[byte] = String.fromCodePoint(printable ? byte : next++);
  }
  return table;
}

/** Ranks as `latin1 string of the token's bytes` → rank, and the tokens in rank order. */
function parseRanks() {
  const rankOf = new Map();
  const tokens = [];
  for (const line of gpt2.bpe_ranks.split('\n')) {
    if (line === '') continue;
    const [, offset, ...encoded] = line.split(' ');
    encoded.forEach((base64, i) => {
      const token = Buffer.from(base64, 'base64').toString('latin1');
      const rank = Number(offset) + i;
      rankOf.set(token, rank);
      tokens[rank] = token;
    });
  }
  return { rankOf, tokens };
}

/** The two tokens BPE, allowed ranks below `rank` only, leaves of `token`. */
function lastMerge(token, rank, rankOf) {
  const parts = [...token];
  while (parts.length > 2) {
    let best = -1;
    let bestRank = rank;
    for (let i = 0; i + 1 < parts.length; i++) {
      const candidate = rankOf.get(parts[i] + parts[i + 1]);
      if (candidate !== undefined && candidate < bestRank) {
        bestRank = candidate;
        best = i;
      }
    }
    if (best < 0) throw new Error(`rank ${rank} is not reachable by merges of lower rank`);
    parts.splice(best, 2, parts[best] + parts[best + 1]);
  }
  if (parts.length !== 2) throw new Error(`rank ${rank} is a single byte past 255`);
  return parts;
}

let cached;

/**
 * GPT-2's files in the Hugging Face layout: `tokenizer.json` (as an object, merges as
 * "a b" strings, as the hub's file has them), `vocab.json` (an object, = encoder.json) and
 * `merges.txt` (a string, = vocab.bpe). Built once per process (about a second).
 */
export function gpt2Files() {
  if (cached) return cached;
  const { rankOf, tokens } = parseRanks();
  const unicode = byteToUnicode();
  const toUnicode = (token) => {
    let text = '';
    for (let i = 0; i < token.length; i++) text += unicode[token.charCodeAt(i)];
    return text;
  };
  const vocab = {};
  for (let rank = 0; rank < tokens.length; rank++) vocab[toUnicode(tokens[rank])] = rank;
  const merges = [];
  for (let rank = 256; rank < tokens.length; rank++) {
    const [first, second] = lastMerge(tokens[rank], rank, rankOf);
    merges.push(`${toUnicode(first)} ${toUnicode(second)}`);
  }
  const endOfText = gpt2.special_tokens[END_OF_TEXT];
  vocab[END_OF_TEXT] = endOfText;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: endOfText,
        content: END_OF_TEXT,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { ...byteLevel, use_regex: true },
    post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  cached = {
    tokenizerJson,
    vocabJson: vocab,
    mergesTxt: `#version: 0.2\n${merges.join('\n')}\n`,
  };
  return cached;
}

/** A small seeded generator (mulberry32): the same text on every machine. */
function generator(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (items) => items[int(items.length)];
  return { next, int, pick };
}

const WORDS = (
  'the of and to in a is that for it as was with be by on not he I this are or his from at ' +
  'which but have an they you were her she there been one all we their has would when if ' +
  'Shakespeare king Rome citizen Tokyo naïve café résumé Zürich façade coöperate über Ελλάδα ' +
  'Москва العربية עברית हिन्दी ไทย tokenizer JavaScript McDonald O’Brien x86_64 e-mail'
).split(' ');
const CONTRACTIONS = ["'ll", "'s", "'ve", "'re", "'d", "'m", "'t", "n't", "'LL", "'S", '’s'];
const PUNCTUATION = ['.', ',', '!', '?', ';', ':', '…', '—', ' -', '...', '?!', '"', ')', '('];
const CODE = [
  'function add(a, b) {\n  return a + b;\n}\n',
  'for (let i = 0; i < n; i++) {\n\tsum += values[i] * 2;\n}\n',
  'def parse(line):\n    key, _, value = line.partition("=")\n    return key.strip(), value\n',
  'const re = /^\\s*(\\d+)\\s*$/u; // digits only\n',
  '    if x != None and y >= 10:\n        print(f"{x!r:>8}")\n',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }\n',
  '<div class="row">\n  <span id="a1">&nbsp;</span>\n</div>\n',
  'SELECT name, COUNT(*) FROM users WHERE age > 30 GROUP BY name;\n',
  '{"key": [1, 2.5, -3e10, null, true], "nested": {"a": "b"}}\n',
];
const EMOJI = ['🙂', '🚀', '👍🏽', '👩‍💻', '👨‍👩‍👧‍👦', '🇯🇵', '🏳️‍🌈', '❤️', '🐈', '🎭', '😀😃😄', '∑', '≠', '™'];
const SPACES = [
  ' ',
  '  ',
  '   ',
  '\t',
  '\t\t',
  '\n',
  '\n\n',
  '\n\n\n',
  '\r\n',
  ' \n ',
  '\u00a0',
  '\u3000',
  '    \n\t',
];

/** A run of `length` random code points from `from` to `to` (inclusive). */
function randomRun(random, from, to, length) {
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCodePoint(from + random.int(to - from + 1));
  return text;
}

/** A random code point of any plane, surrogates excluded (a lone one is not valid text). */
function anyCodePoint(random) {
  for (;;) {
    const ranges = [
      [0, 0x7f],
      [0x80, 0x7ff],
      [0x800, 0xffff],
      [0x10000, 0x10ffff],
    ];
    const [from, to] = random.pick(ranges);
    const codePoint = from + random.int(to - from + 1);
    if (codePoint < 0xd800 || codePoint > 0xdfff) return String.fromCodePoint(codePoint);
  }
}

function number(random) {
  switch (random.int(5)) {
    case 0:
      return String(random.int(10));
    case 1:
      return String(random.int(100000));
    case 2:
      return `${random.int(10000)}.${random.int(1000)}`;
    case 3:
      return String(random.int(2 ** 31)) + String(random.int(2 ** 31));
    default:
      return `${1900 + random.int(200)}-${1 + random.int(12)}-${1 + random.int(28)}`;
  }
}

function prose(random) {
  let text = '';
  const words = 5 + random.int(30);
  for (let w = 0; w < words; w++) {
    let word = random.next() < 0.1 ? number(random) : random.pick(WORDS);
    if (w === 0 || random.next() < 0.05) word = word[0].toUpperCase() + word.slice(1);
    if (random.next() < 0.03) word = word.toUpperCase();
    if (random.next() < 0.08) word += random.pick(CONTRACTIONS);
    text += word;
    if (random.next() < 0.12) text += random.pick(PUNCTUATION);
    text += random.next() < 0.9 ? ' ' : random.pick(SPACES);
  }
  return `${text.trimEnd()}${random.pick(['.', '!', '?', '."'])}`;
}

function combining(random) {
  let text = '';
  for (let i = 0; i < 3 + random.int(10); i++) {
    text += String.fromCodePoint(0x61 + random.int(26));
    for (let m = random.int(4); m > 0; m--) text += String.fromCodePoint(0x300 + random.int(0x70));
  }
  return text;
}

/** Pieces of over 128 bytes (one letter, digit or space run): the merges of long pieces. */
function longRun(random, kind) {
  const length = 130 + random.int(40);
  switch (kind % 5) {
    case 0:
      return Array.from({ length: length / 2 }, () =>
        random.pick(['the', 'ing', 'an', 'e', 'st']),
      ).join('');
    case 1:
      return randomRun(random, 0x4e00, 0x4eff, length / 3);
    case 2:
      return randomRun(random, 0x30, 0x39, length);
    case 3:
      return random.pick(['-', '=', '*', '.', '_']).repeat(length);
    default:
      return ' '.repeat(length) + 'x';
  }
}

/** One paragraph of a random kind; every 600th a long run (few: js-tiktoken's are n²). */
function paragraph(random, index) {
  if (index % 600 === 599) return longRun(random, (index + 1) / 600);
  switch (random.int(12)) {
    case 0:
      return random.pick(CODE);
    case 1:
      return Array.from({ length: 1 + random.int(8) }, () => random.pick(EMOJI)).join(
        random.pick(['', ' ']),
      );
    case 2: // Chinese and Japanese (no spaces: long letter runs), Korean
      return (
        randomRun(random, 0x4e00, 0x9fff, 2 + random.int(40)) +
        random.pick(['。', '、', '，', ' ']) +
        randomRun(random, 0x3041, 0x30ff, 1 + random.int(10)) +
        ' ' +
        randomRun(random, 0xac00, 0xd7a3, 1 + random.int(6))
      );
    case 3:
      return combining(random);
    case 4:
      return Array.from({ length: 1 + random.int(6) }, () => random.pick(SPACES)).join('');
    case 5: // the special token, glued to words or spaces on either side, and near-misses
      return random.pick([
        END_OF_TEXT,
        ` ${END_OF_TEXT} `,
        `word${END_OF_TEXT}word`,
        `\n${END_OF_TEXT}\n`,
        `${END_OF_TEXT}${END_OF_TEXT}`,
        '<|endoftext|',
        '<|endoftext>',
        '|endoftext|>',
      ]);
    case 6:
      return Array.from({ length: 1 + random.int(30) }, () => anyCodePoint(random)).join('');
    case 7:
      return Array.from({ length: 1 + random.int(6) }, () => number(random)).join(
        random.pick([' ', ',', '', '.', ' + ']),
      );
    default:
      return prose(random);
  }
}

/** Deterministic varied text of at least `bytes` UTF-8 bytes. */
export function variedText(bytes = 1_100_000, seed = 14) {
  const random = generator(seed);
  const parts = [];
  let length = 0;
  while (length < bytes) {
    const part = paragraph(random, parts.length) + random.pick(SPACES);
    parts.push(part);
    length += Buffer.byteLength(part);
  }
  return parts.join('');
}
