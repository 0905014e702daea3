import { describe, expect, it } from 'vitest';
import {
  CheckpointError,
  LOCK_FILE,
  RunLockedError,
  checkStorageName,
  memoryStorage,
  opfsStorage,
  readRunCheckpoint,
  setRunPointer,
  writeRunCheckpoint,
} from './index.js';
import { tinyFiles } from './test-fixtures.js';
import { FakeLocks, FakeOpfs, type FakeMoves } from './test-opfs.js';
import { runStorageContract } from './test-storage-contract.js';

runStorageContract('memoryStorage', async () => ({ storage: memoryStorage('memory:runs/a') }));

const opfsVariants: Array<[FakeMoves, 'web locks' | 'lock file']> = [
  ['all', 'web locks'],
  ['files', 'lock file'],
  ['none', 'web locks'],
];
for (const [moves, locking] of opfsVariants) {
  runStorageContract(`opfsStorage (move: ${moves}, ${locking})`, async () => {
    const fs = new FakeOpfs(moves);
    const locks = locking === 'web locks' ? new FakeLocks() : null;
    return {
      storage: opfsStorage(fs.root, 'opfs:runs/a', { locks }),
      reads: () => fs.reads,
    };
  });
}

describe('storage names', () => {
  it('are relative paths of plain segments', () => {
    expect(checkStorageName('checkpoints/ckpt-000000001/model.safetensors')).toEqual([
      'checkpoints',
      'ckpt-000000001',
      'model.safetensors',
    ]);
    expect(checkStorageName('', { root: true })).toEqual([]);
    expect(() => checkStorageName('')).toThrow(/not a storage name: ""/);
    expect(() => checkStorageName('a/../b')).toThrow(RangeError);
  });

  it('show inside the location', () => {
    expect(memoryStorage().pathOf('checkpoints/latest')).toBe('memory:checkpoints/latest');
    expect(memoryStorage('memory:runs/a').pathOf('checkpoints/latest')).toBe(
      'memory:runs/a/checkpoints/latest',
    );
    expect(opfsStorage(new FakeOpfs().root, 'opfs:runs/a/').pathOf('x')).toBe('opfs:runs/a/x');
  });
});

describe('memoryStorage', () => {
  it('locks per storage object', async () => {
    const [a, b] = [memoryStorage(), memoryStorage()];
    const lock = await a.lock({ command: 'one' });
    (await b.lock({ command: 'two' })).release();
    await expect(b.writeFile('f', 'x', lock)).rejects.toThrow(RangeError); // a's lock
    lock.release();
  });
});

