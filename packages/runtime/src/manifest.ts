// minigpt.json, the manifest of an export directory, checked as untrusted input: format
// version, model shape within caps, graph names, dtypes, and file names that cannot leave
// the directory. It knows nothing of the graph itself: graph.ts compares the two.
import { MinigptError, checkSchema, preview } from '@minigpt/errors';
import * as z from 'zod';

/**
 * 2: the Hugging Face layout (onnx/model.onnx beside config.json, tokenizer.json, …) and a
 * batched signature (attention_mask, position_ids, num_logits_to_keep). Version 1 exports are
 * refused with a message to re-export: their graph takes neither a mask nor positions.
 */
export const MANIFEST_FORMAT_VERSION = 2;

/**
 * The caps parseManifest enforces. Each is far above any model minigpt trains (GPT-2 XL
 * would pass: 48 layers, 1600 wide, 25 heads, vocab 50,257, block 1024) and low enough
 * that no number in a hostile manifest makes a runner size an absurd buffer.
 */
export const MANIFEST_LIMITS = {
  vocabSize: 4_194_304,
  blockSize: 1_048_576,
  nLayer: 1024,
  nHead: 4096,
  nEmbd: 65_536,
  /**
   * nLayer × blockSize × nEmbd: floats in one generation's keys (and again in its values).
   * A runner holds the cache at most twice over (ping-pong buffers, or in place while it
   * grows), 16 bytes per unit: ≤ 4 GiB.
   * blockSize is the one model number the graph's signature cannot confirm.
   */
  cacheUnits: 268_435_456,
  opset: 1000,
  irVersion: 1000,
  /** Characters in a graph tensor name or name pattern. */
  graphName: 256,
  /** Characters in each file path of `files`. */
  fileName: 128,
  /** Directory levels in a file path ('onnx/model.onnx' has 2). */
  pathSegments: 4,
  /** Characters in the tokenizer kind. */
  tokenizer: 64,
} as const;

/**
 * The manifest as the exporter writes it and runners read it. A type alias, not an
 * interface, so that it stays assignable to Record<string, unknown> where callers keep it
 * as plain JSON.
 */
export type ExportManifest = {
  readonly format: 'minigpt-onnx';
  readonly formatVersion: number;
  readonly opset: number;
  /** The ONNX IR version of model.onnx; informational (the graph carries its own). */
  readonly irVersion?: number;
  readonly model: {
    readonly vocabSize: number;
    readonly blockSize: number;
    readonly nLayer: number;
    readonly nHead: number;
    readonly nEmbd: number;
    /** Training settings the exporter copies from the checkpoint; runners ignore them. */
    readonly dropout?: number;
    readonly bias?: boolean;
  };
  /** Graph names; `{i}` stands for the layer index. */
  readonly inputs: {
    readonly inputIds: string;
    /** (B, P+T) int64: 1 for a real token, 0 for a pad (rows are left-padded). */
    readonly attentionMask: string;
    /** (B, T) int64: each new token's position, counted over its row's real tokens. */
    readonly positionIds: string;
    /**
     * () int64: logits for the last k positions; 0 = all. Exports leave it out (it would
     * keep transformers.js v3 from running them); without it the graph returns every
     * position's logits.
     */
    readonly numLogitsToKeep?: string;
    readonly pastKey: string;
    readonly pastValue: string;
  };
  readonly outputs: {
    readonly logits: string;
    readonly presentKey: string;
    readonly presentValue: string;
    /**
     * This step's cache rows only, (B, nh, T, hs): present = concat(past, new) on the
     * sequence axis. Values inside the graph, not declared outputs: a runner that keeps the
     * cache itself declares them as outputs in present's place (cacheRowsModel) and
     * fetches them instead. Optional: a graph without them is run through present alone.
     */
    readonly newKey?: string;
    readonly newValue?: string;
  };
  readonly dtypes: {
    readonly inputIds: 'int64';
    readonly cache: 'float32';
    readonly logits: 'float32';
  };
  /**
   * Paths inside the export directory (or under its base URL), '/'-separated plain names:
   * the float32 graph, the int8 one when exported, and minigpt's tokenizer JSON.
   */
  readonly files: {
    readonly model: string;
    readonly modelQuantized?: string;
    readonly vocab: string;
  };
  readonly tokenizer: string;
};

