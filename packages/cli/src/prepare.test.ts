import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { downloadVerified } from './datasets.js';
import { runCli, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

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

  it('refuses to overwrite prepared data unless --force', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'a.txt'), 'abc\n'.repeat(50));
    expect(runCli(['prepare', '--input', 'a.txt', '--out', 'd'], { cwd }).status).toBe(0);
    const again = runCli(['prepare', '--input', 'a.txt', '--out', 'd'], { cwd });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(
      /^minigpt: error: .*\/d: already holds prepared data .*Pass --force/,
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
    expect(missing.stderr).toMatch(/missing\.txt: not found/);
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
    expect(prepare.stdout).toMatch(/--tokenizer <kind>/);
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