describe('opfsStorage', () => {
  it('takes the Web Lock of its location: a second storage there is refused, naming the first', async () => {
    const fs = new FakeOpfs();
    const locks = new FakeLocks();
    const first = opfsStorage(fs.root, 'opfs:runs/a', { locks });
    const second = opfsStorage(fs.root, 'opfs:runs/a', { locks });
    const lock = await first.lock({ command: 'train tab 1' });
    const error = await second.lock({ command: 'train tab 2' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunLockedError);
    expect((error as Error).message).toMatch(
      /^opfs:runs\/a: in use by train tab 1 \(run [\w-]+, started .*\) in this or another tab or worker\. Wait for it to finish, or choose another run$/,
    );
    expect(
      JSON.parse(new TextDecoder().decode(fs.snapshot().get(LOCK_FILE) as Uint8Array)),
    ).toEqual({ runId: lock.runId, command: 'train tab 1', startedAt: expect.any(String) });
    lock.release();
    const next = await second.lock({ command: 'train tab 2' }); // waits for the release
    expect(fs.snapshot().has(LOCK_FILE)).toBe(true);
    next.release();
    await second.lock({ command: 'again' }).then((l) => l.release());
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(locks.held.size).toBe(0);
    expect(fs.snapshot().has(LOCK_FILE)).toBe(false);
  });

  it('takes over the lock file of a page that is gone, and removes its temp leftovers', async () => {
    const fs = new FakeOpfs();
    const locks = new FakeLocks();
    const storage = opfsStorage(fs.root, 'opfs:runs/a', { locks });
    // A tab that crashed: its Web Lock went with it; its lock file and temp folders stayed.
    const crashed = opfsStorage(fs.root, 'opfs:runs/a', { locks: new FakeLocks() });
    const dead = await crashed.lock({ command: 'minigpt train' });
    await crashed.writeFile(`checkpoints/.tmp-${dead.runId}-latest`, 'ckpt-', dead);
    await crashed.writeFile(`.tmp-${dead.runId}-metrics.jsonl`, '', dead);
    const notices: string[] = [];
    const lock = await storage.lock({ command: 'resume', onNotice: (n) => notices.push(n) });
    expect(notices).toEqual([
      expect.stringMatching(
        new RegExp(
          `^opfs:runs/a: took over the lock of minigpt train \\(run ${dead.runId}, started .*\\), which is no longer running$`,
        ),
      ),
      'removed 2 temp file(s) left by a killed run',
    ]);
    expect(await storage.list('')).toEqual(['checkpoints', LOCK_FILE]);
    expect(await storage.list('checkpoints')).toEqual([]);
    lock.release();
    dead.release(); // the crashed page's release finds the file is not its own any more
  });

  it('without Web Locks, refuses a lock file it finds and takes over a damaged one', async () => {
    const fs = new FakeOpfs();
    const storage = opfsStorage(fs.root, 'opfs:runs/a', { locks: null });
    const other = opfsStorage(fs.root, 'opfs:runs/a', { locks: null });
    const lock = await other.lock({ command: 'minigpt train' });
    await expect(storage.lock({ command: 'second' })).rejects.toThrow(
      /^opfs:runs\/a: in use by minigpt train \(run .*\)\. Wait for it to finish; if nothing runs there any more, remove opfs:runs\/a\/minigpt\.lock$/,
    );
    lock.release();
    await new Promise((resolve) => setTimeout(resolve, 0));
    const file = await fs.root.getFileHandle(LOCK_FILE, { create: true });
    const writable = await file.createWritable();
    await writable.write('{"runId"');
    await writable.close();
    const notices: string[] = [];
    const taken = await storage.lock({ command: 'x', onNotice: (n) => notices.push(n) });
    expect(notices).toEqual(['opfs:runs/a/minigpt.lock: replaced a damaged lock file']);
    taken.release();
  });

  it('keeps the old file when a write fails, and lets the browser’s error through by name', async () => {
    const fs = new FakeOpfs();
    const storage = opfsStorage(fs.root, 'opfs:runs/a', { locks: new FakeLocks() });
    const lock = await storage.lock({ command: 't' });
    await storage.writeFile('checkpoints/latest', 'ckpt-000000003\n', lock);
    fs.fail = (operation) =>
      operation === 'write' ? new DOMException('quota', 'QuotaExceededError') : undefined;
    const error = await storage
      .writeFile('checkpoints/latest', 'ckpt-000000004\n', lock)
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe('QuotaExceededError');
    fs.fail = undefined;
    expect(new TextDecoder().decode(await storage.readFile('checkpoints/latest', 64))).toBe(
      'ckpt-000000003\n',
    );
    lock.release();
  });

  for (const moves of ['all', 'files'] as const) {
    it(`leaves no empty new file behind when its write fails (move: ${moves})`, async () => {
      const fs = new FakeOpfs(moves);
      const storage = opfsStorage(fs.root, 'opfs:runs/a', { locks: new FakeLocks() });
      const lock = await storage.lock({ command: 't' });
      fs.fail = (operation) =>
        operation === 'close' ? new DOMException('quota', 'QuotaExceededError') : undefined;
      await expect(
        storage.writeFile('checkpoints/latest', 'ckpt-000000004\n', lock),
      ).rejects.toThrow('quota');
      fs.fail = undefined;
      expect(await storage.list('checkpoints')).toEqual([]);
      lock.release();
    });
  }

  for (const moves of ['all', 'files', 'none'] as const) {
    it(`keeps the previous checkpoint and leaves no temp folder when a checkpoint write fails (move: ${moves})`, async () => {
      const fs = new FakeOpfs(moves);
      const storage = opfsStorage(fs.root, 'opfs:runs/a', { locks: new FakeLocks() });
      const lock = await storage.lock({ command: 't' });
      await writeRunCheckpoint(storage, 'ckpt-000000003', tinyFiles(3), lock);
      await setRunPointer(storage, 'latest', 'ckpt-000000003', lock);
      const before = fs.snapshot();
      fs.fail = (operation, file) =>
        operation === 'write' && file === 'state.json'
          ? new DOMException('quota', 'QuotaExceededError')
          : undefined;
      await expect(
        writeRunCheckpoint(storage, 'ckpt-000000004', tinyFiles(4), lock),
      ).rejects.toThrow(expect.objectContaining({ name: 'QuotaExceededError' }));
      fs.fail = undefined;
      expect(fs.snapshot()).toEqual(before);
      expect((await readRunCheckpoint(storage)).state.iteration).toBe(3);
      lock.release();
    });
  }

  it('moves a finished folder into place where the browser moves folders', async () => {
    const fs = new FakeOpfs('all');
    const storage = opfsStorage(fs.root, 'opfs:runs/a', { locks: new FakeLocks() });
    const lock = await storage.lock({ command: 't' });
    await writeRunCheckpoint(storage, 'ckpt-000000003', tinyFiles(3), lock);
    const checkpoints = await fs.root.getDirectoryHandle('checkpoints');
    const folder = await checkpoints.getDirectoryHandle('ckpt-000000003');
    await writeRunCheckpoint(storage, 'ckpt-000000003', tinyFiles(3), lock);
    // The first folder's handle now names the folder set aside and removed: a new one is in place.
    await expect(folder.getFileHandle('state.json')).rejects.toThrow(
      expect.objectContaining({ name: 'NotFoundError' }),
    );
    expect(await storage.list('checkpoints')).toEqual(['ckpt-000000003']);
    lock.release();
  });

  it('reads an oversized file without reading its bytes', async () => {
    const fs = new FakeOpfs();
    const storage = opfsStorage(fs.root, 'opfs:runs/a', { locks: new FakeLocks() });
    const lock = await storage.lock({ command: 't' });
    await storage.writeFile('checkpoints/latest', 'x'.repeat(65), lock);
    const reads = fs.reads;
    const error = await storage.readFile('checkpoints/latest', 64).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect(fs.reads).toBe(reads);
    lock.release();
  });
});
