// One writer per output directory: a lock file created exclusively (written in full under a
// temp name, then hard-linked into place, so it never exists half-written) holding the
// owner's pid and host. A lock whose process has died on this host is taken over with a
// notice; a live one (or one from another host, which cannot be checked) refuses the run.
import { hostname } from 'node:os';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MinigptError } from '@minigpt/errors';
import { makeDirectory } from '@minigpt/errors/node';
import { RunLockedError } from '../errors.js';
import { LOCK_FILE, type RunLock } from '../storage.js';
import { tempPathFor, writeFileSynced } from './files.js';
import { newRunId, removeLeftoverTemps } from './directory.js';

export { LOCK_FILE };

/** The directory is being written by another process (or a lock says so). */
export class DirectoryLockedError extends RunLockedError {
  override name = 'DirectoryLockedError';
}

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly runId: string;
  readonly command: string;
  readonly startedAt: string;
}

/** A directory's run lock: the core's RunLock, and what acquireRunLock created. */
export interface DirectoryLock extends RunLock {
  readonly dir: string;
  /**
   * The topmost folder this call created for `dir` (undefined if `dir` existed): a failed
   * command removes it again with removeCreatedDirectories if it is empty.
   */
  readonly createdDir: string | undefined;
  /**
   * Removes the lock (only if it is still this run's). Synchronous, so a run started right
   * after another's `dispose()` finds the directory free.
   */
  release(): void;
}

export interface AcquireLockOptions {
  /** What holds the lock, shown to a second run: e.g. "minigpt train". */
  readonly command?: string;
  /** Told when a dead run's lock is taken over and its leftovers removed. */
  readonly onNotice?: (message: string) => void;
  /** For tests: whether process `pid` is running on this host. */
  readonly isAlive?: (pid: number) => boolean;
}

/**
 * Takes `dir`'s lock (creating `dir` if needed), or throws DirectoryLockedError naming the
 * process that holds it. While held, temp leftovers of dead runs in `dir` and the folders
 * named in `tempDirs` are removed: no live run can own them.
 */
export async function acquireRunLock(
  dir: string,
  options: AcquireLockOptions = {},
  tempDirs: readonly string[] = [],
): Promise<DirectoryLock> {
  let createdDir: string | undefined;
  try {
    createdDir = await makeDirectory(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw error;
    throw new MinigptError(
      `${dir}: is a file, or lies under one, where an output directory belongs. Choose another output directory`,
      { file: dir, rule: 'not-a-directory', cause: error },
    );
  }
  const path = join(dir, LOCK_FILE);
  const runId = newRunId();
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    runId,
    command: options.command ?? 'minigpt',
    startedAt: new Date().toISOString(),
  };
  const isAlive = options.isAlive ?? processIsAlive;
  const draft = tempPathFor(path, runId);
  const ownerText = `${JSON.stringify(owner)}\n`;
  await writeFileSynced(draft, ownerText);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      let linked = false;
      try {
        await link(draft, path); // fails with EEXIST while another lock is in place
        linked = true;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          // A run that took the lock a moment before removed this draft with its leftover
          // temps: write it again; the next try finds that run's lock and names it.
          await writeFileSynced(draft, ownerText);
          continue;
        }
        if (code !== 'EEXIST') throw error;
      }
      if (linked) {
        const leftovers = [dir, ...tempDirs].map((d) => removeLeftoverTemps(d));
        const removed = (await Promise.all(leftovers)).flat().filter((n) => !n.includes(runId));
        if (removed.length > 0) {
          options.onNotice?.(`removed ${removed.length} temp file(s) left by a killed run`);
        }
        return {
          dir,
          runId,
          createdDir,
          release: () => releaseLock(path, runId),
        };
      }
      const holder = await readOwner(path);
      if (holder === undefined) continue; // released meanwhile: try again
      const sameHost = holder.host === owner.host;
      if (!sameHost || isAlive(holder.pid)) {
        throw new DirectoryLockedError(
          `${dir}: in use by ${holder.command} (pid ${holder.pid}${sameHost ? '' : ` on host ${holder.host}`}, started ${holder.startedAt}). ` +
            `Wait for it to finish, or choose another output directory. If that process is gone, delete ${path}`,
          { file: path, rule: 'locked' },
        );
      }
      // Dead owner: move its lock aside, and make sure what moved was that lock and not a
      // lock another process took over the same instant.
      const stale = `${path}.stale-${runId}`;
      try {
        await rename(path, stale);
      } catch {
        continue;
      }
      const moved = await readOwner(stale);
      if (moved?.runId !== holder.runId) {
        await link(stale, path).catch(() => {});
        await rm(stale, { force: true });
        continue;
      }
      await rm(stale, { force: true });
      options.onNotice?.(
        `${dir}: took over the lock of ${holder.command} (pid ${holder.pid}, started ${holder.startedAt}), which is no longer running`,
      );
    }
    throw new DirectoryLockedError(
      `${dir}: could not take its lock (${path}); another process keeps taking it. Try again`,
      { file: path, rule: 'locked' },
    );
  } finally {
    await rm(draft, { force: true });
  }
}

function releaseLock(path: string, runId: string): void {
  try {
    if ((JSON.parse(readFileSync(path, 'utf8')) as Partial<LockOwner>).runId === runId) {
      unlinkSync(path);
    }
  } catch {
    // Gone already, or not ours any more: nothing to release.
  }
}

/** The lock's owner, or undefined if there is no lock; a damaged lock reads as a dead owner. */
async function readOwner(path: string): Promise<LockOwner | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text.slice(0, 4096)) as Partial<LockOwner>;
    if (
      Number.isSafeInteger(parsed.pid) &&
      typeof parsed.host === 'string' &&
      typeof parsed.runId === 'string'
    ) {
      return {
        pid: parsed.pid!,
        host: parsed.host,
        runId: parsed.runId,
        command: typeof parsed.command === 'string' ? parsed.command.slice(0, 80) : 'minigpt',
        startedAt: typeof parsed.startedAt === 'string' ? parsed.startedAt.slice(0, 40) : '?',
      };
    }
  } catch {
    // fall through
  }
  // Not a lock this code wrote in full (links make that impossible): treat as dead, local.
  return {
    pid: -1,
    host: hostname(),
    runId: `damaged:${text.length}`,
    command: 'an unknown process',
    startedAt: '?',
  };
}

function processIsAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
