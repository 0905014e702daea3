// Hostile and damaged tokenizer files (they travel inside checkpoints, data directories and
// exports): every one must be refused with a TokenizerError naming the file and the field,
// never another error, a hang or a huge allocation. Specific files first, then a property.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BpeTokenizer,
  CharTokenizer,
  MAX_CHAR_VOCAB_SIZE,
  MAX_MERGES,
  MAX_SPECIAL_TOKENS,
  MAX_SPECIAL_TOKEN_LENGTH,
  SPLIT_PATTERNS,
  TokenizerError,
  isTrustedSplitPattern,
  registerSplitPattern,
  tokenizerFromJSON,
  type Tokenizer,
} from './index.js';

const SOURCE = 'ckpt/tokenizer.json';

const text = 'the cat sat on the mat, the dog sat on the log. 42 cats! '.repeat(20);
const bpeJSON = () =>
  structuredClone(
    BpeTokenizer.train(text, 300, { specialTokens: ['<|endoftext|>', '<|pad|>'] }).toJSON(),
  ) as unknown as Record<string, unknown>;
const charJSON = () =>
  structuredClone(
    CharTokenizer.fromText('hello wörld 🌍!', { unknown: { replaceWith: '!' } }).toJSON(),
  ) as unknown as Record<string, unknown>;

