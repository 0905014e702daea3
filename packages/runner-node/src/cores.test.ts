// physicalCoreCount on sysfs trees made by the test: hardware threads paired or not, CPU lists
// with ranges, and trees it must not trust.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCpuList, physicalCoreCount } from './cores.js';

const work = mkdtempSync(join(tmpdir(), 'minigpt-cores-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A sysfs cpu directory: its online list and each CPU's thread_siblings_list. */
function sysfs(name: string, online: string, siblings: Record<number, string>): string {
  const root = join(work, name);
  mkdirSync(root);
  writeFileSync(join(root, 'online'), `${online}\n`);
  for (const [cpu, list] of Object.entries(siblings)) {
    mkdirSync(join(root, `cpu${cpu}`, 'topology'), { recursive: true });
    writeFileSync(join(root, `cpu${cpu}`, 'topology', 'thread_siblings_list'), `${list}\n`);
  }
  return root;
}

describe('physicalCoreCount', () => {
  it('counts cores, not hardware threads', () => {
    // 4 cores of 2 threads, numbered as Linux numbers them on x86 (thread 2 of core 0 is cpu4).
    const smt = sysfs('smt', '0-7', {
      0: '0,4',
      1: '1,5',
      2: '2,6',
      3: '3,7',
      4: '0,4',
      5: '1,5',
      6: '2,6',
      7: '3,7',
    });
    expect(physicalCoreCount(smt)).toBe(4);
    // Ranges in the sibling lists too (some kernels write "0-1").
    expect(
      physicalCoreCount(sysfs('ranges', '0-3', { 0: '0-1', 1: '0-1', 2: '2-3', 3: '2-3' })),
    ).toBe(2);
    // A 2-vCPU virtual machine whose CPUs are one thread each.
    expect(physicalCoreCount(sysfs('vm', '0-1', { 0: '0', 1: '1' }))).toBe(2);
    // Only online CPUs count: cpu2 is offline.
    expect(physicalCoreCount(sysfs('offline', '0-1,3', { 0: '0', 1: '1', 2: '2', 3: '3' }))).toBe(
      3,
    );
  });

  it('says nothing where sysfs does not', () => {
    expect(physicalCoreCount(join(work, 'absent'))).toBeUndefined();
    expect(physicalCoreCount(sysfs('missing-cpu', '0-1', { 0: '0' }))).toBeUndefined();
    expect(physicalCoreCount(sysfs('garbage', 'zero to three', { 0: '0' }))).toBeUndefined();
    // A CPU whose sibling list leaves itself out is not a topology to trust.
    expect(physicalCoreCount(sysfs('inconsistent', '0-1', { 0: '1', 1: '1' }))).toBeUndefined();
  });
});

describe('parseCpuList', () => {
  it('reads the kernel CPU list format and refuses anything else', () => {
    expect(parseCpuList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('5')).toEqual([5]);
    for (const bad of ['', '3-1', '0-', 'a', '0,,1', '0-99999999'])
      expect(parseCpuList(bad), bad).toBeUndefined();
  });
});
