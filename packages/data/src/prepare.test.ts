// prepareText against binarize: the same text in memory and in a file gives the same ids,
// split, tokenizer and meta.json; and bad texts are refused by name, with the rule.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Random } from '@minigpt/random';
import { CharTokenizer } from '@minigpt/tokenizer';
import { describe, expect, it } from 'vitest';
import {
  DataError,
  prepareText,
  type PrepareTextOptions,
  type TokenDataset,
  type TokenDtype,
} from './index.js';
import { binarize, openPreparedData } from './node/index.js';
import { useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

/** The bytes of a whole split as a .bin file holds them (little-endian hosts, as every CI). */
function fileBytesOf(dataset: TokenDataset, dtype: TokenDtype): Buffer {
  const window = new Int32Array(dataset.length);
  dataset.readWindow(0, window);
  return Buffer.from(
    (dtype === 'uint16' ? Uint16Array.from(window) : Uint32Array.from(window)).buffer,
  );
}

/**
 * prepareText on `text` and binarize on the same bytes in input.txt: every file binarize wrote
 * equals what prepareText holds.
 */
async function expectSameAsBinarize(
  text: string | Uint8Array,
  options: PrepareTextOptions & { readonly vocabSize?: number } = {},
): Promise<void> {
  const dir = tempDir();
  const input = join(dir, 'input.txt');
  writeFileSync(input, text);
  const { newlines, valFraction, vocabSize, tokenizer } = options;
  const result = await binarize({
    input,
    outDir: join(dir, 'data'),
    ...(newlines ? { newlines } : {}),
    ...(valFraction ? { valFraction } : {}),
    ...(vocabSize ? { vocabSize } : {}),
    ...(tokenizer ? { tokenizer } : {}),
  });
  const data = await prepareText(text, { ...options, source: 'input.txt' });
  expect(data.meta).toEqual(result.meta);
  expect(JSON.parse(readFileSync(result.files.meta, 'utf8'))).toEqual(data.meta);
  expect(fileBytesOf(data.train, data.meta.dtype).equals(readFileSync(result.files.train))).toBe(
    true,
  );
  expect(fileBytesOf(data.val, data.meta.dtype).equals(readFileSync(result.files.val))).toBe(true);
  expect(`${JSON.stringify(data.tokenizer.toJSON())}\n`).toBe(
    readFileSync(result.files.vocab, 'utf8'),
  );
  expect(data.location).toBe('input.txt');
  expect(data.train.source).toBe('input.txt (train split)');
  expect(data.val.split).toBe('val');
  // The same batches as the directory opened from disk.
  const opened = await openPreparedData(join(dir, 'data'));
  const blockSize = Math.min(4, data.val.length - 1);
  const fromMemory = data.val.sampleBatch(new Random(11), 3, blockSize);
  const fromDisk = opened.val.sampleBatch(new Random(11), 3, blockSize);
  expect(Array.from(fromMemory.x)).toEqual(Array.from(fromDisk.x));
}

const SONNET =
  'Shall I compare thee to a summer’s day?\nThou art more lovely and more temperate:\n';

describe('prepareText equals binarize on the same text', () => {
  it('char tokenizer, with astral characters and a byte-order mark', async () => {
    await expectSameAsBinarize(`\uFEFF${SONNET.repeat(20)}🌍🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 日本語\n`);
  });

  it('byte-level BPE trained on the train split, another valFraction', async () => {
    await expectSameAsBinarize(SONNET.repeat(40), {
      tokenizer: 'bpe',
      vocabSize: 300,
      valFraction: 0.2,
    });
  });

  it('\\r\\n and lone \\r under the default universal newlines, and kept with "keep"', async () => {
    const text = 'First Citizen:\r\nBefore we proceed\r\nany further, a lone CR\rhere.\r\n'.repeat(
      30,
    );
    await expectSameAsBinarize(text);
    await expectSameAsBinarize(text, { tokenizer: 'bpe', vocabSize: 280 });
    await expectSameAsBinarize(text, { newlines: 'keep' });
    const data = await prepareText(text);
    expect(data.tokenizer.encode('\n')).toHaveLength(1);
    expect(() => data.tokenizer.encode('\r')).toThrow(); // no \r left in the vocabulary
  });

  it('uint32 ids once the vocabulary passes 65,536', async () => {
    let text = '';
    for (let codePoint = 0x20000; codePoint < 0x20000 + 70_000; codePoint++)
      text += String.fromCodePoint(codePoint);
    await expectSameAsBinarize(text);
    expect((await prepareText(text)).meta.dtype).toBe('uint32');
  });

  it('UTF-8 bytes, and a ready tokenizer used as is', async () => {
    const bytes = new TextEncoder().encode(SONNET.repeat(10));
    await expectSameAsBinarize(bytes);
    const tokenizer = CharTokenizer.fromText(`${SONNET}xyz`);
    await expectSameAsBinarize(bytes, { tokenizer });
    const data = await prepareText(bytes, { tokenizer });
    expect(data.tokenizer).toBe(tokenizer);
    expect(data.meta.vocabSize).toBe(tokenizer.vocabSize);
  });
});

describe('prepareText: defaults', () => {
  it("names pasted text 'pasted text' and hashes its UTF-8 bytes", async () => {
    const data = await prepareText('abc'.repeat(10));
    expect(data.location).toBe('pasted text');
    expect(data.meta.source).toEqual({
      file: 'pasted text',
      bytes: 30,
      sha256: createHash('sha256').update('abc'.repeat(10)).digest('hex'),
    });
    expect(data.meta).toMatchObject({
      tokenizer: 'char',
      vocabSize: 3,
      trainTokens: 27,
      valTokens: 3,
    });
  });
});

describe('prepareText refuses bad text with a DataError naming it', () => {
  async function refusal(text: string | Uint8Array, options: PrepareTextOptions = {}) {
    const error = await prepareText(text, options).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DataError);
    return error as DataError;
  }

  it('an empty text, as a string or as bytes', async () => {
    expect((await refusal('')).message).toBe('pasted text: is empty. Pass a non-empty text');
    expect((await refusal(new Uint8Array(0), { source: 'drop.txt' })).message).toBe(
      'drop.txt: is empty. Pass a non-empty text',
    );
  });

  it('a text too short for both splits, or for the block the caller needs', async () => {
    expect((await refusal('abcdefghij')).message).toBe(
      'pasted text: the val split has 1 tokens, fewer than the 2 needed for one training block. Use a longer text, or a different valFraction',
    );
    expect(
      (await refusal('abcdefghij', { valFraction: 0.5, minTokensPerSplit: 65 })).message,
    ).toMatch(/^pasted text: the train split has 5 tokens, fewer than the 65 needed/);
  });

  it('invalid UTF-8 bytes, with the offset binarize gives', async () => {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('caf\u00e9 ok, '.repeat(10)),
      0x63,
      0x61,
      0x66,
      0xe9,
      0x20,
    ]);
    expect((await refusal(bytes, { source: 'latin1.txt' })).message).toMatch(
      /^latin1\.txt: invalid UTF-8 at byte offset 103\. .*iconv/,
    );
    expect((await refusal(new Uint8Array([0x61, 0xe6, 0x97]))).message).toMatch(
      /^pasted text: invalid UTF-8 at byte offset 1\./,
    );
  });

  it('a string with a lone surrogate, a bad valFraction and an unknown tokenizer', async () => {
    expect((await refusal(`ab\uD800cd`.repeat(5))).message).toMatch(
      /^pasted text: holds a lone surrogate \(U\+D800\) at UTF-16 index 2/,
    );
    expect((await refusal('abc'.repeat(9), { valFraction: 1 })).message).toBe(
      'pasted text: valFraction must be between 0 and 1 (exclusive), got 1',
    );
    expect((await refusal('abc'.repeat(9), { tokenizer: 'word' as 'char' })).message).toBe(
      `pasted text: unknown tokenizer "word"; use 'char' or 'bpe'`,
    );
  });
});
