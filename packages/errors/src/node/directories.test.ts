import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDirectory, removeCreatedDirectories, withPath } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'minigpt-dirs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('makeDirectory and removeCreatedDirectories', () => {
  it('returns the topmost folder it created, and a failed command removes exactly those', async () => {
    const deep = join(root, 'a', 'b', 'c');
    expect(await makeDirectory(deep)).toBe(join(root, 'a'));
    expect(await makeDirectory(deep)).toBeUndefined();
    await removeCreatedDirectories(join(root, 'a'), deep);
    expect(readdirSync(root)).toEqual([]);
  });

  it('keeps folders that are not empty, and those it did not create', async () => {
    mkdirSync(join(root, 'kept'));
    const dir = join(root, 'kept', 'x', 'y');
    const created = await makeDirectory(dir);
    writeFileSync(join(root, 'kept', 'x', 'file'), '');
    await removeCreatedDirectories(created, dir);
    expect(readdirSync(join(root, 'kept', 'x'))).toEqual(['file']);
    await removeCreatedDirectories(undefined, join(root, 'kept'));
    expect(readdirSync(root)).toContain('kept');
  });

  it('reports the real reason where a parent is a file', async () => {
    writeFileSync(join(root, 'plain'), '');
    await expect(makeDirectory(join(root, 'plain', 'sub'))).rejects.toMatchObject({
      code: 'ENOTDIR',
    });
  });
});

describe('withPath', () => {
  it('adds a path only where Node left none', () => {
    expect(withPath(Object.assign(new Error('x'), { code: 'ENOSPC' }), '/a')).toMatchObject({
      path: '/a',
    });
    expect(withPath(Object.assign(new Error('x'), { path: '/b' }), '/a')).toMatchObject({
      path: '/b',
    });
  });
});
