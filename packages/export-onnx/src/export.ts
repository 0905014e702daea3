// Checkpoint → export directory: model.onnx, minigpt.json (the manifest runners read),
// vocab.json (minigpt's tokenizer), config.json and tokenizer.json (Hugging Face forms).
// Reads safetensors and JSON only: no TensorFlow.js at run time.
import { MinigptError } from '@minigpt/errors';
import { removeCreatedDirectories, withPath } from '@minigpt/errors/node';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { validateGPTConfig, type GPTConfig } from '@minigpt/model/config';
import { CHECKPOINT_FILES } from '@minigpt/checkpoint';
import { TEMP_PREFIX, acquireRunLock, readCheckpointDir } from '@minigpt/checkpoint/node';
import { MANIFEST_FORMAT_VERSION, type ExportManifest } from '@minigpt/runtime';
import { GRAPH_NAMES, IR_VERSION, OPSET, buildGptGraph, type Weight } from './gpt-graph.js';
import { huggingFaceConfig, huggingFaceTokenizer } from './huggingface.js';
import { encodeModel } from './onnx.js';

/** The manifest version written: the one the runtime (and so every runner) reads. */
export const EXPORT_FORMAT_VERSION = MANIFEST_FORMAT_VERSION;
export const EXPORT_FILES = {
  model: 'model.onnx',
  manifest: 'minigpt.json',
  vocab: 'vocab.json',
  hfConfig: 'config.json',
  hfTokenizer: 'tokenizer.json',
} as const;

export class ExportError extends MinigptError {
  override name = 'ExportError';
}

export interface ExportedModel {
  readonly onnx: Uint8Array;
  /** minigpt.json, typed by the runtime that parses it. */
  readonly manifest: ExportManifest;
  readonly opTypes: ReadonlySet<string>;
}

/** The ONNX bytes and manifest for a model given as config + weights (GPT-2 names). */
export function exportModel(
  config: GPTConfig,
  weights: ReadonlyMap<string, Weight>,
  tokenizerType: string,
): ExportedModel {
  const checked = validateGPTConfig({ ...config });
  const graph = buildGptGraph(checked, weights);
  const onnx = encodeModel(graph, {
    irVersion: IR_VERSION,
    opset: OPSET,
    producerName: 'minigpt',
    producerVersion: String(EXPORT_FORMAT_VERSION),
    docString: 'A minigpt GPT: one graph for prefill and KV-cache decode.',
  });
  // Typed where it is written: a field the runtime's parseManifest does not know, or a
  // missing one, fails the build here instead of a runner at load time.
  const manifest: ExportManifest = {
    format: 'minigpt-onnx',
    formatVersion: EXPORT_FORMAT_VERSION,
    opset: OPSET,
    irVersion: IR_VERSION,
    model: checked,
    inputs: {
      inputIds: GRAPH_NAMES.inputIds,
      pastKey: GRAPH_NAMES.pastKey,
      pastValue: GRAPH_NAMES.pastValue,
    },
    outputs: {
      logits: GRAPH_NAMES.logits,
      presentKey: GRAPH_NAMES.presentKey,
      presentValue: GRAPH_NAMES.presentValue,
      newKey: GRAPH_NAMES.newKey,
      newValue: GRAPH_NAMES.newValue,
    },
    dtypes: { inputIds: 'int64', cache: 'float32', logits: 'float32' },
    files: { model: EXPORT_FILES.model, vocab: EXPORT_FILES.vocab },
    tokenizer: tokenizerType,
  };
  return { onnx, manifest, opTypes: graph.opTypes };
}

export interface ExportCheckpointOptions {
  /** A checkpoint directory, or a training output directory (its latest checkpoint). */
  readonly checkpoint: string;
  readonly outDir: string;
  /** Replace an export already in outDir. */
  readonly force?: boolean;
}

export interface ExportCheckpointResult {
  readonly checkpointDir: string;
  readonly outDir: string;
  readonly modelBytes: number;
  readonly manifest: Record<string, unknown>;
}

export async function exportCheckpoint(
  options: ExportCheckpointOptions,
): Promise<ExportCheckpointResult> {
  // The checkpoint reader checks every file (schemas, tokenizer, weights against the config)
  // before anything is written; the optimizer moments are not read.
  const checkpoint = await readCheckpointDir(resolve(options.checkpoint));
  const checkpointDir = checkpoint.source;
  const config = checkpoint.config.model;
  const modelPath = join(checkpointDir, CHECKPOINT_FILES.model);
  let exported: ExportedModel;
  try {
    exported = exportModel(config, checkpoint.weights, checkpoint.tokenizer.type);
  } catch (error) {
    if (error instanceof MinigptError) throw error;
    throw new ExportError(`${modelPath}: ${(error as Error).message}`, { cause: error });
  }

  const outDir = resolve(options.outDir);
  await refuseExisting(outDir, options.force ?? false);
  const lock = await acquireRunLock(outDir, { command: 'minigpt export' });
  const temp = join(outDir, `${TEMP_PREFIX}${lock.runId}-export`);
  try {
    await mkdir(temp);
    const files: Array<[string, Uint8Array | string]> = [
      [EXPORT_FILES.model, exported.onnx],
      [EXPORT_FILES.vocab, `${JSON.stringify(checkpoint.tokenizerJson)}\n`],
      [EXPORT_FILES.hfConfig, `${JSON.stringify(huggingFaceConfig(config), null, 2)}\n`],
      [
        EXPORT_FILES.hfTokenizer,
        `${JSON.stringify(huggingFaceTokenizer(checkpoint.tokenizerJson))}\n`,
      ],
      [EXPORT_FILES.manifest, `${JSON.stringify(exported.manifest, null, 2)}\n`],
    ];
    for (const [file, data] of files) {
      // A full disk: name the file (Node's write errors on a descriptor carry no path).
      await writeFile(join(temp, file), data).catch((error: unknown) => {
        throw withPath(error, join(temp, file));
      });
    }
    // The manifest goes out first and in last: a directory without it is not an export.
    await rm(join(outDir, EXPORT_FILES.manifest), { force: true });
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
  return { checkpointDir, outDir, modelBytes: exported.onnx.length, manifest: exported.manifest };
}

async function refuseExisting(outDir: string, force: boolean): Promise<void> {
  const entries = await readdir(outDir).catch(() => [] as string[]);
  const existing = Object.values(EXPORT_FILES).filter((file) => entries.includes(file));
  if (existing.length > 0 && !force) {
    throw new ExportError(
      `${outDir}: already holds an export (${existing.join(', ')}). Pass --force to replace it, or choose another --out`,
    );
  }
}
