import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryLockedError, LOCK_FILE, acquireRunLock } from './index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'minigpt-lock-test-'));
  dirs.push(dir);
  return dir;
}

/** The pid of a process that has exited (so is not running). */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

describe('the run lock', () => {
  it('lets one run in and refuses a second, naming the first', async () => {
    const out = join(tempDir(), 'out');
    const first = await acquireRunLock(out, { command: 'minigpt train' });
    expect(first.createdDir).toBe(out);
    const error = await acquireRunLock(out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DirectoryLockedError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^${out}: in use by minigpt train \\(pid ${process.pid}, started .*\\)\\. Wait for it to finish, or choose another output directory\\. If that process is gone, delete ${join(out, LOCK_FILE)}$`,
      ),
    );
    first.release();
    const second = await acquireRunLock(out);
    expect(second.createdDir).toBeUndefined();
    second.release();
    expect(readdirSync(out)).toEqual([]);
  });

  it('lets exactly one of many simultaneous runs in', async () => {
    const out = tempDir();
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => acquireRunLock(out)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(DirectoryLockedError);
    }
  });

  it('takes over the lock of a dead run with a notice, and removes its temp leftovers', async () => {
    const out = tempDir();
    const pid = deadPid();
    writeFileSync(
      join(out, LOCK_FILE),
      JSON.stringify({
        pid,
        host: hostname(),
        runId: `${pid}-dead`,
        command: 'minigpt train',
        startedAt: 'then',
      }),
    );
    mkdirSync(join(out, 'checkpoints'));
    mkdirSync(join(out, 'checkpoints', `.tmp-${pid}-dead-ckpt-000000010`));
    writeFileSync(join(out, `.tmp-${pid}-dead-metrics.jsonl`), '');
    const notices: string[] = [];
    const lock = await acquireRunLock(out, { onNotice: (n) => notices.push(n) }, [
      join(out, 'checkpoints'),
    ]);
    expect(notices).toEqual([
      `${out}: took over the lock of minigpt train (pid ${pid}, started then), which is no longer running`,
      'removed 2 temp file(s) left by a killed run',
    ]);
    expect(readdirSync(join(out, 'checkpoints'))).toEqual([]);
    expect(readdirSync(out).sort()).toEqual(['checkpoints', LOCK_FILE]);
    lock.release();
  });

  it('takes over a damaged lock, and refuses one from another host', async () => {
    const out = tempDir();
    writeFileSync(join(out, LOCK_FILE), '');
    (await acquireRunLock(out)).release();
    writeFileSync(
      join(out, LOCK_FILE),
      JSON.stringify({
        pid: 1,
        host: 'elsewhere',
        runId: 'x',
        command: 'minigpt train',
        startedAt: 'then',
      }),
    );
    await expect(acquireRunLock(out, { isAlive: () => false })).rejects.toThrow(
      /in use by minigpt train \(pid 1 on host elsewhere, started then\)/,
    );
  });

  it('leaves a lock that is not its own when releasing', async () => {
    const out = tempDir();
    const lock = await acquireRunLock(out);
    writeFileSync(
      join(out, LOCK_FILE),
      JSON.stringify({ pid: 2, host: hostname(), runId: 'other' }),
    );
    lock.release();
    expect(existsSync(join(out, LOCK_FILE))).toBe(true);
  });
});
