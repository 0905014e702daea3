// What every RunStorage promises, as one suite run against each implementation (memory,
// a directory, OPFS over test-opfs.ts's fake), plus the run-level checkpoint helpers over it.
import { afterEach, describe, expect, it } from 'vitest';
import {
  CheckpointError,
  LOCK_FILE,
  RunLockedError,
  pruneRunCheckpoints,
  readRunCheckpoint,
  readRunPointer,
  runCheckpointSource,
  setRunPointer,
  writeRunCheckpoint,
  type RunLock,
  type RunStorage,
} from './index.js';
import { tinyFiles } from './test-fixtures.js';

export interface StorageUnderTest {
  readonly storage: RunStorage;
  /** How many times a file's bytes were read, where the implementation can tell. */
  readonly reads?: () => number;
}

const text = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes);

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('expected a rejection'),
    (error: unknown) => error,
  );
}

export function runStorageContract(label: string, make: () => Promise<StorageUnderTest>): void {
  describe(`${label}: the RunStorage contract`, () => {
    const locks: RunLock[] = [];
    afterEach(() => {
      for (const lock of locks.splice(0)) lock.release();
    });
    async function locked(): Promise<StorageUnderTest & { lock: RunLock }> {
      const under = await make();
      const lock = await under.storage.lock({ command: 'contract-test' });
      locks.push(lock);
      return { ...under, lock };
    }

    const badNames = ['/abs', '..', 'a/../b', '.', 'a/./b', '', 'a//b', 'a/', 'a\\b', 'a\0b'];
    it('refuses names that are not plain relative paths, in every method', async () => {
      const { storage, lock } = await locked();
      for (const name of badNames) {
        const calls: Array<() => unknown> = [
          () => storage.readFile(name, 10),
          () => storage.writeFile(name, 'x', lock),
          () => storage.appendFile(name, 'x', lock),
          () => storage.writeDirectory(name, new Map(), lock),
          () => storage.remove(name, lock),
        ];
        if (name !== '') {
          calls.push(
            () => storage.list(name),
            () => storage.kind(name),
            () => storage.pathOf(name),
          );
        }
        for (const call of calls) {
          const error = await Promise.resolve()
            .then(call)
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          expect(error, `${JSON.stringify(name)}: ${String(call)}`).toBeInstanceOf(RangeError);
        }
      }
      for (const file of ['a/b', '..', '']) {
        await expect(
          storage.writeDirectory('d', new Map([[file, new Uint8Array(1)]]), lock),
        ).rejects.toThrow(RangeError);
      }
      expect(await storage.kind('d')).toBeUndefined();
    });

    it('reads nothing where nothing is', async () => {
      const { storage } = await make();
      expect(await storage.readFile('none', 10)).toBeUndefined();
      expect(await storage.readFile('no/such/file', 10)).toBeUndefined();
      expect(await storage.kind('none')).toBeUndefined();
      expect(await storage.kind('no/such')).toBeUndefined();
      expect(await storage.list('none')).toEqual([]);
    });

    it('refuses a file over maxBytes before reading it', async () => {
      const { storage, lock, reads } = await locked();
      await storage.writeFile('big.bin', new Uint8Array(100).fill(7), lock);
      const before = reads?.();
      const error = await rejection(storage.readFile('big.bin', 99));
      expect(error).toBeInstanceOf(CheckpointError);
      expect((error as CheckpointError).rule).toBe('size');
      expect((error as CheckpointError).message).toBe(
        `${storage.pathOf('big.bin')}: is 100 bytes, more than it can hold (at most 99): damaged, or not this file`,
      );
      expect(reads?.()).toBe(before);
      expect(await storage.readFile('big.bin', 100)).toEqual(new Uint8Array(100).fill(7));
    });

    it('writeFile replaces a file whole and creates its folders', async () => {
      const { storage, lock } = await locked();
      await storage.writeFile('a/b/c.txt', 'a long first text', lock);
      await storage.writeFile('a/b/c.txt', 'short', lock);
      expect(text(await storage.readFile('a/b/c.txt', 100))).toBe('short');
      await storage.writeFile('a/b/c.txt', new Uint8Array([0, 255, 1]), lock);
      expect(await storage.readFile('a/b/c.txt', 100)).toEqual(new Uint8Array([0, 255, 1]));
      await storage.writeFile('a/b/é.txt', 'ünï', lock);
      expect(await storage.readFile('a/b/é.txt', 100)).toEqual(new TextEncoder().encode('ünï'));
      expect(await storage.kind('a')).toBe('directory');
      expect(await storage.kind('a/b/c.txt')).toBe('file');
      expect(await storage.list('a/b')).toEqual(['c.txt', 'é.txt']); // no temp files left
    });

    it('keeps stored bytes apart from the arrays given and returned', async () => {
      const { storage, lock } = await locked();
      const data = new Uint8Array([1, 2, 3]);
      await storage.writeFile('f', data, lock);
      data[0] = 9;
      (await storage.readFile('f', 10))![1] = 9;
      await storage.writeDirectory('d', new Map([['x', data]]), lock);
      data[1] = 8;
      expect(await storage.readFile('f', 10)).toEqual(new Uint8Array([1, 2, 3]));
      expect(await storage.readFile('d/x', 10)).toEqual(new Uint8Array([9, 2, 3]));
    });

    it('refuses to write a file where a folder is, and keeps the folder', async () => {
      const { storage, lock } = await locked();
      await storage.writeDirectory('d', new Map([['x', new Uint8Array([1])]]), lock);
      await expect(storage.writeFile('d', 'x', lock)).rejects.toThrow();
      await expect(storage.appendFile('d', 'x', lock)).rejects.toThrow();
      expect(await storage.kind('d')).toBe('directory');
      expect(await storage.readFile('d/x', 10)).toEqual(new Uint8Array([1]));
      const error = await rejection(storage.readFile('d', 10));
      expect((error as CheckpointError).rule).toBe('not-a-file');
    });

    it('appendFile creates a file and appends to it', async () => {
      const { storage, lock } = await locked();
      await storage.appendFile('logs/metrics.jsonl', '{"iter":1}\n', lock);
      await storage.appendFile('logs/metrics.jsonl', '{"iter":2}\n', lock);
      await storage.appendFile('logs/metrics.jsonl', 'ü\n', lock);
      expect(text(await storage.readFile('logs/metrics.jsonl', 100))).toBe(
        '{"iter":1}\n{"iter":2}\nü\n',
      );
    });

    it('writeDirectory writes a folder, and replaces one already there', async () => {
      const { storage, lock } = await locked();
      const first = new Map([
        ['a.bin', new Uint8Array([1, 2])],
        ['old.json', new TextEncoder().encode('{}')],
      ]);
      await storage.writeDirectory('runs/x', first, lock);
      expect(await storage.list('runs/x')).toEqual(['a.bin', 'old.json']);
      await storage.writeDirectory('runs/x', new Map([['a.bin', new Uint8Array([3])]]), lock);
      expect(await storage.list('runs/x')).toEqual(['a.bin']);
      expect(await storage.readFile('runs/x/a.bin', 10)).toEqual(new Uint8Array([3]));
      expect(await storage.list('runs')).toEqual(['x']); // no temp or set-aside folder left
      await storage.writeDirectory('empty', new Map(), lock);
      expect(await storage.kind('empty')).toBe('directory');
      expect(await storage.list('empty')).toEqual([]);
    });

    it('lists, tells kinds and removes', async () => {
      const { storage, lock } = await locked();
      await storage.writeFile('top/b.txt', 'b', lock);
      await storage.writeFile('top/a.txt', 'a', lock);
      await storage.writeDirectory('top/sub', new Map([['f', new Uint8Array(1)]]), lock);
      expect(await storage.list('top')).toEqual(['a.txt', 'b.txt', 'sub']);
      expect((await storage.list('')).filter((n) => n !== LOCK_FILE)).toEqual(['top']);
      expect(await storage.list('top/a.txt')).toEqual([]);
      expect(await storage.kind('')).toBe('directory');
      expect(await storage.kind('top/sub')).toBe('directory');
      expect(await storage.kind('top/sub/f')).toBe('file');
      await storage.remove('top/a.txt', lock);
      await storage.remove('top/sub', lock);
      await storage.remove('top/absent', lock);
      await storage.remove('no/such/thing', lock);
      expect(await storage.list('top')).toEqual(['b.txt']);
      expect(await storage.kind('top/sub/f')).toBeUndefined();
    });

    it('names paths inside its location', async () => {
      const { storage } = await make();
      expect(storage.pathOf('')).toBe(storage.location);
      expect(storage.pathOf('checkpoints/latest')).toMatch(/checkpoints[/\\]latest$/);
      expect(storage.pathOf('checkpoints/latest').startsWith(storage.location)).toBe(true);
    });

    it('lets one writer lock at a time, names it to a second, and frees it on release', async () => {
      const { storage } = await make();
      const first = await storage.lock({ command: 'test-holder' });
      const error = await rejection(storage.lock({ command: 'second' }));
      expect(error).toBeInstanceOf(RunLockedError);
      expect((error as RunLockedError).rule).toBe('locked');
      expect((error as Error).message).toMatch(
        new RegExp(`^${escape(storage.location)}: in use by test-holder \\(`),
      );
      first.release();
      first.release(); // a second release does nothing
      await expect(storage.writeFile('f', 'x', first)).rejects.toThrow(RangeError);
      const second = await storage.lock({ command: 'second' });
      locks.push(second);
      await storage.writeFile('f', 'x', second);
      expect(second.runId).not.toBe(first.runId);
    });

    it('refuses writes with a lock it did not issue', async () => {
      const { storage } = await make();
      const forged: RunLock = { runId: 'forged', release() {} };
      await expect(storage.writeFile('f', 'x', forged)).rejects.toThrow(RangeError);
      await expect(storage.remove('f', forged)).rejects.toThrow(RangeError);
    });
  });

  describe(`${label}: checkpoints of a run`, () => {
    const locks: RunLock[] = [];
    afterEach(() => {
      for (const lock of locks.splice(0)) lock.release();
    });
    async function savedRun() {
      const under = await make();
      const lock = await under.storage.lock({ command: 'contract-test' });
      locks.push(lock);
      await writeRunCheckpoint(under.storage, 'ckpt-000000003', tinyFiles(3), lock);
      await setRunPointer(under.storage, 'latest', 'ckpt-000000003', lock);
      const plant = (name: string, data: string) => under.storage.writeFile(name, data, lock);
      return { ...under, lock, plant };
    }

    it('write whole, point latest, and read back through it', async () => {
      const under = await make();
      const lock = await under.storage.lock({ command: 'contract-test' });
      locks.push(lock);
      const { storage } = under;
      expect(await writeRunCheckpoint(storage, 'ckpt-000000003', tinyFiles(3), lock)).toBe(
        storage.pathOf('checkpoints/ckpt-000000003'),
      );
      await setRunPointer(storage, 'latest', 'ckpt-000000003', lock);
      expect(await storage.list('checkpoints')).toEqual(['ckpt-000000003', 'latest']);
      expect(text(await storage.readFile('checkpoints/latest', 64))).toBe('ckpt-000000003\n');
      expect(await readRunPointer(storage, 'latest')).toBe('ckpt-000000003');
      const read = await readRunCheckpoint(storage, { optimizer: true });
      expect(read.source).toBe(storage.pathOf('checkpoints/ckpt-000000003'));
      expect(read.state.iteration).toBe(3);
      expect(read.optimizer?.step).toBe(3);
      for (const [file, bytes] of tinyFiles(3)) {
        expect(await storage.readFile(`checkpoints/ckpt-000000003/${file}`, 1e8)).toEqual(bytes);
      }
      await writeRunCheckpoint(storage, 'ckpt-000000004', tinyFiles(4), lock);
      expect((await readRunCheckpoint(storage)).state.iteration).toBe(3); // latest unchanged
      expect((await readRunCheckpoint(storage, { name: 'ckpt-000000004' })).state.iteration).toBe(
        4,
      );
    });

    it('say clearly when there is no checkpoint', async () => {
      const { storage } = await make();
      expect(await readRunPointer(storage, 'latest')).toBeUndefined();
      const error = await rejection(readRunCheckpoint(storage));
      expect(error).toBeInstanceOf(CheckpointError);
      expect((error as CheckpointError).message).toBe(
        `${storage.pathOf('checkpoints/latest')}: missing — no checkpoint has been saved here`,
      );
      const named = await rejection(readRunCheckpoint(storage, { name: 'ckpt-000000009' }));
      expect((named as CheckpointError).message).toBe(
        `${storage.pathOf('checkpoints/ckpt-000000009')}: no such checkpoint directory`,
      );
    });

    const junk = [
      '../../outside',
      '/etc',
      'ckpt-000000003/../../x',
      'ckpt-12',
      '.tmp-1-ckpt-000000003',
      'ckpt-000000003\nckpt-000000004',
      '',
    ];
    it('refuse a pointer naming junk, a missing checkpoint, or too long to be one', async () => {
      const { storage, plant } = await savedRun();
      const path = storage.pathOf('checkpoints/latest');
      for (const name of junk) {
        await plant('checkpoints/latest', name);
        const error = await rejection(readRunPointer(storage, 'latest'));
        expect(error, JSON.stringify(name)).toBeInstanceOf(CheckpointError);
        expect((error as CheckpointError).rule).toBe('pointer');
        expect((error as CheckpointError).message.startsWith(`${path}: does not name`)).toBe(true);
      }
      await plant('checkpoints/latest', 'ckpt-000000009\n');
      const missing = await rejection(readRunCheckpoint(storage));
      expect((missing as CheckpointError).rule).toBe('pointer-target');
      expect((missing as CheckpointError).message).toBe(
        `${path}: names ckpt-000000009, which is not a directory beside it (deleted?)`,
      );
      await plant('checkpoints/best', 'ckpt-000000003'.repeat(10));
      const long = await rejection(readRunPointer(storage, 'best'));
      expect((long as CheckpointError).rule).toBe('pointer');
      expect((long as CheckpointError).message).toBe(
        `${storage.pathOf('checkpoints/best')}: is too large to be a pointer file (damaged?)`,
      );
    });

    it('name a missing file of a checkpoint', async () => {
      const { storage, lock } = await savedRun();
      await storage.remove('checkpoints/ckpt-000000003/state.json', lock);
      const error = await rejection(readRunCheckpoint(storage));
      expect((error as CheckpointError).rule).toBe('missing');
      expect((error as CheckpointError).message).toBe(
        `${storage.pathOf('checkpoints/ckpt-000000003/state.json')}: missing — not a complete checkpoint`,
      );
      const source = runCheckpointSource(storage, 'ckpt-000000003');
      expect(source.pathOf('model.safetensors')).toBe(
        storage.pathOf('checkpoints/ckpt-000000003/model.safetensors'),
      );
      expect(() => runCheckpointSource(storage, '../x')).toThrow(RangeError);
    });

    it('prune this run’s temp leftovers and the oldest checkpoints, keeping protected ones', async () => {
      const { storage, lock, plant } = await savedRun();
      for (const iteration of [4, 5, 6]) {
        await writeRunCheckpoint(storage, `ckpt-00000000${iteration}`, tinyFiles(iteration), lock);
      }
      await plant(`checkpoints/.tmp-${lock.runId}-ckpt-000000007/model.safetensors`, 'x');
      await plant('checkpoints/.tmp-999999-abcd-ckpt-000000007/model.safetensors', 'x');
      await pruneRunCheckpoints(storage, 2, new Set(['ckpt-000000003']), lock);
      expect(await storage.list('checkpoints')).toEqual([
        '.tmp-999999-abcd-ckpt-000000007',
        'ckpt-000000003',
        'ckpt-000000005',
        'ckpt-000000006',
        'latest',
      ]);
      await pruneRunCheckpoints(storage, 0, new Set(), lock);
      expect(await storage.list('checkpoints')).toHaveLength(5); // keep 0 keeps all
    });

    it('refuse names that are not checkpoints', async () => {
      const { storage, lock } = await savedRun();
      await expect(setRunPointer(storage, 'latest', '../x', lock)).rejects.toThrow(RangeError);
      await expect(writeRunCheckpoint(storage, 'x', tinyFiles(3), lock)).rejects.toThrow(
        RangeError,
      );
      expect(await readRunPointer(storage, 'latest')).toBe('ckpt-000000003');
    });
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