export class ManifestError extends MinigptError {
  override name = 'ManifestError';
}

const FIX = 'Re-export the checkpoint with `minigpt export`, or fix this field';

/**
 * Checks a parsed minigpt.json; `source` names the file in errors. Every problem is a
 * `ManifestError` reading `<source>: "<field>": <rule>, got <value>. <fix>`.
 *
 * Unknown keys, at any level, are accepted and dropped from the result: a newer exporter
 * of the same format version may add information (as `irVersion` was added), and a change
 * that older runners must not ignore bumps `formatVersion` instead. Nothing the runners use
 * comes from a key this parser does not check.
 */
export function parseManifest(json: unknown, source = 'minigpt.json'): ExportManifest {
  const fail = (problem: string, rule: string): never => {
    throw new ManifestError(`${source}: ${problem}`, { file: source, rule });
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    return fail(
      `not a JSON object (got ${preview(json)}), so not a minigpt export manifest. Pass the directory \`minigpt export\` wrote`,
      'format',
    );
  const { format, formatVersion } = json as Record<string, unknown>;
  if (format !== 'minigpt-onnx')
    fail(
      `not a minigpt export manifest (no "format": "minigpt-onnx", got ${format === undefined ? 'none' : preview(format)}). Pass the directory \`minigpt export\` wrote`,
      'format',
    );
  if (formatVersion !== MANIFEST_FORMAT_VERSION) {
    const newer = typeof formatVersion === 'number' && formatVersion > MANIFEST_FORMAT_VERSION;
    fail(
      `format version ${preview(formatVersion)}, but this runner reads version ${MANIFEST_FORMAT_VERSION}. ` +
        (newer
          ? 'Upgrade @minigpt/runtime and the runner.'
          : 'Re-export the checkpoint with `minigpt export`.'),
      'format-version',
    );
  }
  return checkSchema(manifestSchema, json, (problem) => fail(`${problem}. ${FIX}`, 'schema'));
}

/** The graph name of layer `layer`'s tensor from a `{i}` pattern. */
export function layerName(pattern: string, layer: number): string {
  return pattern.replace('{i}', String(layer));
}

export interface CacheNames {
  /** The past input. */
  readonly input: string;
  /** The present output that feeds it next step. */
  readonly output: string;
  /** The output holding only this step's rows, when the export has it. */
  readonly added?: string;
}

/** Which graph of an export: float32 (default), or the int8 one (`minigpt export --quantize int8`); named as transformers.js's dtype. */
export type ModelDtype = 'fp32' | 'q8';

/**
 * The export's model file for `dtype`, or, when it has none, what to tell the user (the
 * runner prefixes the manifest's path and throws its own error type).
 */
export function modelFileFor(
  manifest: ExportManifest,
  dtype: ModelDtype,
): { readonly file: string } | { readonly missing: string } {
  const file = dtype === 'q8' ? manifest.files.modelQuantized : manifest.files.model;
  return file !== undefined
    ? { file }
    : {
        missing:
          "this export has no int8 model (no files.modelQuantized). Export it with `minigpt export --quantize int8`, or load dtype 'fp32'",
      };
}

/**
 * Why the export's tokenizer file does not belong to its model (its vocabulary size differs
 * from minigpt.json's), or undefined when it does; the runner prefixes the tokenizer's path
 * and throws its own error type.
 */
export function tokenizerMismatch(
  tokenizer: { readonly vocabSize: number },
  manifest: ExportManifest,
): string | undefined {
  return tokenizer.vocabSize === manifest.model.vocabSize
    ? undefined
    : `the tokenizer has ${tokenizer.vocabSize} tokens but the model (minigpt.json) has ${manifest.model.vocabSize}: they are not from the same export`;
}

/** Each cache input and the outputs that feed it next step, layer by layer (key, then value). */
export function cacheNames(manifest: ExportManifest): CacheNames[] {
  const { pastKey, pastValue } = manifest.inputs;
  const { presentKey, presentValue, newKey, newValue } = manifest.outputs;
  const names: CacheNames[] = [];
  for (let layer = 0; layer < manifest.model.nLayer; layer++) {
    for (const [input, output, added] of [
      [pastKey, presentKey, newKey],
      [pastValue, presentValue, newValue],
    ] as const) {
      names.push({
        input: layerName(input, layer),
        output: layerName(output, layer),
        ...(added ? { added: layerName(added, layer) } : {}),
      });
    }
  }
  return names;
}

/** Why `path` is not a relative path of plain names ('onnx/model.onnx'), or undefined. */
function filePathProblem(path: string): string | undefined {
  if (path.length > MANIFEST_LIMITS.fileName)
    return `is longer than ${MANIFEST_LIMITS.fileName} characters`;
  if (path.includes('\\')) return "contains '\\' (paths are '/'-separated)";
  const segments = path.split('/');
  if (segments.length > MANIFEST_LIMITS.pathSegments)
    return `has more than ${MANIFEST_LIMITS.pathSegments} levels`;
  for (const segment of segments) {
    const problem = fileNameProblem(segment);
    if (problem !== undefined)
      return segments.length === 1 ? problem : `has a part ${preview(segment)} that ${problem}`;
  }
  return undefined;
}

/**
 * Why `name` is not a plain file name inside a directory, or undefined when it is one.
 * Only letters, digits, '.', '_' and '-' are allowed, so no separator ('/', '\'), no drive
 * letter or URL scheme (':'), no percent-escape ('%2e%2e' is '..' to a URL parser), no
 * query or fragment, and no control character can appear; '.', '..' and Windows device
 * names (reading `CON` waits for console input) are refused by name.
 */
function fileNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MANIFEST_LIMITS.fileName)
    return `is longer than ${MANIFEST_LIMITS.fileName} characters`;
  if (name.includes('\0')) return 'contains a NUL character';
  if (name.includes('/') || name.includes('\\')) return "is a path (contains '/' or '\\')";
  if (name.includes(':')) return "is a URL or drive path (contains ':')";
  if (name.includes('..')) return "contains '..'";
  if (name.startsWith('.')) return "starts with '.'";
  if (!/^[A-Za-z0-9._-]+$/.test(name))
    return "has characters other than letters, digits, '.', '_' and '-'";
  if (name.endsWith('.')) return "ends with '.'";
  if (/^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i.test(name)) return 'is a Windows device name';
  return undefined;
}

