// Checkpoint → export directory: model.onnx, minigpt.json (the manifest runners read),
// vocab.json (minigpt's tokenizer), config.json and tokenizer.json (Hugging Face forms).
// Reads safetensors and JSON only: no TensorFlow.js at run time.
import { MinigptError } from '@minigpt/errors';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { validateGPTConfig, type GPTConfig } from '@minigpt/model/config';
import { decodeSafetensors } from '@minigpt/model/safetensors';
import { tokenizerFromJSON, type TokenizerJSON } from '@minigpt/tokenizer';
import { GRAPH_NAMES, IR_VERSION, OPSET, buildGptGraph, type Weight } from './gpt-graph.js';
import { huggingFaceConfig, huggingFaceTokenizer } from './huggingface.js';
import { encodeModel } from './onnx.js';

export const EXPORT_FORMAT_VERSION = 1;
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
  readonly manifest: Record<string, unknown>;
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
  const manifest = {
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
  const checkpointDir = await resolveCheckpoint(resolve(options.checkpoint));
  const outDir = resolve(options.outDir);
  const readJson = async (file: string) => {
    const path = join(checkpointDir, file);
    try {
      return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new ExportError(
        `${path}: cannot be read as JSON (${(error as Error).message.split('\n')[0]}) — not a complete checkpoint`,
      );
    }
  };
  const config = validateGPTConfig(
    (await readJson('config.json'))['model'] as Record<string, unknown>,
  );
  const tokenizerJson = (await readJson('tokenizer.json')) as unknown as TokenizerJSON;
  const tokenizer = tokenizerFromJSON(tokenizerJson, join(checkpointDir, 'tokenizer.json'));
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new ExportError(
      `${join(checkpointDir, 'tokenizer.json')}: vocab size ${tokenizer.vocabSize} does not match the model's ${config.vocabSize}`,
    );
  }
  const modelPath = join(checkpointDir, 'model.safetensors');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(modelPath);
  } catch {
    throw new ExportError(`${modelPath}: missing — not a complete checkpoint`);
  }
  const tensors = decodeSafetensors(bytes, modelPath).tensors;
  const weights = new Map(
    [...tensors].map(([key, t]) => [key, { shape: t.shape, data: t.data as Float32Array }]),
  );
  let exported: ExportedModel;
  try {
    exported = exportModel(config, weights, tokenizer.type);
  } catch (error) {
    throw new ExportError(`${modelPath}: ${(error as Error).message}`);
  }

  await refuseExisting(outDir, options.force ?? false);
  await mkdir(outDir, { recursive: true });
  const temp = join(outDir, `.minigpt-export-${process.pid}-${Date.now().toString(36)}`);
  await mkdir(temp);
  try {
    await writeFile(join(temp, EXPORT_FILES.model), exported.onnx);
    await writeFile(join(temp, EXPORT_FILES.vocab), `${JSON.stringify(tokenizerJson)}\n`);
    await writeFile(
      join(temp, EXPORT_FILES.hfConfig),
      `${JSON.stringify(huggingFaceConfig(config), null, 2)}\n`,
    );
    await writeFile(
      join(temp, EXPORT_FILES.hfTokenizer),
      `${JSON.stringify(huggingFaceTokenizer(tokenizerJson))}\n`,
    );
    await writeFile(
      join(temp, EXPORT_FILES.manifest),
      `${JSON.stringify(exported.manifest, null, 2)}\n`,
    );
    // The manifest goes out first and in last: a directory without it is not an export.
    await rm(join(outDir, EXPORT_FILES.manifest), { force: true });
    for (const file of [
      EXPORT_FILES.model,
      EXPORT_FILES.vocab,
      EXPORT_FILES.hfConfig,
      EXPORT_FILES.hfTokenizer,
      EXPORT_FILES.manifest,
    ]) {
      await rename(join(temp, file), join(outDir, file));
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
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

async function resolveCheckpoint(path: string): Promise<string> {
  const isDir = await stat(path)
    .then((s) => s.isDirectory())
    .catch(() => false);
  if (!isDir) throw new ExportError(`${path}: no such checkpoint directory`);
  if (
    await stat(join(path, 'model.safetensors'))
      .then(() => true)
      .catch(() => false)
  )
    return path;
  for (const root of [path, join(path, 'checkpoints')]) {
    const latest = await readFile(join(root, 'latest'), 'utf8').catch(() => undefined);
    if (latest) return join(root, latest.trim());
  }
  throw new ExportError(
    `${path}: not a checkpoint (no model.safetensors) and no checkpoints/latest inside`,
  );
}
