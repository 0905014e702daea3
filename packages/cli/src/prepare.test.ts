import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultBpeVocabSize, downloadVerified } from './datasets.js';
import { runCli, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

/** Runs a command line the CLI printed, through a shell, as a user pasting it would. */
function runPrinted(command: string, cwd: string) {
  return spawnSync('sh', ['-c', command], {
    cwd,
    env: { ...process.env, MINIGPT_CACHE_DIR: join(cwd, '.cache') },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('minigpt prepare (spawned CLI)', () => {
  it('prepares a text file and prints what it wrote', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'poem.txt'), 'Shall I compare thee to a summer’s day?\n'.repeat(40));
    const result = runCli(['prepare', '--input', 'poem.txt'], { cwd });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(
      /prepared poem \(1,680 bytes, sha256 [0-9a-f]{12}…\) → data\/poem\//,
    );
    expect(result.stdout).toMatch(/train\.bin\s+1,440 tokens \(uint16\)/);
    // Outside a clone of the repository, npx would not find the CLI: the hint names its path.
    expect(result.stdout).toMatch(/\ntrain: node \S+\/bin\/minigpt\.js train --data data\/poem\n$/);
    expect(readdirSync(join(cwd, 'data', 'poem')).sort()).toEqual([
      'meta.json',
      'train.bin',
      'val.bin',
      'vocab.json',
    ]);
    const meta = JSON.parse(readFileSync(join(cwd, 'data', 'poem', 'meta.json'), 'utf8'));
    expect(meta).toMatchObject({ trainTokens: 1440, valTokens: 160, tokenizer: 'char' });
  });

  it('prepares the default corpus offline, with no arguments', () => {
    const cwd = tempDir();
    const result = runCli(['prepare'], {
      cwd,
      env: { MINIGPT_DATASET_MIRROR: 'http://127.0.0.1:9' },
    });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/prepared moby-dick/);
    const meta = JSON.parse(readFileSync(join(cwd, 'data', 'moby-dick', 'meta.json'), 'utf8'));
    expect(meta.source.bytes).toBeGreaterThan(1_000_000);
    expect(meta.trainTokens + meta.valTokens).toBeGreaterThan(1_000_000);
    const vocab = JSON.parse(readFileSync(join(cwd, 'data', 'moby-dick', 'vocab.json'), 'utf8'));
    expect(vocab.vocab).toContain('W'); // "Call me Ishmael" is in there somewhere
  });

  it('trains a BPE tokenizer to the asked vocab size', () => {
    const cwd = tempDir();
    writeFileSync(
      join(cwd, 'text.txt'),
      'the cat sat on the mat; the dog sat on the log.\n'.repeat(200),
    );
    const result = runCli(
      [
        'prepare',
        '--input',
        'text.txt',
        '--tokenizer',
        'bpe',
        '--vocab-size',
        '265',
        '--out',
        'out',
      ],
      { cwd },
    );
    expect(result.status).toBe(0);
    const meta = JSON.parse(readFileSync(join(cwd, 'out', 'meta.json'), 'utf8'));
    expect(meta).toMatchObject({ tokenizer: 'bpe', vocabSize: 265, dtype: 'uint16' });
  });

  it('names data after the input and the tokenizer, so char and BPE data never collide', () => {
    const cwd = tempDir();
    writeFileSync(
      join(cwd, 'notes.txt'),
      'the cat sat on the mat; the dog sat on the log.\n'.repeat(400),
    );
    const char = runCli(['prepare', '--input', 'notes.txt'], { cwd });
    expect(char.status, char.stderr).toBe(0);
    expect(char.stdout).toMatch(/→ data\/notes\//);
    const bpe = runCli(['prepare', '--input', 'notes.txt', '--tokenizer', 'bpe'], { cwd });
    expect(bpe.status, bpe.stderr).toBe(0);
    expect(bpe.stdout).toMatch(/→ data\/notes-bpe512\//);
    expect(bpe.stdout).toMatch(/\ntrain: .* train --data data\/notes-bpe512\n$/);
    // The default is said, with what it costs and how to change it.
    expect(bpe.stderr).toBe(
      'BPE vocab size 512: the default for a 19 kB text (512 to 4096, growing with the text). ' +
        'A bigger vocabulary makes the text fewer tokens but each training step slower; --vocab-size to change.\n',
    );
    const asked = runCli(
      ['prepare', '--input', 'notes.txt', '--tokenizer', 'bpe', '--vocab-size', '270'],
      {
        cwd,
      },
    );
    expect(asked.status, asked.stderr).toBe(0);
    expect(asked.stderr).toBe('');
    expect(readdirSync(join(cwd, 'data')).sort()).toEqual([
      'notes',
      'notes-bpe270',
      'notes-bpe512',
    ]);
    const meta = (dir: string) =>
      JSON.parse(readFileSync(join(cwd, 'data', dir, 'meta.json'), 'utf8'));
    expect(meta('notes').tokenizer).toBe('char');
    expect(meta('notes-bpe270')).toMatchObject({ tokenizer: 'bpe', vocabSize: 270 });
  });

  it('picks the default BPE vocabulary from the text size, 512 to 4096', () => {
    expect(defaultBpeVocabSize(0)).toBe(512);
    expect(defaultBpeVocabSize(20_000)).toBe(512);
    expect(defaultBpeVocabSize(1_115_394)).toBe(1024); // tinyshakespeare
    expect(defaultBpeVocabSize(1_220_848)).toBe(1024); // Moby-Dick
    expect(defaultBpeVocabSize(3_000_000)).toBe(2048);
    expect(defaultBpeVocabSize(4 * 1024 * 1024)).toBe(4096);
    expect(defaultBpeVocabSize(1e9)).toBe(4096);
  });

  it('tells train how to make missing or damaged data, in commands that run as printed', () => {
    const cwd = tempDir();
    const train = () =>
      runCli(['train', '--maxIters=1', '--backend=cpu', '--no-progress'], { cwd }).stderr;
    const missing = train();
    expect(missing).toMatch(
      /^minigpt: error: \S+\/data\/moby-dick\/meta\.json: not found: .*\. Create it with `(node \S+ prepare)`\n$/,
    );
    const create = runPrinted(/`(.*)`/.exec(missing)![1]!, cwd);
    expect(create.status, create.stderr).toBe(0);
    expect(existsSync(join(cwd, 'data', 'moby-dick', 'meta.json'))).toBe(true);

    writeFileSync(join(cwd, 'data', 'moby-dick', 'meta.json'), '{"format": "minigpt-data",');
    const damaged = train();
    expect(damaged).toMatch(
      /meta\.json: is not valid JSON \(.*\)\. Prepare it again with `(node \S+ prepare --force)`\n$/,
    );
    expect(damaged).not.toMatch(/binarize|force: true/); // the API's words stay in the API
    const again = runPrinted(/`(.*)`/.exec(damaged)![1]!, cwd);
    expect(again.status, again.stderr).toBe(0);
    expect(
      JSON.parse(readFileSync(join(cwd, 'data', 'moby-dick', 'meta.json'), 'utf8')),
    ).toMatchObject({
      format: 'minigpt-data',
    });
  });

  it('refuses to overwrite prepared data unless --force', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'a.txt'), 'abc\n'.repeat(50));
    expect(runCli(['prepare', '--input', 'a.txt', '--out', 'd'], { cwd }).status).toBe(0);
    const again = runCli(['prepare', '--input', 'a.txt', '--out', 'd'], { cwd });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(
      /^minigpt: error: .*\/d: already holds prepared data \(train\.bin, val\.bin, vocab\.json, meta\.json\)\. Pass --force to replace it, or choose another --out directory\n$/,
    );
    expect(again.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace for a user error
    expect(runCli(['prepare', '--input', 'a.txt', '--out', 'd', '--force'], { cwd }).status).toBe(
      0,
    );
  });

  it('explains bad input in one line: missing file, invalid UTF-8, wrong flags', () => {
    const cwd = tempDir();
    const missing = runCli(['prepare', '--input', 'missing.txt'], { cwd });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(
      /missing\.txt: not found\. Check the path \(or use --dataset for a built-in corpus\)\n$/,
    );
    writeFileSync(join(cwd, 'file'), 'a file');
    expect(runCli(['prepare', '--input', 'file', '--out', 'file'], { cwd }).stderr).toMatch(
      /file: exists and is not a directory\. Choose another --out directory\n$/,
    );
    writeFileSync(join(cwd, 'bad.txt'), Buffer.from([0x68, 0x69, 0xff, 0x0a]));
    const invalid = runCli(['prepare', '--input', 'bad.txt'], { cwd });
    expect(invalid.stderr).toMatch(/bad\.txt: invalid UTF-8 at byte offset 2/);
    expect(existsSync(join(cwd, 'data', 'bad'))).toBe(false);
    const vocab = runCli(['prepare', '--input', 'bad.txt', '--vocab-size', '300'], { cwd });
    expect(vocab.stderr).toMatch(/--vocab-size applies to --tokenizer bpe only/);
    expect(runCli(['prepare', '--dataset', 'wikipedia'], { cwd }).stderr).toMatch(
      /unknown dataset "wikipedia"; built-in datasets: moby-dick, shakespeare/,
    );
    const both = runCli(['prepare', '--input', 'a.txt', '--dataset', 'moby-dick'], { cwd });
    expect(both.status).toBe(1);
    expect(both.stderr).toMatch(/cannot be used with option '--dataset/);
    const fraction = runCli(['prepare', '--val-fraction', '1.5'], { cwd });
    expect(fraction.stderr).toMatch(/expected a number between 0 and 1/);
  });

  it('prints help for every command', () => {
    const cwd = tempDir();
    const root = runCli(['--help'], { cwd });
    expect(root.status).toBe(0);
    expect(root.stdout).toMatch(/prepare \[options\]/);
    const prepare = runCli(['prepare', '--help'], { cwd });
    expect(prepare.status).toBe(0);
    expect(prepare.stdout).toMatch(/--tokenizer <kind or path>/);
    expect(prepare.stdout).toMatch(/Built-in datasets:\n\s+moby-dick/);
  });

  it('says the shakespeare download failed when offline', async () => {
    const cwd = tempDir();
    // A loopback port nobody listens on: the connection is refused at once, like offline.
    const mirror = `http://127.0.0.1:${await closedPort()}`;
    const result = runCli(['prepare', '--dataset', 'shakespeare'], {
      cwd,
      env: { MINIGPT_DATASET_MIRROR: mirror },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(
        `could not download the shakespeare dataset from ${mirror}/shakespeare/input\\.txt \\(ECONNREFUSED\\)\\. Are you offline\\?`,
      ),
    );
    // A copy put where the download would go is used (checked the same way) by the same command.
    expect(result.stderr).toContain(
      `Copy the file from a machine that has it to ${join(cwd, '.cache', 'datasets', 'shakespeare', 'input.txt')} and run this command again`,
    );
  });
});

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((listening) => probe.listen(0, '127.0.0.1', listening));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((closed) => probe.close(() => closed()));
  return port;
}

describe('downloadVerified', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((done) => (server ? server.close(() => done()) : done())));

  async function serve(body: string): Promise<string> {
    server = createServer((_request, response) => response.end(body));
    await new Promise<void>((listening) => server!.listen(0, '127.0.0.1', listening));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/input.txt`;
  }

  it('saves a download whose sha256 matches, refuses one that does not', async () => {
    const dir = tempDir();
    const text = 'To be, or not to be\n';
    const sha256 = createHash('sha256').update(text).digest('hex');
    const url = await serve(text);
    const target = join(dir, 'cache', 'input.txt');
    await downloadVerified({ url, sha256, target, name: 'test' });
    expect(readFileSync(target, 'utf8')).toBe(text);
    const other = join(dir, 'other.txt');
    await expect(
      downloadVerified({ url, sha256: '0'.repeat(64), target: other, name: 'test' }),
    ).rejects.toThrow(new RegExp(`has sha256 ${sha256}, expected 0{64}`));
    expect(existsSync(other)).toBe(false);
  });
});
