// The CLI with files it did not write, and with a second run into a busy directory: each is
// exit code 1 and one line naming the file and the rule; no stack trace, nothing left behind.
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { userErrorMessage } from './errors.js';
import { BIN, runCli, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

const nano = [
  '--preset=nano',
  '--maxIters=4',
  '--evalInterval=1000',
  '--evalIters=1',
  '--checkpointInterval=4',
  '--no-progress',
  '--backend=cpu',
];

let template: string | undefined;
afterAll(() => {
  if (template !== undefined) rmSync(template, { recursive: true, force: true });
});

/** A folder with prepared `data/` and a trained `run/` (trained once, copied for each test). */
function trainedRun(): string {
  if (template === undefined) {
    const cwd = mkdtempSync(join(tmpdir(), 'minigpt-cli-template-'));
    writeFileSync(
      join(cwd, 'input.txt'),
      'the quick brown fox jumps over the lazy dog.\n'.repeat(100),
    );
    expect(runCli(['prepare', '--input', 'input.txt', '--out', 'data'], { cwd }).status).toBe(0);
    const train = runCli(['train', '--data', 'data', '--out', 'run', ...nano], { cwd });
    expect(train.status, train.stderr).toBe(0);
    template = cwd;
  }
  const cwd = tempDir();
  cpSync(template, cwd, { recursive: true });
  return cwd;
}

/** Rewrites the safetensors header of `path` (padded to its old length) with `edit`. */
interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function editHeader(path: string, edit: (header: Record<string, HeaderEntry>) => void): void {
  const bytes = readFileSync(path);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
  edit(header);
  const text = JSON.stringify(header);
  expect(text.length).toBeLessThanOrEqual(length);
  bytes.write(text.padEnd(length, ' '), 8, 'utf8');
  writeFileSync(path, bytes);
}

function expectOneLine(result: { status: number | null; stderr: string }, message: RegExp): void {
  expect(result.status, result.stderr).toBe(1);
  expect(result.stderr).toMatch(/^minigpt: error: [^\n]+\n$/);
  expect(result.stderr).toMatch(message);
}

describe('hostile checkpoints (spawned CLI)', () => {
  const model = (cwd: string) =>
    join(cwd, 'run', 'checkpoints', 'ckpt-000000004', 'model.safetensors');
  const damage: Array<[string, (cwd: string) => void, RegExp]> = [
    [
      'an I32 weight',
      (cwd) => editHeader(model(cwd), (h) => (h['wpe.weight']!.dtype = 'I32')),
      /model\.safetensors: weight "wpe\.weight" is I32; model weights must be F32/,
    ],
    [
      'overlapping data_offsets',
      (cwd) =>
        editHeader(model(cwd), (h) => {
          const [begin, end] = h['wpe.weight']!.data_offsets;
          h['wpe.weight']!.data_offsets = [0, end - begin];
        }),
      /model\.safetensors: .*overlap/,
    ],
    [
      'a shortened header length',
      (cwd) => {
        const bytes = readFileSync(model(cwd));
        bytes.writeUInt32LE(bytes.readUInt32LE(0) - 16, 0);
        writeFileSync(model(cwd), bytes);
      },
      /model\.safetensors: /,
    ],
    [
      'a latest pointer out of the folder',
      (cwd) => writeFileSync(join(cwd, 'run', 'checkpoints', 'latest'), '../../../etc\n'),
      /checkpoints\/latest: does not name a checkpoint directory/,
    ],
  ];
  for (const [what, spoil, message] of damage) {
    it(`sample and export refuse ${what}; the export leaves no folder`, () => {
      const cwd = trainedRun();
      spoil(cwd);
      expectOneLine(
        runCli(['sample', '--checkpoint', 'run', '--backend', 'cpu'], { cwd }),
        message,
      );
      expectOneLine(
        runCli(['export', '--checkpoint', 'run', '--out', 'exported'], { cwd }),
        message,
      );
      expect(existsSync(join(cwd, 'exported'))).toBe(false);
    }, 60_000);
  }

  it('a resume refuses a state.json with a string iteration, keeping metrics.jsonl', () => {
    const cwd = trainedRun();
    const state = join(cwd, 'run', 'checkpoints', 'ckpt-000000004', 'state.json');
    writeFileSync(
      state,
      JSON.stringify({ ...JSON.parse(readFileSync(state, 'utf8')), iteration: 'x' }),
    );
    const metrics = readFileSync(join(cwd, 'run', 'metrics.jsonl'), 'utf8');
    expectOneLine(
      runCli(['train', '--data', 'data', '--out', 'run', '--resume', ...nano, '--maxIters=8'], {
        cwd,
      }),
      /state\.json: breaks the checkpoint schema: "iteration": .*got "x"/,
    );
    expect(readFileSync(join(cwd, 'run', 'metrics.jsonl'), 'utf8')).toBe(metrics);
  }, 60_000);
});

describe('one train per --out (spawned CLI)', () => {
  it('refuses a second train into a busy --out naming the first; takes over after a kill -9', async () => {
    const cwd = trainedRun();
    const args = [
      'train',
      '--data',
      'data',
      '--out',
      'run',
      '--resume',
      ...nano,
      '--maxIters=100000',
    ];
    const first = spawn(process.execPath, [BIN, ...args], {
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let stderr = '';
        first.stderr!.on('data', (chunk) => {
          stderr += chunk;
          if (stderr.includes('iter ')) resolve();
        });
        first.on('exit', () => reject(new Error(`first run ended: ${stderr}`)));
      });
      expectOneLine(
        runCli(args, { cwd }),
        new RegExp(
          `run: in use by minigpt train \\(pid ${first.pid}, started [^)]+\\)\\. Wait for it to finish`,
        ),
      );
    } finally {
      first.kill('SIGKILL');
      await new Promise((resolve) => first.once('exit', resolve));
    }
    const after = runCli([...args.slice(0, -1), '--maxIters=6'], { cwd });
    expect(after.status, after.stderr).toBe(0);
    expect(after.stderr).toMatch(
      new RegExp(
        `note: .*run: took over the lock of minigpt train \\(pid ${first.pid}, started [^)]+\\), which is no longer running`,
      ),
    );
    expect(readdirSync(join(cwd, 'run')).sort()).toEqual([
      'checkpoints',
      'loss.svg',
      'metrics.jsonl',
    ]);
  }, 90_000);

  it('names an --out that is a file', () => {
    const cwd = trainedRun();
    writeFileSync(join(cwd, 'a-file'), '');
    expectOneLine(
      runCli(['train', '--data', 'data', '--out', 'a-file', ...nano], { cwd }),
      /a-file: is a file, or lies under one, where an output directory belongs/,
    );
  }, 60_000);
});

describe('userErrorMessage', () => {
  it('gives one line for file-system failures a user can fix, and none for bugs', () => {
    const full = Object.assign(new Error('ENOSPC'), {
      code: 'ENOSPC',
      syscall: 'write',
      path: '/out/x',
    });
    expect(userErrorMessage(full)).toBe(
      '/out/x: no space left on the device (ENOSPC, write failed). To fix: free some space, or use another disk',
    );
    expect(userErrorMessage(new TypeError('bug'))).toBeUndefined();
    expect(userErrorMessage(Object.assign(new Error('gone'), { code: 'ENOENT' }))).toBeUndefined();
  });
});