const filePath = z.string().superRefine((path, context) => {
  const problem = filePathProblem(path);
  if (problem !== undefined)
    context.addIssue({
      code: 'custom',
      message: `must be a path of plain names inside the export directory, but it ${problem}`,
    });
});

const graphName = z
  .string()
  .min(1)
  .max(MANIFEST_LIMITS.graphName)
  // Names appear in error messages, which stay one line.
  .refine((name) => ![...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f), {
    message: 'must not contain control characters',
  });

/** A name without a layer index (input_ids, logits). */
const plainGraphName = graphName.refine((name) => !name.includes('{i}'), {
  message: 'must not contain "{i}": this tensor is not per layer',
});

/** A per-layer name: `{i}` marks where the layer index goes, exactly once. */
const layerPattern = graphName.refine((name) => name.split('{i}').length === 2, {
  message: 'must contain "{i}" (the layer index) exactly once',
});

const count = (max: number) => z.int().min(1).max(max);

const modelSchema = z
  .object({
    vocabSize: count(MANIFEST_LIMITS.vocabSize),
    blockSize: count(MANIFEST_LIMITS.blockSize),
    nLayer: count(MANIFEST_LIMITS.nLayer),
    nHead: count(MANIFEST_LIMITS.nHead),
    nEmbd: count(MANIFEST_LIMITS.nEmbd),
    dropout: z.number().min(0).lt(1).optional(),
    bias: z.boolean().optional(),
  })
  .superRefine((model, context) => {
    if (model.nEmbd % model.nHead !== 0)
      context.addIssue({
        code: 'custom',
        path: ['nEmbd'],
        message: `must be divisible by model.nHead (${model.nHead})`,
      });
    const units = model.nLayer * model.blockSize * model.nEmbd;
    if (units > MANIFEST_LIMITS.cacheUnits)
      context.addIssue({
        code: 'custom',
        path: ['blockSize'],
        message: `gives a KV cache of nLayer × blockSize × nEmbd = ${units} floats per side, over the cap of ${MANIFEST_LIMITS.cacheUnits}`,
      });
  });

