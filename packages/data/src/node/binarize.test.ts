import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpeTokenizer, CharTokenizer } from '@minigpt/tokenizer';
import { describe, expect, it } from 'vitest';
import { DataError } from '../index.js';
import { readTokens, useTempDir } from '../test-helpers.js';
import { binarize, readMeta } from './index.js';

const tempDir = useTempDir();

/** nanoGPT's data/shakespeare_char/prepare.py, reduced to what decides the bytes it writes. */
const NANOGPT_PREPARE = `
import sys
from array import array
data = open(sys.argv[1], 'r', encoding='utf-8').read()
chars = sorted(list(set(data)))
stoi = {ch: i for i, ch in enumerate(chars)}
n = len(data)
train_data = data[:int(n*0.9)]
val_data = data[int(n*0.9):]
for name, part in (('train', train_data), ('val', val_data)):
    ids = array('H', [stoi[c] for c in part])
    if sys.byteorder != 'little': ids.byteswap()
    open(sys.argv[2] + '/' + name + '.bin', 'wb').write(ids.tobytes())
print(len(chars))
`;

function sampleText(): string {
  const lines = [
    'First Citizen:\r\nBefore we proceed any further, hear me speak.\r\n',
    'Ünïcödé — 日本語 🌍🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and a lone CR\rhere.\n',
    'All:\nSpeak, speak.\n\n',
  ];
  let text = '\uFEFF';
  for (let i = 0; i < 200; i++) text += lines[i % lines.length]!.repeat(1 + (i % 3));
  return text;
}

describe('binarize', () => {
  it("writes train.bin and val.bin byte-identical to nanoGPT's prepare.py", async () => {
    const dir = tempDir();
    const input = join(dir, 'input.txt');
    writeFileSync(input, sampleText());
    const reference = join(dir, 'reference');
    execFileSync('mkdir', [reference]);
    const vocabSize = Number(
      execFileSync('python3', ['-c', NANOGPT_PREPARE, input, reference]).toString(),
    );
    // Tiny chunks put multi-byte characters, surrogate pairs and \r\n across chunk edges.
    for (const chunkBytes of [undefined, 7, 64]) {
      const out = join(dir, `out-${chunkBytes}`);
      const result = await binarize({ input, outDir: out, chunkBytes });
      expect(result.meta.vocabSize).toBe(vocabSize);
      expect(
        readFileSync(join(out, 'train.bin')).equals(readFileSync(join(reference, 'train.bin'))),
      ).toBe(true);
      expect(
        readFileSync(join(out, 'val.bin')).equals(readFileSync(join(reference, 'val.bin'))),
      ).toBe(true);
    }
  });

  it('describes the data in meta.json and saves a loadable tokenizer in vocab.json', async () => {
    const dir = tempDir();
    const input = join(dir, 'story.txt');
    const text = 'hello world\n'.repeat(100);
    writeFileSync(input, text);
    const { meta, files } = await binarize({ input, outDir: join(dir, 'out'), valFraction: 0.25 });
    expect(meta).toMatchObject({
      format: 'minigpt-data',
      formatVersion: 1,
      dtype: 'uint16',
      vocabSize: 9, // h e l o w r d, space, newline
      tokenizer: 'char',
      trainTokens: 900,
      valTokens: 300,
      source: { file: 'story.txt', bytes: 1200 },
    });
    expect(meta.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await readMeta(join(dir, 'out'))).toEqual(meta);
    const tokenizer = CharTokenizer.fromJSON(JSON.parse(readFileSync(files.vocab, 'utf8')));
    const train = readTokens(files.train);
    expect(tokenizer.decode(train)).toBe(text.slice(0, 900));
  });

  it('keeps \\r\\n when asked to', async () => {
    const dir = tempDir();
    const input = join(dir, 'crlf.txt');
    writeFileSync(input, 'a\r\nb\r\n'.repeat(10));
    const { tokenizer } = await binarize({ input, outDir: join(dir, 'out'), newlines: 'keep' });
    expect((tokenizer as CharTokenizer).vocab).toContain('\r');
  });

  it('trains BPE on the train split and round-trips both splits', async () => {
    const dir = tempDir();
    const input = join(dir, 'input.txt');
    const text = sampleText().replace(/\r\n?/g, '\n');
    writeFileSync(input, text);
    const { meta, files } = await binarize({
      input,
      outDir: join(dir, 'out'),
      tokenizer: 'bpe',
      vocabSize: 300,
      chunkBytes: 100,
    });
    expect(meta.tokenizer).toBe('bpe');
    expect(meta.dtype).toBe('uint16');
    const tokenizer = BpeTokenizer.fromJSON(JSON.parse(readFileSync(files.vocab, 'utf8')));
    const decode = (file: string) => tokenizer.decode(readTokens(file));
    const characters = [...text];
    const trainLength = Math.floor(characters.length * 0.9);
    expect(decode(files.train)).toBe(characters.slice(0, trainLength).join(''));
    expect(decode(files.val)).toBe(characters.slice(trainLength).join(''));
    expect(meta.trainTokens).toBeLessThan(trainLength);
  });

  it('writes uint32 ids when the vocabulary passes 65,536', async () => {
    const dir = tempDir();
    const input = join(dir, 'wide.txt');
    let text = '';
    // 30,000 CJK characters (below the surrogate range) and 100,000 astral ones.
    for (let codePoint = 0x4e00; codePoint < 0x4e00 + 30_000; codePoint++)
      text += String.fromCodePoint(codePoint);
    for (let codePoint = 0x20000; codePoint < 0x20000 + 100_000; codePoint++)
      text += String.fromCodePoint(codePoint);
    writeFileSync(input, text);
    const { meta, files } = await binarize({ input, outDir: join(dir, 'out') });
    expect(meta.vocabSize).toBe(130_000);
    expect(meta.dtype).toBe('uint32');
    expect(readFileSync(files.train).length).toBe(meta.trainTokens * 4);
    const ids = readTokens(files.val, 'uint32');
    expect(ids[ids.length - 1]).toBe(129_999);
  });
});

