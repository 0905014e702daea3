import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

describe('minigpt export / generate (spawned CLI)', () => {
  it('explains bad exports and arguments in one line', () => {
    const cwd = tempDir();
    expect(runCli(['generate', '--model', 'nowhere'], { cwd }).stderr).toMatch(
      /^minigpt: error: .*nowhere\/minigpt\.json: not found/,
    );
    expect(runCli(['export', '--checkpoint', 'nope', '--out', 'x'], { cwd }).stderr).toMatch(
      /^minigpt: error: .*nope: no such checkpoint directory/,
    );
    writeFileSync(
      join(cwd, 'minigpt.json'),
      JSON.stringify({ format: 'minigpt-onnx', formatVersion: 9 }),
    );
    const newer = runCli(['generate', '--model', '.'], { cwd });
    expect(newer.status).toBe(1);
    expect(newer.stderr).toMatch(
      /minigpt\.json: format version 9, but this runner reads version 2\. Upgrade/,
    );
    expect(readFileSync(join(cwd, 'minigpt.json'), 'utf8')).toMatch(/formatVersion/);
    // An export of the first format (model.onnx beside minigpt.json): re-export it.
    writeFileSync(
      join(cwd, 'minigpt.json'),
      JSON.stringify({ format: 'minigpt-onnx', formatVersion: 1 }),
    );
    const older = runCli(['generate', '--model', '.'], { cwd });
    expect(older.status).toBe(1);
    expect(older.stderr).toMatch(
      /format version 1, .*Re-export the checkpoint with `minigpt export`/,
    );
    expect(older.stderr.trim().split('\n')).toHaveLength(1);

    writeFileSync(join(cwd, 'empty.txt'), '\n\n');
    writeFileSync(join(cwd, 'binary.txt'), Uint8Array.of(0xff, 0xfe, 0x0a));
    writeFileSync(join(cwd, 'huge.txt'), 'a'.repeat(16 * 1024 * 1024 + 1));
    mkdirSync(join(cwd, 'folder'));
    for (const [file, message] of [
      ['empty.txt', /empty\.txt: no prompts/],
      ['missing.txt', /missing\.txt: no such prompt file/],
      ['binary.txt', /binary\.txt: not UTF-8 text/],
      ['huge.txt', /huge\.txt: over the 16777216 bytes a prompt file may have/],
      ['folder', /folder: is a directory, where a file was expected/],
    ] as const) {
      const result = runCli(['generate', '--model', '.', '--prompt-file', file], { cwd });
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(message);
    }
    const both = runCli(
      ['generate', '--model', '.', '--prompt', 'a', '--prompt-file', 'empty.txt'],
      { cwd },
    );
    expect(both.stderr).toMatch(/--prompt or --prompt-file, not both/);
  });

  it('refuses a bad --spinning or --threads, saying what it expects', () => {
    const cwd = tempDir();
    for (const bad of ['fast', '0', '2.5']) {
      const result = runCli(['generate', '--model', '.', '--spinning', bad], { cwd });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(
        `option '--spinning <setting>' argument '${bad}' is invalid. expected off, on, or whole microseconds from 1 to 1000000.`,
      );
    }
    for (const bad of ['0', 'auto', '1.5']) {
      const threads = runCli(['generate', '--model', '.', '--threads', bad], { cwd });
      expect(threads.status).toBe(1);
      expect(threads.stderr).toContain(
        `option '--threads <n>' argument '${bad}' is invalid. expected adaptive, default, or a whole number of threads from 1 to 1024.`,
      );
    }
  });
});
