// readTokenizerFiles reads tokenizer files from elsewhere: each refusal is a typed error
// that names the file and the rule broken, and nothing oversized is read.
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpeTokenizer, TokenizerError } from '@minigpt/tokenizer';
import { afterEach, describe, expect, it } from 'vitest';
import { DataError } from '../errors.js';
import { MAX_TOKENIZER_FILE_BYTES, readTokenizerFiles } from './index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'minigpt-tokenizer-files-'));
  dirs.push(dir);
  return dir;
}

const trained = BpeTokenizer.train('the cat sat on the mat. '.repeat(50), 270, {
  specialTokens: ['<|endoftext|>'],
});

describe('readTokenizerFiles', () => {
  it("reads minigpt's own JSON as a file, and a prepared directory's vocab.json", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(trained.toJSON()));
    for (const path of [join(dir, 'vocab.json'), dir]) {
      const { tokenizer, files } = await readTokenizerFiles(path);
      expect(files).toEqual([join(dir, 'vocab.json')]);
      expect(tokenizer.toJSON()).toEqual(trained.toJSON());
    }
  });

  it('refuses hostile files with a DataError or TokenizerError naming the file', async () => {
    const dir = tempDir();
    const refused = async (path: string, error: typeof DataError | typeof TokenizerError) => {
      const failure = await readTokenizerFiles(path).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(failure).toBeInstanceOf(error);
      expect((failure as Error).message.startsWith(path)).toBe(true);
      return (failure as Error).message;
    };

    // Larger than the cap: refused from its size (a sparse file; nothing is read).
    const huge = join(dir, 'huge.json');
    writeFileSync(huge, '');
    truncateSync(huge, MAX_TOKENIZER_FILE_BYTES + 1);
    expect(await refused(huge, DataError)).toMatch(
      /is 67108865 bytes; a tokenizer file is at most 67108864 bytes \(64 MiB\)/,
    );

    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"model": ');
    expect(await refused(broken, DataError)).toMatch(/is not valid JSON/);

    const neither = join(dir, 'neither.json');
    writeFileSync(neither, JSON.stringify({ vocab: {} }));
    expect(await refused(neither, DataError)).toMatch(
      /is neither a Hugging Face tokenizer\.json \(no "model" key\) nor a minigpt tokenizer JSON/,
    );

    const wordPiece = join(dir, 'tokenizer.json');
    writeFileSync(wordPiece, JSON.stringify({ model: { type: 'WordPiece', vocab: {} } }));
    await refused(wordPiece, TokenizerError);

    const missing = join(dir, 'nowhere');
    expect(await refused(missing, DataError)).toMatch(/not found/);

    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(await refused(empty, DataError)).toMatch(
      /holds no tokenizer: expected tokenizer\.json, or vocab\.json \+ merges\.txt, or tokenizer\.minigpt\.json/,
    );

    // GPT-2's vocab.json (token → id, no "type") without its merges.txt.
    const halfGpt2 = join(dir, 'half-gpt2');
    mkdirSync(halfGpt2);
    writeFileSync(join(halfGpt2, 'vocab.json'), JSON.stringify({ '!': 0, '"': 1 }));
    expect(await refused(join(halfGpt2, 'vocab.json'), DataError)).toMatch(
      /needs merges\.txt beside it/,
    );
    expect(await refused(halfGpt2, DataError)).toMatch(/merges\.txt is not beside it/);
  });
});
