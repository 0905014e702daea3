import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointError } from '../index.js';
import { tinyFiles } from '../test-fixtures.js';
import {
  newRunId,
  pruneCheckpoints,
  readBoundedFile,
  readCheckpointDir,
  readPointer,
  setPointer,
  writeCheckpointDir,
} from './index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'minigpt-checkpoint-test-'));
  dirs.push(dir);
  return dir;
}

/** out/checkpoints/ckpt-000000003 with `latest` pointing at it. */
async function savedRun(): Promise<{ out: string; root: string; runId: string }> {
  const out = tempDir();
  const root = join(out, 'checkpoints');
  const runId = newRunId();
  await writeCheckpointDir(root, 'ckpt-000000003', tinyFiles(3), runId);
  await setPointer(root, 'latest', 'ckpt-000000003', runId);
  return { out, root, runId };
}

async function rejection(promise: Promise<unknown>): Promise<CheckpointError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CheckpointError);
  return error as CheckpointError;
}

describe('checkpoint directories', () => {
  it('write whole, resolve through `latest`, and read back', async () => {
    const { out, root } = await savedRun();
    expect(readdirSync(root).sort()).toEqual(['ckpt-000000003', 'latest']);
    expect(readFileSync(join(root, 'latest'), 'utf8')).toBe('ckpt-000000003\n');
    for (const path of [out, root, join(root, 'ckpt-000000003')]) {
      const read = await readCheckpointDir(path, { optimizer: true });
      expect(read.source).toBe(join(root, 'ckpt-000000003'));
      expect(read.state.iteration).toBe(3);
    }
  });

  it('leave nothing behind when a write fails, and keep the previous checkpoint', async () => {
    const { root, runId } = await savedRun();
    const files = tinyFiles(4);
    files.set('sub/model.safetensors', new Uint8Array(1)); // no such folder: the write fails
    await expect(writeCheckpointDir(root, 'ckpt-000000004', files, runId)).rejects.toThrow(
      /ENOENT/,
    );
    expect(readdirSync(root).sort()).toEqual(['ckpt-000000003', 'latest']);
    expect((await readCheckpointDir(root)).state.iteration).toBe(3);
  });

  it('replace a same-name checkpoint a killed run left behind', async () => {
    const { root, runId } = await savedRun();
    await writeCheckpointDir(root, 'ckpt-000000003', tinyFiles(3), runId);
    expect(readdirSync(root).sort()).toEqual(['ckpt-000000003', 'latest']);
  });

  it('prune only this run’s temp folders and the oldest checkpoints', async () => {
    const { root, runId } = await savedRun();
    for (const iteration of [4, 5, 6]) {
      await writeCheckpointDir(root, `ckpt-00000000${iteration}`, tinyFiles(iteration), runId);
    }
    mkdirSync(join(root, `.tmp-${runId}-ckpt-000000007`));
    mkdirSync(join(root, '.tmp-999999-abcd-ckpt-000000007')); // another run's
    await pruneCheckpoints(root, 2, new Set(['ckpt-000000003']), runId);
    expect(readdirSync(root).sort()).toEqual([
      '.tmp-999999-abcd-ckpt-000000007',
      'ckpt-000000003',
      'ckpt-000000005',
      'ckpt-000000006',
      'latest',
    ]);
  });
});

describe('pointers never lead outside their folder', () => {
  const badNames = [
    '../../outside',
    '/etc',
    'ckpt-000000003/../../x',
    'ckpt-12',
    '.tmp-1-ckpt-000000003',
    'ckpt-000000003\nckpt-000000004',
    '',
  ];
  for (const name of badNames) {
    it(`refuses a pointer naming ${JSON.stringify(name)}`, async () => {
      const { root } = await savedRun();
      writeFileSync(join(root, 'latest'), name);
      const error = await rejection(readPointer(root, 'latest'));
      expect(error.rule).toBe('pointer');
      expect(error.message).toMatch(
        new RegExp(`^${join(root, 'latest')}: does not name a checkpoint directory`),
      );
    });
  }

  it('refuses a pointer to a missing checkpoint, or to one that is a link out', async () => {
    const { root } = await savedRun();
    writeFileSync(join(root, 'latest'), 'ckpt-000000009\n');
    expect((await rejection(readPointer(root, 'latest'))).message).toBe(
      `${join(root, 'latest')}: names ckpt-000000009, which is not a directory beside it (deleted?)`,
    );
    const elsewhere = tempDir();
    symlinkSync(elsewhere, join(root, 'ckpt-000000009'));
    expect((await rejection(readPointer(root, 'latest'))).rule).toBe('outside');
  });

  it('refuses a pointer file that is too large', async () => {
    const { root } = await savedRun();
    writeFileSync(join(root, 'best'), 'ckpt-000000003'.repeat(100));
    expect((await rejection(readPointer(root, 'best'))).rule).toBe('pointer');
  });

  it('reads no pointer when there is none', async () => {
    const { root } = await savedRun();
    expect(await readPointer(root, 'best')).toBeUndefined();
  });
});

describe('checkpoint files are read with bounds', () => {
  it('refuse a file that is a link out of the checkpoint', async () => {
    const { root } = await savedRun();
    const ckpt = join(root, 'ckpt-000000003');
    const outside = join(tempDir(), 'state.json');
    writeFileSync(outside, readFileSync(join(ckpt, 'state.json')));
    rmSync(join(ckpt, 'state.json'));
    symlinkSync(outside, join(ckpt, 'state.json'));
    const error = await rejection(readCheckpointDir(ckpt));
    expect(error.rule).toBe('outside');
    expect(error.message).toMatch(
      /state\.json: leads outside .* files of a checkpoint must lie inside its directory/,
    );
  });

  it('refuse a device or a FIFO instead of waiting on it forever', async () => {
    const { root } = await savedRun();
    const ckpt = join(root, 'ckpt-000000003');
    rmSync(join(ckpt, 'tokenizer.json'));
    symlinkSync('/dev/zero', join(ckpt, 'tokenizer.json'));
    expect((await rejection(readCheckpointDir(ckpt))).rule).toBe('not-a-file');
    rmSync(join(ckpt, 'tokenizer.json'));
    execFileSync('mkfifo', [join(ckpt, 'tokenizer.json')]);
    expect((await rejection(readCheckpointDir(ckpt))).message).toMatch(
      /tokenizer\.json: is not a regular file/,
    );
  });

  it('refuse an oversized file before reading it', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'big'), new Uint8Array(100));
    const error = await rejection(readBoundedFile(join(dir, 'big'), 99));
    expect(error.message).toBe(
      `${join(dir, 'big')}: is 100 bytes, more than it can hold (at most 99): damaged, or not this file`,
    );
    expect(await readBoundedFile(join(dir, 'big'), 100)).toHaveLength(100);
  });

  it('name a missing checkpoint directory', async () => {
    const dir = tempDir();
    expect((await rejection(readCheckpointDir(join(dir, 'nope')))).message).toBe(
      `${join(dir, 'nope')}: no such checkpoint directory`,
    );
    expect((await rejection(readCheckpointDir(dir))).message).toMatch(
      /not a checkpoint \(no model\.safetensors\) and no checkpoints\/latest inside/,
    );
    expect(existsSync(join(dir, 'checkpoints'))).toBe(false);
  });
});