const outputsSchema = z
  .object({
    logits: plainGraphName,
    presentKey: layerPattern,
    presentValue: layerPattern,
    newKey: layerPattern.optional(),
    newValue: layerPattern.optional(),
  })
  .superRefine((outputs, context) => {
    if ((outputs.newKey === undefined) !== (outputs.newValue === undefined))
      context.addIssue({
        code: 'custom',
        path: [outputs.newKey === undefined ? 'newValue' : 'newKey'],
        message: `is set but outputs.${outputs.newKey === undefined ? 'newKey' : 'newValue'} is not: the two come together`,
      });
  });

const manifestSchema = z
  .object({
    format: z.literal('minigpt-onnx'),
    formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
    opset: count(MANIFEST_LIMITS.opset),
    irVersion: count(MANIFEST_LIMITS.irVersion).optional(),
    model: modelSchema,
    inputs: z.object({
      inputIds: plainGraphName,
      attentionMask: plainGraphName,
      positionIds: plainGraphName,
      numLogitsToKeep: plainGraphName.optional(),
      pastKey: layerPattern,
      pastValue: layerPattern,
    }),
    outputs: outputsSchema,
    dtypes: z.object({
      inputIds: z.literal('int64'),
      cache: z.literal('float32'),
      logits: z.literal('float32'),
    }),
    files: z.object({ model: filePath, modelQuantized: filePath.optional(), vocab: filePath }),
    tokenizer: z.string().min(1).max(MANIFEST_LIMITS.tokenizer),
  })
  .superRefine((manifest, context) => {
    // Every graph tensor the runner feeds or fetches needs its own name, for every layer:
    // distinct patterns can still collide ("a{i}" at layer 10 is "a1{i}" at layer 0).
    // zod runs this even when a field broke a bound (those issues do not abort), and the
    // loop below counts to nLayer: without this guard, nLayer 2^53 would never return.
    const { nLayer } = manifest.model;
    if (!Number.isSafeInteger(nLayer) || nLayer < 1 || nLayer > MANIFEST_LIMITS.nLayer) return;
    const owners = new Map<string, string>();
    const claim = (path: [string, string], name: string, layer?: number): boolean => {
      const owner = owners.get(name);
      const field = path.join('.');
      if (owner !== undefined) {
        context.addIssue({
          code: 'custom',
          path,
          message: `names "${name}"${layer === undefined ? '' : ` for layer ${layer}`}, which ${owner} names too: each graph tensor needs its own name`,
        });
        return false;
      }
      owners.set(name, layer === undefined ? field : `${field} (layer ${layer})`);
      return true;
    };
    for (const [path, graphTensor] of [
      [['inputs', 'inputIds'], manifest.inputs.inputIds],
      [['inputs', 'attentionMask'], manifest.inputs.attentionMask],
      [['inputs', 'positionIds'], manifest.inputs.positionIds],
      [['inputs', 'numLogitsToKeep'], manifest.inputs.numLogitsToKeep],
      [['outputs', 'logits'], manifest.outputs.logits],
    ] as Array<[[string, string], string | undefined]>) {
      if (graphTensor !== undefined && !claim(path, graphTensor)) return;
    }
    const patterns: Array<[[string, string], string | undefined]> = [
      [['inputs', 'pastKey'], manifest.inputs.pastKey],
      [['inputs', 'pastValue'], manifest.inputs.pastValue],
      [['outputs', 'presentKey'], manifest.outputs.presentKey],
      [['outputs', 'presentValue'], manifest.outputs.presentValue],
      [['outputs', 'newKey'], manifest.outputs.newKey],
      [['outputs', 'newValue'], manifest.outputs.newValue],
    ];
    for (let layer = 0; layer < nLayer; layer++) {
      for (const [path, pattern] of patterns) {
        if (pattern !== undefined && !claim(path, layerName(pattern, layer), layer)) return;
      }
    }
  }) satisfies z.ZodType<ExportManifest>;
