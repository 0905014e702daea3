// Checkpoint → export directory in the layout of Hugging Face's ONNX exports, so
// transformers.js loads it as it is: onnx/model.onnx (and onnx/model_quantized.onnx),
// config.json, generation_config.json, tokenizer.json, tokenizer_config.json; plus
// minigpt.json (the manifest our runners read) and tokenizer.minigpt.json (minigpt's own
// tokenizer). Reads safetensors and JSON only: no TensorFlow.js at run time.
import { MinigptError } from '@minigpt/errors';
import { removeCreatedDirectories, withPath } from '@minigpt/errors/node';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { validateGPTConfig, type GPTConfig } from '@minigpt/model/config';
import { CHECKPOINT_FILES } from '@minigpt/checkpoint';
import { TEMP_PREFIX, acquireRunLock, readCheckpointDir } from '@minigpt/checkpoint/node';
import { MANIFEST_FORMAT_VERSION, type ExportManifest } from '@minigpt/runtime';
import { tokenizerFromJSON, type TokenizerJSON } from '@minigpt/tokenizer';
import { GRAPH_NAMES, IR_VERSION, OPSET, buildGptGraph, type Weight } from './gpt-graph.js';
import {
  huggingFaceConfig,
  huggingFaceGenerationConfig,
  huggingFaceTokenizer,
  huggingFaceTokenizerConfig,
} from './huggingface.js';
import { encodeModel } from './onnx.js';

/** The manifest version written: the one the runtime (and so every runner) reads. */
export const EXPORT_FORMAT_VERSION = MANIFEST_FORMAT_VERSION;
export const EXPORT_FILES = {
  model: 'onnx/model.onnx',
  modelQuantized: 'onnx/model_quantized.onnx',
  manifest: 'minigpt.json',
  vocab: 'tokenizer.minigpt.json',
  hfConfig: 'config.json',
  hfGenerationConfig: 'generation_config.json',
  hfTokenizer: 'tokenizer.json',
  hfTokenizerConfig: 'tokenizer_config.json',
} as const;

/** Files of format-1 exports, removed when a new export replaces one (force). */
const OLD_EXPORT_FILES = ['model.onnx', 'vocab.json'] as const;

export interface ExportModelOptions {
  /** 'int8': also build the int8 graph (onnx/model_quantized.onnx). */
  readonly quantize?: 'int8';
  /** Add the num_logits_to_keep input (see GraphOptions; off in exports). */
  readonly numLogitsToKeep?: boolean;
}

export class ExportError extends MinigptError {
  override name = 'ExportError';
}

export interface ExportedModel {
  readonly onnx: Uint8Array;
  /** The int8 graph, when asked for. */
  readonly onnxQuantized?: Uint8Array;
  /** minigpt.json, typed by the runtime that parses it. */
  readonly manifest: ExportManifest;
  readonly opTypes: ReadonlySet<string>;
}

/** The ONNX bytes and manifest for a model given as config + weights (GPT-2 names). */
export function exportModel(
  config: GPTConfig,
  weights: ReadonlyMap<string, Weight>,
  tokenizerType: string,
  options: ExportModelOptions = {},
): ExportedModel {
  const checked = validateGPTConfig({ ...config });
  const encode = (graph: ReturnType<typeof buildGptGraph>, what: string) =>
    encodeModel(graph, {
      irVersion: IR_VERSION,
      opset: OPSET,
      producerName: 'minigpt',
      producerVersion: String(EXPORT_FORMAT_VERSION),
      docString: `A minigpt GPT${what}: one graph for batched prefill and KV-cache decode.`,
    });
  const keep = { numLogitsToKeep: options.numLogitsToKeep ?? false };
  const graph = buildGptGraph(checked, weights, keep);
  const onnx = encode(graph, '');
  const onnxQuantized =
    options.quantize === 'int8'
      ? encode(buildGptGraph(checked, weights, { ...keep, quantize: 'int8' }), ' (int8 weights)')
      : undefined;
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
      attentionMask: GRAPH_NAMES.attentionMask,
      positionIds: GRAPH_NAMES.positionIds,
      ...(keep.numLogitsToKeep ? { numLogitsToKeep: GRAPH_NAMES.numLogitsToKeep } : {}),
      pastKey: GRAPH_NAMES.pastKey,
      pastValue: GRAPH_NAMES.pastValue,
    },
    outputs: {
      logits: GRAPH_NAMES.logits,
      presentKey: GRAPH_NAMES.presentKey,
      presentValue: GRAPH_NAMES.presentValue,
      newKey: GRAPH_NAMES.rowsKey,
      newValue: GRAPH_NAMES.rowsValue,
    },
    dtypes: { inputIds: 'int64', cache: 'float32', logits: 'float32' },
    files: {
      model: EXPORT_FILES.model,
      ...(onnxQuantized ? { modelQuantized: EXPORT_FILES.modelQuantized } : {}),
      vocab: EXPORT_FILES.vocab,
    },
    tokenizer: tokenizerType,
  };
  return { onnx, ...(onnxQuantized ? { onnxQuantized } : {}), manifest, opTypes: graph.opTypes };
}

