// A full or read-only disk while training: the run stops with one line naming the path and
// what to do, the last complete checkpoint stays loadable, and no temp folder is left. The
// failures are injected into node:fs/promises (a real full disk needs privileges tests lack).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpointDir } from '@minigpt/checkpoint/node';
import { FileSystemError } from '@minigpt/errors';
import { describe, expect, it, vi } from 'vitest';
import { TrainingError } from '../index.js';
import { startTraining } from './index.js';
import { prepareData, useTempDir } from '../test-helpers.js';

/** When set, a write of a matching path fails with this errno code. */
const fault: { code?: string; match?: RegExp; syscall?: string } = {};

vi.mock('node:fs/promises', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs/promises')>();
  const failing = (path: unknown, syscall: string) => {
    if (fault.code && fault.match?.test(String(path)) && (fault.syscall ?? syscall) === syscall) {
      return Object.assign(new Error(`${fault.code}: injected, ${syscall} '${String(path)}'`), {
        code: fault.code,
        syscall,
        path: String(path),
      });
    }
    return undefined;
  };
  return {
    ...original,
    open: (async (path: Parameters<typeof original.open>[0], ...rest: unknown[]) => {
      const flags = rest[0];
      const error = flags === 'wx' ? failing(path, 'open') : undefined;
      if (error) throw error;
      return (original.open as (...args: unknown[]) => unknown)(path, ...rest);
    }) as typeof original.open,
    appendFile: (async (path: Parameters<typeof original.appendFile>[0], ...rest: unknown[]) => {
      const error = failing(path, 'write');
      if (error) throw error;
      return (original.appendFile as (...args: unknown[]) => unknown)(path, ...rest);
    }) as typeof original.appendFile,
  };
});

const tempDir = useTempDir();
const config = {
  preset: 'nano',
  maxIters: 6,
  checkpointInterval: 2,
  evalInterval: 1000,
  evalIters: 1,
};

describe('a disk that fails mid-run', () => {
  it('ENOSPC while saving: stops with one line, the last checkpoint intact and loadable', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir, 120);
    const outDir = join(dir, 'out');
    const trainer = await startTraining({ dataDir, outDir, backend: 'cpu', config });
    let error: unknown;
    try {
      for await (const event of trainer.run()) {
        // The disk fills up after the first checkpoint.
        if (event.type === 'checkpoint')
          Object.assign(fault, { code: 'ENOSPC', match: /model\.safetensors$/ });
      }
    } catch (caught) {
      error = caught;
    } finally {
      Object.assign(fault, { code: undefined });
      trainer.dispose();
    }
    expect(error).toBeInstanceOf(TrainingError);
    const checkpoints = join(outDir, 'checkpoints');
    expect((error as Error).message).toMatch(
      new RegExp(
        `^${checkpoints}/\\.tmp-[^/]+-ckpt-000000004/model\\.safetensors: no space left on the device \\(ENOSPC, saving checkpoint ckpt-000000004: open failed\\)\\. To fix: free some space, or use another disk\\. ` +
          `Training stopped at iteration 4; the last complete checkpoint, ${checkpoints}/ckpt-000000002, is intact and loadable: fix this, then continue with --resume\\.$`,
      ),
    );
    expect(readdirSync(checkpoints).sort()).toEqual(['ckpt-000000002', 'latest']);
    expect((await readCheckpointDir(outDir, { optimizer: true })).state.iteration).toBe(2);
    expect(readdirSync(outDir).sort()).toEqual(['checkpoints', 'loss.svg', 'metrics.jsonl']);
  }, 60_000);

  it('EROFS on the metrics log: one line naming the file, no checkpoint yet', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir, 120);
    const outDir = join(dir, 'out');
    const trainer = await startTraining({
      dataDir,
      outDir,
      backend: 'cpu',
      config: { ...config, logInterval: 1 },
    });
    Object.assign(fault, { code: 'EROFS', match: /metrics\.jsonl$/ });
    const error = await trainer.train().then(
      () => undefined,
      (e: unknown) => e,
    );
    Object.assign(fault, { code: undefined });
    trainer.dispose();
    expect(error).toBeInstanceOf(TrainingError);
    expect(((error as Error).cause as Error).message).toMatch(/EROFS: injected/);
    // The first write is step 1's record: the evaluation of iteration 0 follows the timed steps.
    expect((error as Error).message).toBe(
      `${join(outDir, 'metrics.jsonl')}: the file system is read-only (EROFS, writing metrics.jsonl: write failed). To fix: choose a writable location. Training stopped at iteration 1; no checkpoint had been saved yet.`,
    );
    expect(readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')).toBe('');
    expect(FileSystemError).toBeDefined();
  }, 60_000);
});
