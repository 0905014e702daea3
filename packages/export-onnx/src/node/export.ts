// An export directory on disk: a checkpoint directory (or a training output directory's
// latest checkpoint) → the files of exportFiles, written into a temp folder of this run and
// moved into place manifest last, under the directory's lock.
import { CHECKPOINT_FILES } from '@minigpt/checkpoint';
import { TEMP_PREFIX, acquireRunLock, readCheckpointDir } from '@minigpt/checkpoint/node';
import { removeCreatedDirectories, withPath } from '@minigpt/errors/node';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  EXPORT_FILES,
  ExportError,
  OLD_EXPORT_FILES,
  exportFiles,
  type ExportSource,
} from '../export.js';

export interface ExportCheckpointOptions {
  /** A checkpoint directory, or a training output directory (its latest checkpoint). */
  readonly checkpoint: string;
  readonly outDir: string;
  /** Replace an export already in outDir. */
  readonly force?: boolean;
  /** 'int8': also write onnx/model_quantized.onnx. */
  readonly quantize?: 'int8';
  /** Also write model.safetensors in GPT-2's layout (see ExportModelOptions.safetensors). */
  readonly safetensors?: boolean;
  /** Blocks of onnxruntime's com.microsoft operators (ExportModelOptions.fused). */
  readonly fused?: boolean;
}

export interface ExportCheckpointResult {
  readonly checkpointDir: string;
  readonly outDir: string;
  readonly modelBytes: number;
  /** Size of onnx/model_quantized.onnx, when written. */
  readonly quantizedBytes?: number;
  readonly manifest: Record<string, unknown>;
}

export async function exportCheckpoint(
  options: ExportCheckpointOptions,
): Promise<ExportCheckpointResult> {
  // The checkpoint reader checks every file (schemas, tokenizer, weights against the config)
  // before anything is written; the optimizer moments are not read.
  const checkpoint = await readCheckpointDir(resolve(options.checkpoint));
  const written = await writeExport(
    {
      config: checkpoint.config.model,
      weights: checkpoint.weights,
      tokenizer: checkpoint.tokenizerJson,
      source: join(checkpoint.source, CHECKPOINT_FILES.model),
    },
    options,
  );
  return { checkpointDir: checkpoint.source, ...written };
}

/**
 * Writes an export directory for a model in memory (what exportCheckpoint does after reading
 * a checkpoint): the same files, the same atomic replacement and lock.
 */
export async function writeExport(
  model: ExportSource,
  options: Omit<ExportCheckpointOptions, 'checkpoint'>,
): Promise<Omit<ExportCheckpointResult, 'checkpointDir'>> {
  const exported = exportFiles(model, {
    ...(options.quantize ? { quantize: options.quantize } : {}),
    ...(options.safetensors ? { safetensors: true } : {}),
    ...(options.fused ? { fused: true } : {}),
  });
  const outDir = resolve(options.outDir);
  await refuseExisting(outDir, options.force ?? false);
  const lock = await acquireRunLock(outDir, { command: 'minigpt export' });
  const temp = join(outDir, `${TEMP_PREFIX}${lock.runId}-export`);
  try {
    await mkdir(join(temp, dirname(EXPORT_FILES.model)), { recursive: true });
    const files = [...exported.files];
    for (const [file, data] of files) {
      // A full disk: name the file (Node's write errors on a descriptor carry no path).
      await writeFile(join(temp, file), data).catch((error: unknown) => {
        throw withPath(error, join(temp, file));
      });
    }
    // The manifest goes out first and in last: a directory without it is not an export.
    // Files of a replaced export that this one does not write go too (a stale int8 graph
    // beside a new float one would be a different model).
    await rm(join(outDir, EXPORT_FILES.manifest), { force: true });
    const written = new Set(files.map(([file]) => file));
    for (const file of [...Object.values(EXPORT_FILES), ...OLD_EXPORT_FILES]) {
      if (!written.has(file)) await rm(join(outDir, file), { force: true });
    }
    await mkdir(join(outDir, dirname(EXPORT_FILES.model)), { recursive: true });
    for (const [file] of files) await rename(join(temp, file), join(outDir, file));
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    lock.release();
    // A failed export leaves no empty folder behind.
    await removeCreatedDirectories(lock.createdDir, outDir);
    throw error;
  }
  await rm(temp, { recursive: true, force: true });
  lock.release();
  return {
    outDir,
    modelBytes: exported.modelBytes,
    ...(exported.quantizedBytes !== undefined ? { quantizedBytes: exported.quantizedBytes } : {}),
    manifest: exported.manifest,
  };
}

async function refuseExisting(outDir: string, force: boolean): Promise<void> {
  const entries = await readdir(outDir).catch(() => [] as string[]);
  const existing: string[] = [
    EXPORT_FILES.manifest,
    EXPORT_FILES.hfConfig,
    ...OLD_EXPORT_FILES,
  ].filter((file) => entries.includes(file));
  if (entries.includes(dirname(EXPORT_FILES.model))) existing.push(dirname(EXPORT_FILES.model));
  if (existing.length > 0 && !force) {
    // The rule lets a tool word the fix with its own flags (the CLI says --force).
    throw new ExportError(
      `${outDir}: already holds an export (${existing.join(', ')}). Pass force: true to replace it, or choose another outDir`,
      { file: outDir, rule: 'output-exists' },
    );
  }
}
