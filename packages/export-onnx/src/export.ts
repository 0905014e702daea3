// A model → the files of an export directory in the layout of Hugging Face's ONNX exports,
// so transformers.js loads it as it is: onnx/model.onnx (and onnx/model_quantized.onnx),
// config.json, generation_config.json, tokenizer.json, tokenizer_config.json; plus
// minigpt.json (the manifest our runners read) and tokenizer.minigpt.json (minigpt's own
// tokenizer). In memory, on any platform (a browser page zips them; the `./node` entry
// writes them into a directory). No TensorFlow.js.
import { MinigptError } from '@minigpt/errors';
import { validateGPTConfig, type GPTConfig } from '@minigpt/model/config';
import { GPT2_WEIGHTS_FILE, gpt2DirectoryFiles } from '@minigpt/model/huggingface';
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
  /** With the `safetensors` option: the weights in GPT-2's layout, for PyTorch. */
  hfWeights: GPT2_WEIGHTS_FILE,
} as const;

/** Files of format-1 exports, removed when a new export replaces one (force). */
export const OLD_EXPORT_FILES = ['model.onnx', 'vocab.json'] as const;

export interface ExportModelOptions {
  /** 'int8': also build the int8 graph (onnx/model_quantized.onnx). */
  readonly quantize?: 'int8';
  /** Add the num_logits_to_keep input (see GraphOptions; off in exports). */
  readonly numLogitsToKeep?: boolean;
  /** Blocks of onnxruntime's com.microsoft operators (GraphOptions.fused). */
  readonly fused?: boolean;
  /**
   * Also write model.safetensors in GPT-2's layout (gpt2DirectoryFiles in @minigpt/model):
   * with config.json and the tokenizer files the directory is then a GPT-2 directory that
   * PyTorch's transformers (GPT2LMHeadModel.from_pretrained) and `minigpt train --init-from`
   * load. A model without biases is written with zero biases (the same function).
   */
  readonly safetensors?: boolean;
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
  const graphOptions = {
    numLogitsToKeep: options.numLogitsToKeep ?? false,
    ...(options.fused ? { fused: true } : {}),
  };
  const graph = buildGptGraph(checked, weights, graphOptions);
  const onnx = encode(graph, '');
  const onnxQuantized =
    options.quantize === 'int8'
      ? encode(
          buildGptGraph(checked, weights, { ...graphOptions, quantize: 'int8' }),
          ' (int8 weights)',
        )
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
      ...(graphOptions.numLogitsToKeep ? { numLogitsToKeep: GRAPH_NAMES.numLogitsToKeep } : {}),
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

export interface ExportSource {
  readonly config: GPTConfig;
  /** GPT-2 names, as a checkpoint's model.safetensors has them. */
  readonly weights: ReadonlyMap<string, Weight>;
  /** The model's tokenizer, as minigpt's tokenizers write it (toJSON). */
  readonly tokenizer: TokenizerJSON;
  /** Where the weights came from, for messages. */
  readonly source?: string;
}

export interface ExportFiles {
  /** Every file of the export directory, by its '/'-separated path inside it. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  readonly manifest: ExportManifest;
  readonly modelBytes: number;
  /** Size of onnx/model_quantized.onnx, when built. */
  readonly quantizedBytes?: number;
}

/**
 * The files of an export directory for a model in memory, manifest last (a writer that
 * writes in this order has no manifest until every other file is there). Checks the
 * tokenizer against the model first.
 */
export function exportFiles(model: ExportSource, options: ExportModelOptions = {}): ExportFiles {
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
    exported = exportModel(config, model.weights, tokenizer.type, options);
  } catch (error) {
    if (error instanceof MinigptError) throw error;
    throw new ExportError(`${model.source ?? 'model'}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const text = (value: string) => new TextEncoder().encode(value);
  const json = (value: unknown) => text(`${JSON.stringify(value, null, 2)}\n`);
  const files = new Map<string, Uint8Array>([
    [EXPORT_FILES.model, exported.onnx],
    ...(exported.onnxQuantized
      ? [[EXPORT_FILES.modelQuantized, exported.onnxQuantized] as [string, Uint8Array]]
      : []),
    [EXPORT_FILES.vocab, text(`${JSON.stringify(tokenizerJson)}\n`)],
    [
      EXPORT_FILES.hfConfig,
      json(huggingFaceConfig(config, tokenizerJson, { quantized: !!exported.onnxQuantized })),
    ],
    [EXPORT_FILES.hfGenerationConfig, json(huggingFaceGenerationConfig(config, tokenizerJson))],
    [EXPORT_FILES.hfTokenizer, text(`${JSON.stringify(huggingFaceTokenizer(tokenizerJson))}\n`)],
    [EXPORT_FILES.hfTokenizerConfig, json(huggingFaceTokenizerConfig(config, tokenizerJson))],
    ...(options.safetensors
      ? [
          [
            EXPORT_FILES.hfWeights,
            gpt2DirectoryFiles(config, model.weights).get(EXPORT_FILES.hfWeights)!,
          ] as [string, Uint8Array],
        ]
      : []),
    [EXPORT_FILES.manifest, json(exported.manifest)],
  ]);
  return {
    files,
    manifest: exported.manifest,
    modelBytes: exported.onnx.length,
    ...(exported.onnxQuantized ? { quantizedBytes: exported.onnxQuantized.length } : {}),
  };
}
