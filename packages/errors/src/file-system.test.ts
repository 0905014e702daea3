import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSystemError, MinigptError, describeFileSystemError } from './index.js';

const root = await mkdtemp(join(tmpdir(), 'minigpt-errors-'));
afterAll(() => rm(root, { recursive: true, force: true }));

async function failure(action: () => Promise<unknown>): Promise<unknown> {
  try {
    await action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to fail');
}

describe('describeFileSystemError', () => {
  it('names the path and the fix for a real EISDIR', async () => {
    const dir = join(root, 'a-directory');
    await mkdir(dir);
    const described = describeFileSystemError(
      await failure(() => readFile(dir)),
      'reading',
      dir, // read(2) on a descriptor: Node's error has no path of its own
    );
    expect(described).toBeInstanceOf(FileSystemError);
    expect(described).toBeInstanceOf(MinigptError);
    expect(described!.code).toBe('EISDIR');
    expect(described!.message).toBe(
      `${dir}: is a directory, where a file was expected (EISDIR, reading: read failed). To fix: pass a file, or remove the directory`,
    );
  });

  it('names the path for a real ENOTDIR', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, 'x');
    const error = await failure(() => writeFile(join(file, 'inside'), 'y'));
    const described = describeFileSystemError(error);
    expect(described!.code).toBe('ENOTDIR');
    expect(described!.file).toBe(join(file, 'inside'));
  });

  it.runIf(process.platform === 'linux')('describes a real ENOSPC (/dev/full)', async () => {
    const described = describeFileSystemError(
      await failure(() => writeFile('/dev/full', 'x')),
      'saving checkpoint ckpt-000000010',
      '/dev/full',
    );
    expect(described!.message).toMatch(
      /^\/dev\/full: no space left on the device \(ENOSPC, saving checkpoint ckpt-000000010: write failed\)\. To fix: free some space/,
    );
  });

  it('blames the destination of a rename, and covers read-only and forbidden places', () => {
    const rename = Object.assign(new Error('EROFS'), {
      code: 'EROFS',
      syscall: 'rename',
      path: '/out/.tmp-1',
      dest: '/out/latest',
    });
    expect(describeFileSystemError(rename)!.message).toBe(
      '/out/latest: the file system is read-only (EROFS, rename failed). To fix: choose a writable location',
    );
    const denied = Object.assign(new Error('EACCES'), { code: 'EACCES', path: '/root/x' });
    expect(describeFileSystemError(denied)!.message).toBe(
      '/root/x: permission denied (EACCES). To fix: check its permissions, or choose another location',
    );
  });

  it('leaves bugs and other errors alone', () => {
    expect(describeFileSystemError(new TypeError('x'))).toBeUndefined();
    expect(
      describeFileSystemError(Object.assign(new Error('gone'), { code: 'ENOENT' })),
    ).toBeUndefined();
    expect(describeFileSystemError(Object.assign(new Error('x'), { code: 42 }))).toBeUndefined();
    expect(describeFileSystemError(undefined)).toBeUndefined();
  });
});