describe('binarize: bad input', () => {
  async function expectDataError(promise: Promise<unknown>, pattern: RegExp): Promise<DataError> {
    const error = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toMatch(pattern);
    return error as DataError;
  }

  it('names a missing file, a directory and an empty file', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    await expectDataError(
      binarize({ input: join(dir, 'nope.txt'), outDir: out }),
      /nope\.txt: not found\. Check the path/,
    );
    await expectDataError(binarize({ input: dir, outDir: out }), /is a directory, not a text file/);
    writeFileSync(join(dir, 'empty.txt'), '');
    await expectDataError(
      binarize({ input: join(dir, 'empty.txt'), outDir: out }),
      /empty\.txt: is empty/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('gives the byte offset of invalid UTF-8, even across chunk edges', async () => {
    const dir = tempDir();
    const input = join(dir, 'latin1.txt');
    const bytes = Buffer.concat([
      Buffer.from('caf\u00e9 ok, '.repeat(10)),
      Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20]),
    ]);
    writeFileSync(input, bytes);
    for (const chunkBytes of [undefined, 5]) {
      const error = await expectDataError(
        binarize({ input, outDir: join(dir, 'out'), chunkBytes }),
        /invalid UTF-8 at byte offset 103\. .*iconv/,
      );
      expect(error.file).toBe(input);
    }
    writeFileSync(input, Buffer.from([0x61, 0xe6, 0x97])); // ends inside a 3-byte character
    await expectDataError(
      binarize({ input, outDir: join(dir, 'out') }),
      /invalid UTF-8 at byte offset 1/,
    );
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('refuses a split too small for a block', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'tiny.txt'), 'abcdefghij');
    await expectDataError(
      binarize({ input: join(dir, 'tiny.txt'), outDir: join(dir, 'out') }),
      /the val split has 1 tokens, fewer than the 2 needed/,
    );
    await expectDataError(
      binarize({
        input: join(dir, 'tiny.txt'),
        outDir: join(dir, 'out'),
        valFraction: 0.5,
        minTokensPerSplit: 65,
      }),
      /the train split has 5 tokens, fewer than the 65 needed/,
    );
    // A failed prepare leaves no empty output folder behind.
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('refuses to overwrite prepared data without force, and replaces it with force', async () => {
    const dir = tempDir();
    const input = join(dir, 'a.txt');
    const out = join(dir, 'out');
    writeFileSync(input, 'first text\n'.repeat(20));
    await binarize({ input, outDir: out });
    const before = readFileSync(join(out, 'train.bin'));
    writeFileSync(input, 'second, other text\n'.repeat(20));
    const refused = await expectDataError(
      binarize({ input, outDir: out }),
      /already holds prepared data \(train\.bin, val\.bin, vocab\.json, meta\.json\)\. Pass force: true to replace it, or choose another outDir$/,
    );
    // The API's words, and the remedy a tool maps to its own (the CLI says --force).
    expect(refused.remedy).toBe('replace-output');
    expect(refused.problem).toBe(
      'already holds prepared data (train.bin, val.bin, vocab.json, meta.json)',
    );
    expect(readFileSync(join(out, 'train.bin')).equals(before)).toBe(true);
    await binarize({ input, outDir: out, force: true });
    expect(readFileSync(join(out, 'train.bin')).equals(before)).toBe(false);
    expect(readdirSync(out).sort()).toEqual(['meta.json', 'train.bin', 'val.bin', 'vocab.json']);
  });

  it('leaves earlier data intact and no temp files when encoding fails midway', async () => {
    const dir = tempDir();
    const input = join(dir, 'a.txt');
    const out = join(dir, 'out');
    writeFileSync(input, 'abc abc\n'.repeat(50));
    await binarize({ input, outDir: out });
    const saved = Object.fromEntries(
      readdirSync(out).map((name) => [name, readFileSync(join(out, name))]),
    );
    writeFileSync(input, `${'abc abc\n'.repeat(5000)}xyz`);
    // A given tokenizer that lacks 'x': the failure comes after train.bin was partly written.
    const tokenizer = CharTokenizer.fromText('abc \n');
    await expect(
      binarize({ input, outDir: out, tokenizer, force: true, chunkBytes: 1000 }),
    ).rejects.toThrow(/"x" \(U\+0078\)/);
    expect(readdirSync(out).sort()).toEqual(Object.keys(saved).sort());
    for (const [name, bytes] of Object.entries(saved))
      expect(readFileSync(join(out, name)).equals(bytes)).toBe(true);
  });
});
