import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CheckpointError,
  RunLockedError,
  pruneRunCheckpoints,
  readRunCheckpoint,
  readRunPointer,
  setRunPointer,
  writeRunCheckpoint,
} from '../index.js';
import { tinyFiles } from '../test-fixtures.js';
import { runStorageContract } from '../test-storage-contract.js';
import {
  DirectoryLockedError,
  LOCK_FILE,
  directoryStorage,
  newRunId,
  pruneCheckpoints,
  setPointer,
  writeCheckpointDir,
  writeFileAtomic,
} from './index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'minigpt-storage-test-'));
  dirs.push(dir);
  return dir;
}

runStorageContract('directoryStorage', async () => ({
  storage: directoryStorage(join(tempDir(), 'out')),
}));

/** Every file and folder under `dir`: relative path → bytes, or 'dir'. */
function tree(dir: string, prefix = ''): Map<string, Buffer | 'dir'> {
  const out = new Map<string, Buffer | 'dir'>();
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const path = join(prefix, name);
    if (lstatSync(join(dir, path)).isDirectory()) {
      out.set(`${path}/`, 'dir');
      for (const [inner, value] of tree(dir, path)) out.set(inner, value);
    } else {
      out.set(path, readFileSync(join(dir, path)));
    }
  }
  return out;
}

describe('directoryStorage', () => {
  it('writes the same files, byte for byte, as the directory functions', async () => {
    const before = tempDir();
    const root = join(before, 'checkpoints');
    const runId = newRunId();
    await writeFileAtomic(join(before, 'metrics.jsonl'), '', runId);
    for (const iteration of [3, 4, 5]) {
      const name = `ckpt-00000000${iteration}`;
      await writeCheckpointDir(root, name, tinyFiles(iteration), runId);
      await setPointer(root, 'latest', name, runId);
    }
    await setPointer(root, 'best', 'ckpt-000000003', runId);
    await pruneCheckpoints(root, 1, new Set(['ckpt-000000003']), runId);

    const after = join(tempDir(), 'out');
    const storage = directoryStorage(after);
    const lock = await storage.lock({ command: 'minigpt train' });
    await storage.writeFile('metrics.jsonl', '', lock);
    for (const iteration of [3, 4, 5]) {
      const name = `ckpt-00000000${iteration}`;
      await writeRunCheckpoint(storage, name, tinyFiles(iteration), lock);
      await setRunPointer(storage, 'latest', name, lock);
    }
    await setRunPointer(storage, 'best', 'ckpt-000000003', lock);
    await pruneRunCheckpoints(storage, 1, new Set(['ckpt-000000003']), lock);
    lock.release();

    const expected = tree(before);
    expect([...expected.keys()]).toEqual([
      'checkpoints/',
      'checkpoints/best',
      'checkpoints/ckpt-000000003/',
      'checkpoints/ckpt-000000003/config.json',
      'checkpoints/ckpt-000000003/model.safetensors',
      'checkpoints/ckpt-000000003/optimizer.safetensors',
      'checkpoints/ckpt-000000003/state.json',
      'checkpoints/ckpt-000000003/tokenizer.json',
      'checkpoints/ckpt-000000005/',
      'checkpoints/ckpt-000000005/config.json',
      'checkpoints/ckpt-000000005/model.safetensors',
      'checkpoints/ckpt-000000005/optimizer.safetensors',
      'checkpoints/ckpt-000000005/state.json',
      'checkpoints/ckpt-000000005/tokenizer.json',
      'checkpoints/latest',
      'metrics.jsonl',
    ]);
    expect(tree(after)).toEqual(expected);
  });

  it('locks with minigpt.lock, refusing a second run with a DirectoryLockedError (a RunLockedError)', async () => {
    const out = join(tempDir(), 'out');
    const storage = directoryStorage(out);
    const lock = await storage.lock({ command: 'minigpt train' });
    expect(lock.createdDir).toBe(out);
    expect(JSON.parse(readFileSync(join(out, LOCK_FILE), 'utf8'))).toMatchObject({
      pid: process.pid,
      runId: lock.runId,
      command: 'minigpt train',
    });
    const error = await directoryStorage(out)
      .lock({ command: 'x' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DirectoryLockedError);
    expect(error).toBeInstanceOf(RunLockedError);
    expect((error as Error).message).toMatch(
      new RegExp(`^${out}: in use by minigpt train \\(pid ${process.pid}, started `),
    );
    lock.release();
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
  });

  it('removes the temp leftovers of a killed run when it takes the lock', async () => {
    const out = tempDir();
    mkdirSync(join(out, 'checkpoints', '.tmp-1-dead-ckpt-000000010'), { recursive: true });
    writeFileSync(join(out, '.tmp-1-dead-metrics.jsonl'), '');
    const notices: string[] = [];
    const lock = await directoryStorage(out).lock({
      command: 't',
      onNotice: (n) => notices.push(n),
    });
    expect(notices).toEqual(['removed 2 temp file(s) left by a killed run']);
    expect(readdirSync(join(out, 'checkpoints'))).toEqual([]);
    lock.release();
  });

  it('refuses an oversized file before reading a byte of it', async () => {
    const out = tempDir();
    // 8 GiB, sparse: reading it first would not fit in memory.
    writeFileSync(join(out, 'huge'), '');
    truncateSync(join(out, 'huge'), 2 ** 33);
    const error = await directoryStorage(out)
      .readFile('huge', 1024)
      .catch((e: unknown) => e);
    expect((error as CheckpointError).rule).toBe('size');
    expect((error as Error).message).toBe(
      `${join(out, 'huge')}: is 8589934592 bytes, more than it can hold (at most 1024): damaged, or not this file`,
    );
  });

  it('refuses links that lead out of the run', async () => {
    const out = tempDir();
    const storage = directoryStorage(out);
    const lock = await storage.lock({ command: 't' });
    await writeRunCheckpoint(storage, 'ckpt-000000003', tinyFiles(3), lock);
    await setRunPointer(storage, 'latest', 'ckpt-000000003', lock);
    const elsewhere = tempDir();
    writeFileSync(join(elsewhere, 'state.json'), '{}');
    const state = join(out, 'checkpoints', 'ckpt-000000003', 'state.json');
    rmSync(state);
    symlinkSync(join(elsewhere, 'state.json'), state);
    const error = await readRunCheckpoint(storage).catch((e: unknown) => e);
    expect((error as CheckpointError).rule).toBe('outside');
    symlinkSync(elsewhere, join(out, 'checkpoints', 'ckpt-000000009'));
    await setRunPointer(storage, 'latest', 'ckpt-000000009', lock);
    expect(
      ((await readRunPointer(storage, 'latest').catch((e: unknown) => e)) as CheckpointError).rule,
    ).toBe('outside');
    lock.release();
  });
});