/** `depth` arrays nested in each other: JSON.stringify of it overflows the stack. */
function nested(depth: number): unknown {
  let value: unknown = 'core';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

function refusal(json: unknown, source = SOURCE): TokenizerError {
  try {
    tokenizerFromJSON(json, source);
  } catch (error) {
    expect(error).toBeInstanceOf(TokenizerError);
    const typed = error as TokenizerError;
    expect(typed.message.startsWith(`${source}: `)).toBe(true);
    expect(typed.file).toBe(source);
    expect(typed.message.length).toBeLessThan(1000); // a megabyte field is shown shortened
    return typed;
  }
  throw new Error('expected the tokenizer JSON to be refused');
}

const huge = 'x'.repeat(1_000_000);

/**
 * An array that claims `length` items but holds none: refused for its length alone, it shows
 * the count is checked before any item is read (an item read first would be undefined).
 */
function claimsLength(length: number): unknown[] {
  return new Proxy([], {
    get: (target, key, receiver) =>
      key === 'length' ? length : (Reflect.get(target, key, receiver) as unknown),
  });
}

describe('tokenizer JSON readers refuse damaged and hostile files', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['not an object', () => [], /expected a JSON object, got an array/],
    ['null', () => null, /expected a JSON object, got null/],
    [
      'unknown type',
      () => ({ type: 'wordpiece', version: 1 }),
      /unknown tokenizer type "wordpiece"/,
    ],
    ['huge type', () => ({ type: huge, version: 1 }), /unknown tokenizer type "xxx.*…/],
    [
      'deeply nested type',
      () => ({ type: nested(100_000), version: 1 }),
      /unknown tokenizer type \[\[/,
    ],
    [
      'missing version',
      () => ({ ...charJSON(), version: undefined }),
      /unsupported format version undefined/,
    ],
    [
      'string version',
      () => ({ ...charJSON(), version: '1' }),
      /unsupported format version "1".*re-create it/,
    ],
    ['newer version', () => ({ ...bpeJSON(), version: 2 }), /version 2 .*upgrade this package/],
    [
      'extra field (char)',
      () => ({ ...charJSON(), extra: 1 }),
      /unknown field "extra" in the file \(its fields are type, version, vocab, unknown\)/,
    ],
    ['extra field (bpe)', () => ({ ...bpeJSON(), __proto__x: 1 }), /unknown field "__proto__x"/],
    // char
    [
      'vocab missing',
      () => ({ ...charJSON(), vocab: undefined }),
      /"vocab" must be an array of strings .*got undefined/,
    ],
    ['vocab an object', () => ({ ...charJSON(), vocab: { 0: 'a' } }), /"vocab" must be an array/],
    [
      'vocab entry a number',
      () => ({ ...charJSON(), vocab: ['a', 7] }),
      /"vocab\[1\]" must be a string of one character .*got 7/,
    ],
    [
      'vocab entry two letters',
      () => ({ ...charJSON(), vocab: ['a', 'bc'] }),
      /"vocab\[1\]" must be exactly one character .*got "bc"/,
    ],
    [
      'vocab entry empty',
      () => ({ ...charJSON(), vocab: [''] }),
      /"vocab\[0\]" must be a string of one character/,
    ],
    [
      'vocab entry huge',
      () => ({ ...charJSON(), vocab: [huge] }),
      /"vocab\[0\]" must be a string of one character .*\(1000000 chars\)/,
    ],
    [
      'vocab entry nested',
      () => ({ ...charJSON(), vocab: [nested(50_000)] }),
      /"vocab\[0\]" .*got \[\[\[…\]\]\]\. The file/,
    ],
    [
      'vocab duplicates',
      () => ({ type: 'char', version: 1, vocab: ['a', 'b', 'a'] }),
      /"a" \(U\+0061\) appears twice in the vocab \(ids 0 and 2\)/,
    ],
    [
      'astral duplicates',
      () => ({ type: 'char', version: 1, vocab: ['🌍', '🌍'] }),
      /U\+1F30D\) appears twice/,
    ],
    [
      'vocab too large',
      () => ({ type: 'char', version: 1, vocab: claimsLength(MAX_CHAR_VOCAB_SIZE + 1) }),
      /"vocab" has 1114113 entries, more than the 1114112 code points/,
    ],
    [
      'unknown policy a word',
      () => ({ ...charJSON(), unknown: 'ignore' }),
      /"unknown" must be "error", "skip" or \{ "replaceWith"/,
    ],
    ['unknown policy an array', () => ({ ...charJSON(), unknown: ['skip'] }), /"unknown" must be/],
    [
      'replacement two letters',
      () => ({ ...charJSON(), unknown: { replaceWith: 'ab' } }),
      /the replacement "ab".*is not in the vocabulary/,
    ],
    [
      'replacement not a string',
      () => ({ ...charJSON(), unknown: { replaceWith: 3 } }),
      /"unknown.replaceWith" must be one character of the vocabulary, got 3/,
    ],
    [
      'replacement not in vocab',
      () => ({ ...charJSON(), unknown: { replaceWith: 'Z' } }),
      /the replacement "Z" \(U\+005A\) is not in the vocabulary/,
    ],
    [
      'policy extra field',
      () => ({ ...charJSON(), unknown: { replaceWith: '!', also: 1 } }),
      /unknown field "also" in "unknown"/,
    ],
    // bpe
    [
      'pattern missing',
      () => ({ ...bpeJSON(), pattern: undefined }),
      /"pattern" must be a string .*got undefined/,
    ],
    ['pattern a number', () => ({ ...bpeJSON(), pattern: 5 }), /"pattern" must be a string/],
    [
      'pattern unknown',
      () => ({ ...bpeJSON(), pattern: '\\w+' }),
      /"pattern" "\\\\w\+" is not a split pattern this process trusts/,
    ],
    [
      'pattern huge',
      () => ({ ...bpeJSON(), pattern: huge }),
      /"pattern" "xxx.*is not a split pattern/,
    ],
    [
      'merges an object',
      () => ({ ...bpeJSON(), merges: {} }),
      /"merges" must be an array of \[first, second\] id pairs, got object/,
    ],
    [
      'merge of one id',
      () => ({ ...bpeJSON(), merges: [[1]] }),
      /"merges\[0\]" must be a pair \[first, second\] of integer ids below 256 .*got \[1\]/,
    ],
    [
      'merge of three ids',
      () => ({ ...bpeJSON(), merges: [[1, 2, 3]] }),
      /"merges\[0\]" must be a pair/,
    ],
    [
      'merge with a string',
      () => ({ ...bpeJSON(), merges: [['a', 1]] }),
      /"merges\[0\]" .*got \["a",1\]/,
    ],
    [
      'merge with a fraction',
      () => ({ ...bpeJSON(), merges: [[1.5, 2]] }),
      /"merges\[0\]" .*got \[1\.5,2\]/,
    ],
    [
      'merge with a negative id',
      () => ({ ...bpeJSON(), merges: [[-1, 2]] }),
      /"merges\[0\]" .*got \[-1,2\]/,
    ],
    [
      'merge with a huge id',
      () => ({ ...bpeJSON(), merges: [[1e308, 2]] }),
      /"merges\[0\]" .*got \[1e\+308,2\]/,
    ],
    [
      'merge using its own id',
      () => ({
        ...bpeJSON(),
        merges: [
          [97, 98],
          [257, 97],
        ],
      }),
      /"merges\[1\]" must be a pair .*ids below 257/,
    ],
    [
      'merge repeated',
      () => ({
        ...bpeJSON(),
        merges: [
          [97, 98],
          [97, 98],
        ],
      }),
      /"merges\[1\]" repeats the pair \[97,98\] of merge 0/,
    ],
    [
      'too many merges',
      () => ({ ...bpeJSON(), merges: claimsLength(MAX_MERGES + 1) }),
      /"merges" has 16776961 entries, more than 16776960/,
    ],
    [
      'a chain of merges asking for gigabytes',
      () => ({
        ...bpeJSON(),
        specialTokens: {},
        merges: Array.from({ length: 20_000 }, (_, rank) => [rank === 0 ? 97 : 255 + rank, 97]),
      }),
      /the merged tokens up to "merges\[16\d\d\d\]" take more than 134217728 bytes/,
    ],
    [
      'specialTokens an array',
      () => ({ ...bpeJSON(), specialTokens: ['<|x|>'] }),
      /"specialTokens" must be an object, got an array/,
    ],
    [
      'specialTokens null',
      () => ({ ...bpeJSON(), specialTokens: null }),
      /"specialTokens" must be an object, got null/,
    ],
    [
      'special id a string',
      () => ({ ...bpeJSON(), specialTokens: { '<|x|>': '300' } }),
      /"specialTokens" gives "<\|x\|>" the id "300"; special ids must be integers from \d+ to \d+/,
    ],
    [
      'special id inside the merges',
      () => ({ ...bpeJSON(), specialTokens: { '<|x|>': 100 } }),
      /gives "<\|x\|>" the id 100/,
    ],
    [
      'special ids shared',
      () => {
        const json = bpeJSON();
        const first = (json['specialTokens'] as Record<string, number>)['<|endoftext|>']!;
        return { ...json, specialTokens: { a: first, b: first } };
      },
      /gives "b" the id \d+; .*one per token/,
    ],
    [
      'special token empty',
      () => ({ ...bpeJSON(), specialTokens: { '': 300 } }),
      /special token "" must be a non-empty, well-formed string of at most 256/,
    ],
    [
      'special token huge',
      () => ({ ...bpeJSON(), specialTokens: { [huge]: 300 } }),
      /special token "xxx.* must be a non-empty/,
    ],
    [
      'special token lone surrogate',
      () => ({ ...bpeJSON(), specialTokens: { '<\uD800>': 300 } }),
      /must be a non-empty, well-formed string/,
    ],
    [
      'too many special tokens',
      () => {
        const json = bpeJSON();
        const first = 256 + (json['merges'] as unknown[]).length;
        const specials = Object.fromEntries(
          Array.from({ length: MAX_SPECIAL_TOKENS + 1 }, (_, i) => [`<|${i}|>`, first + i]),
        );
        return { ...json, specialTokens: specials };
      },
      /"specialTokens" has 4097 entries; at most 4096/,
    ],
  ];

  for (const [name, make, message] of cases) {
    it(`refuses ${name}`, () => {
      expect(refusal(make()).message).toMatch(message);
    });
  }

  it('names the file and tells how to fix it', () => {
    const error = refusal({ ...bpeJSON(), merges: [[1, 999]] });
    expect(error.message).toBe(
      `${SOURCE}: "merges[0]" must be a pair [first, second] of integer ids below 256 (bytes and earlier merges), ` +
        'got [1,999]. The file is damaged or was not written by @minigpt/tokenizer; re-create it from the training text.',
    );
    expect(error.rule).toBe('merges');
  });

  it('names the kind when a reader is called directly', () => {
    expect(() => CharTokenizer.fromJSON({ ...charJSON(), vocab: [1] })).toThrow(
      /^char tokenizer JSON: "vocab\[0\]"/,
    );
    expect(() => BpeTokenizer.fromJSON({ ...bpeJSON(), merges: [1] }, 'x.json')).toThrow(
      /^x\.json: "merges\[0\]"/,
    );
  });

  it('accepts the longest allowed special token and special ids in any key order', () => {
    const json = bpeJSON();
    const first = 256 + (json['merges'] as unknown[]).length;
    const long = 's'.repeat(MAX_SPECIAL_TOKEN_LENGTH);
    // Integer-like keys come first in a JS object whatever the file's order.
    const tokenizer = tokenizerFromJSON(
      { ...json, specialTokens: { [long]: first, '7': first + 1 } },
      SOURCE,
    ) as BpeTokenizer;
    expect(tokenizer.encode(`a${long}7`, { allowedSpecial: 'all' })).toEqual([
      97,
      first,
      first + 1,
    ]);
    expect(() => refusal({ ...json, specialTokens: { [`${long}s`]: first } })).not.toThrow();
  });
});

describe('split patterns from files', () => {
  const realRegExp = globalThis.RegExp;
  afterEach(() => {
    globalThis.RegExp = realRegExp;
  });

  /** Records the source of every RegExp built with the constructor while `action` runs. */
  function regexSourcesBuiltDuring(action: () => void): string[] {
    const sources: string[] = [];
    globalThis.RegExp = new Proxy(realRegExp, {
      construct(target, args, newTarget) {
        sources.push(String(args[0]));
        return Reflect.construct(target, args, newTarget) as object;
      },
      apply(target, thisArg, args) {
        sources.push(String(args[0]));
        return Reflect.apply(target, thisArg, args) as RegExp;
      },
    });
    try {
      action();
    } finally {
      globalThis.RegExp = realRegExp;
    }
    return sources;
  }

  it('refuses a catastrophic pattern such as (a+)+$ before any regex is compiled or run', () => {
    const hostile = { ...bpeJSON(), pattern: '(a+)+$' };
    let error: TokenizerError | undefined;
    const started = performance.now();
    const built = regexSourcesBuiltDuring(() => {
      error = refusal(hostile);
    });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(built).not.toContain('(a+)+$');
    expect(error!.rule).toBe('pattern');
    expect(error!.message).toBe(
      `${SOURCE}: "pattern" "(a+)+$" is not a split pattern this process trusts. A regular expression ` +
        'from a file can hang encoding (catastrophic backtracking), so only the built-in patterns (gpt4, gpt2) ' +
        'and patterns registered in-process are accepted. If you trust this file, call ' +
        'registerSplitPattern(pattern) from @minigpt/tokenizer with its exact source before loading it.',
    );
  });

  it('trusts the built-in patterns', () => {
    for (const pattern of Object.values(SPLIT_PATTERNS)) {
      expect(isTrustedSplitPattern(pattern)).toBe(true);
      const tokenizer = tokenizerFromJSON({ ...bpeJSON(), pattern }, SOURCE);
      expect(tokenizer.decode(tokenizer.encode('the cat'))).toBe('the cat');
    }
  });

  it('loads a custom pattern once trusted code registers it', () => {
    const custom = '\\p{L}+|\\p{N}+|\\s+|[^\\s\\p{L}\\p{N}]+';
    const json = { ...bpeJSON(), pattern: custom };
    expect(refusal(json).message).toMatch(/call registerSplitPattern\(pattern\)/);
    registerSplitPattern(custom);
    const tokenizer = tokenizerFromJSON(json, SOURCE) as BpeTokenizer;
    expect(tokenizer.pattern).toBe(custom);
    expect(tokenizer.decode(tokenizer.encode('the cat, 42'))).toBe('the cat, 42');
  });

  it('trusts a pattern this process trained with, so its own JSON reloads', () => {
    const custom = '[a-z]+|[^a-z]';
    expect(isTrustedSplitPattern(custom)).toBe(false);
    const trained = BpeTokenizer.train(text, 280, { pattern: custom });
    const reloaded = tokenizerFromJSON(JSON.parse(JSON.stringify(trained.toJSON())), SOURCE);
    expect(reloaded.encode(text)).toEqual(trained.encode(text));
  });

  it('refuses to register something that is not a regex', () => {
    expect(() => registerSplitPattern('(')).toThrow(TokenizerError);
    expect(() => registerSplitPattern('')).toThrow(/non-empty regex source/);
    expect(() => registerSplitPattern(5 as unknown as string)).toThrow(/got number/);
  });
});

// ---- the property: any mutation of a valid file loads a working tokenizer or is refused ----

type Path = ReadonlyArray<string | number>;

/**
 * Paths of the values in `json`, down to a few levels and the first few items of an array:
 * enough to reach every field and entry kind, and safe on a value nested thousands deep.
 */
function pathsOf(json: unknown, path: Path = [], out: Path[] = []): Path[] {
  out.push(path);
  if (path.length >= 4) return out;
  if (Array.isArray(json)) {
    json.slice(0, 6).forEach((item, index) => pathsOf(item, [...path, index], out));
  } else if (typeof json === 'object' && json !== null) {
    for (const key of Object.keys(json)) {
      pathsOf((json as Record<string, unknown>)[key], [...path, key], out);
    }
  }
  return out;
}

type Mutation =
  | { readonly kind: 'replace'; readonly value: unknown }
  | { readonly kind: 'remove' }
  | { readonly kind: 'add'; readonly key: string; readonly value: unknown };

/** `json` with one change at `path`; copies only the containers on the path (no deep clone). */
function mutate(json: unknown, path: Path, mutation: Mutation): unknown {
  if (path.length === 0) {
    if (mutation.kind === 'replace') return mutation.value;
    if (mutation.kind === 'remove') return undefined;
    if (Array.isArray(json)) return [...json, mutation.value];
    if (typeof json === 'object' && json !== null)
      return { ...json, [mutation.key]: mutation.value };
    return [json, mutation.value];
  }
  const [step, ...rest] = path;
  if (Array.isArray(json)) {
    const copy = [...(json as unknown[])];
    if (rest.length === 0 && mutation.kind === 'remove') copy.splice(step as number, 1);
    else copy[step as number] = mutate(copy[step as number], rest, mutation);
    return copy;
  }
  const copy = { ...(json as Record<string, unknown>) };
  if (rest.length === 0 && mutation.kind === 'remove') delete copy[step as string];
  else copy[step as string] = mutate(copy[step as string], rest, mutation);
  return copy;
}

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    1e308,
    -1e308,
    2 ** 53,
    2 ** 32,
    2 ** 24,
    -1,
    -0,
    0.5,
    255,
    256,
    257,
    65535,
    Number.NaN,
    Infinity,
    -Infinity,
  ),
  fc.integer({ min: -1000, max: 70_000 }),
  fc.tuple(fc.integer({ min: -10, max: 400 }), fc.integer({ min: -10, max: 400 })),
  fc.integer({ min: 1_000, max: 20_000 }).map(nested),
  fc.constantFrom(huge, '(a+)+$', '', 'ab', '🌍', '\uD800', '<|endoftext|>', 'error', 'skip', '!'),
  fc.string({ unit: 'binary', maxLength: 3 }),
  fc.constant({ replaceWith: 'h' }),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: hostileValue.map((value) => ({ kind: 'replace' as const, value })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'remove' as const }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('extra', 'replaceWith', 'vocab', '__proto__', '0'), hostileValue)
      .map(([key, value]) => ({ kind: 'add' as const, key, value })),
  },
);