export interface ExportCheckpointOptions {
  /** A checkpoint directory, or a training output directory (its latest checkpoint). */
  readonly checkpoint: string;
  readonly outDir: string;
  /** Replace an export already in outDir. */
  readonly force?: boolean;
  /** 'int8': also write onnx/model_quantized.onnx. */
  readonly quantize?: 'int8';
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

export interface ExportSource {
  readonly config: GPTConfig;
  /** GPT-2 names, as a checkpoint's model.safetensors has them. */
  readonly weights: ReadonlyMap<string, Weight>;
  /** The model's tokenizer, as minigpt's tokenizers write it (toJSON). */
  readonly tokenizer: TokenizerJSON;
  /** Where the weights came from, for messages. */
  readonly source?: string;
}

/**
 * Writes an export directory for a model in memory (what exportCheckpoint does after reading
 * a checkpoint): the same files, the same atomic replacement and lock.
 */
export async function writeExport(
  model: ExportSource,
  options: Omit<ExportCheckpointOptions, 'checkpoint'>,
): Promise<Omit<ExportCheckpointResult, 'checkpointDir'>> {
  const config = model.config;
  const tokenizerJson = model.tokenizer;
  const tokenizer = tokenizerFromJSON(tokenizerJson, model.source ?? 'tokenizer');
  if (tokenizer.vocabSize !== config.vocabSize)
    throw new ExportError(
      `${model.source ?? 'model'}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${config.vocabSize}`,
      { rule: 'vocab-size' },
    );
  let exported: ExportedModel;
  try {
    exported = exportModel(config, model.weights, tokenizer.type, {
      ...(options.quantize ? { quantize: options.quantize } : {}),
    });
  } catch (error) {
    if (error instanceof MinigptError) throw error;
    throw new ExportError(`${model.source ?? 'model'}: ${(error as Error).message}`, {
      cause: error,
    });
  }

  const outDir = resolve(options.outDir);
  await refuseExisting(outDir, options.force ?? false);
  const lock = await acquireRunLock(outDir, { command: 'minigpt export' });
  const temp = join(outDir, `${TEMP_PREFIX}${lock.runId}-export`);
  try {
    await mkdir(join(temp, dirname(EXPORT_FILES.model)), { recursive: true });
    const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
    const files: Array<[string, Uint8Array | string]> = [
      [EXPORT_FILES.model, exported.onnx],
      ...(exported.onnxQuantized
        ? [[EXPORT_FILES.modelQuantized, exported.onnxQuantized] as [string, Uint8Array]]
        : []),
      [EXPORT_FILES.vocab, `${JSON.stringify(tokenizerJson)}\n`],
      [
        EXPORT_FILES.hfConfig,
        json(huggingFaceConfig(config, tokenizerJson, { quantized: !!exported.onnxQuantized })),
      ],
      [EXPORT_FILES.hfGenerationConfig, json(huggingFaceGenerationConfig(config, tokenizerJson))],
      [EXPORT_FILES.hfTokenizer, `${JSON.stringify(huggingFaceTokenizer(tokenizerJson))}\n`],
      [EXPORT_FILES.hfTokenizerConfig, json(huggingFaceTokenizerConfig(config, tokenizerJson))],
      [EXPORT_FILES.manifest, json(exported.manifest)],
    ];
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
    modelBytes: exported.onnx.length,
    ...(exported.onnxQuantized ? { quantizedBytes: exported.onnxQuantized.length } : {}),
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