/** A loaded tokenizer must work: ids round-trip through decode and encode. */
function expectWorking(tokenizer: Tokenizer): void {
  if (tokenizer instanceof CharTokenizer) {
    for (let id = 0; id < Math.min(tokenizer.vocabSize, 8); id++) {
      expect(tokenizer.encode(tokenizer.decode([id]))).toEqual([id]);
    }
  } else {
    const sample = 'the cat sat, wörld 🌍 42!';
    expect(tokenizer.decode(tokenizer.encode(sample))).toBe(sample);
  }
}

describe('tokenizer JSON readers under random mutation (property)', () => {
  for (const [name, base] of [
    ['char', charJSON()],
    ['char, error policy', { ...charJSON(), unknown: undefined }],
    ['bpe', bpeJSON()],
  ] as const) {
    it(`${name}: every mutated file loads a working tokenizer or throws TokenizerError`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 3 }),
          (steps) => {
            let json: unknown = base;
            for (const [pick, step] of steps) {
              const paths = pathsOf(json);
              json = mutate(json, paths[pick % paths.length]!, step);
            }
            let tokenizer: Tokenizer;
            try {
              tokenizer = tokenizerFromJSON(json, 'mutated.json');
            } catch (error) {
              if (!(error instanceof TokenizerError)) throw error;
              expect(error.message.startsWith('mutated.json: ')).toBe(true);
              expect(error.message.length).toBeLessThan(1000);
              return;
            }
            expectWorking(tokenizer);
          },
        ),
        { numRuns: 400 },
      );
    });
  }
});
