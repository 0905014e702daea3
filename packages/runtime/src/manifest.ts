// minigpt.json, the manifest of an export directory: format version, model shape, graph
// input/output names and dtypes. Runners read it through parseManifest before anything
// else, so a file of another format or version fails with a clear message.
import { MinigptError } from '@minigpt/errors';

export const MANIFEST_FORMAT_VERSION = 1;

export interface ExportManifest {
  readonly format: 'minigpt-onnx';
  readonly formatVersion: number;
  readonly opset: number;
  readonly model: {
    readonly vocabSize: number;
    readonly blockSize: number;
    readonly nLayer: number;
    readonly nHead: number;
    readonly nEmbd: number;
  };
  /** Graph names; `{i}` stands for the layer index. */
  readonly inputs: {
    readonly inputIds: string;
    readonly pastKey: string;
    readonly pastValue: string;
  };
  readonly outputs: {
    readonly logits: string;
    readonly presentKey: string;
    readonly presentValue: string;
    /**
     * This step's cache rows only, (B, nh, T, hs): present = concat(past, new) on the
     * sequence axis. Exports before these existed lack them.
     */
    readonly newKey?: string;
    readonly newValue?: string;
  };
  readonly dtypes: {
    readonly inputIds: 'int64';
    readonly cache: 'float32';
    readonly logits: 'float32';
  };
  readonly files: { readonly model: string; readonly vocab: string };
  readonly tokenizer: string;
}

/** Checks a parsed minigpt.json; `source` names the file in errors. */
export function parseManifest(json: unknown, source = 'minigpt.json'): ExportManifest {
  const fail = (problem: string): never => {
    throw new ManifestError(`${source}: ${problem}`);
  };
  if (typeof json !== 'object' || json === null) return fail('not a JSON object');
  const manifest = json as Partial<ExportManifest>;
  if (manifest.format !== 'minigpt-onnx')
    fail('not a minigpt export manifest (no "format": "minigpt-onnx")');
  if (manifest.formatVersion !== MANIFEST_FORMAT_VERSION) {
    fail(
      `format version ${String(manifest.formatVersion)}, but this runner reads version ${MANIFEST_FORMAT_VERSION}. ` +
        ((manifest.formatVersion ?? 0) > MANIFEST_FORMAT_VERSION
          ? 'Upgrade @minigpt/runtime and the runner.'
          : 'Re-export the checkpoint with `minigpt export`.'),
    );
  }
  const model = manifest.model;
  for (const key of ['vocabSize', 'blockSize', 'nLayer', 'nHead', 'nEmbd'] as const) {
    const value = model?.[key];
    if (!Number.isInteger(value) || (value as number) < 1)
      fail(`model.${key} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  if (model!.nEmbd % model!.nHead !== 0) fail('model.nEmbd must be divisible by model.nHead');
  const names = [
    manifest.inputs?.inputIds,
    manifest.inputs?.pastKey,
    manifest.inputs?.pastValue,
    manifest.outputs?.logits,
    manifest.outputs?.presentKey,
    manifest.outputs?.presentValue,
  ];
  if (!names.every((name) => typeof name === 'string' && name.length > 0))
    fail('inputs and outputs must name every graph tensor');
  const added = [manifest.outputs?.newKey, manifest.outputs?.newValue];
  if (!added.every((name) => name === undefined || (typeof name === 'string' && name.length > 0)))
    fail('outputs.newKey and outputs.newValue, when present, must name graph tensors');
  if ((added[0] === undefined) !== (added[1] === undefined))
    fail('outputs.newKey and outputs.newValue come together: one of them is missing');
  if (typeof manifest.files?.model !== 'string' || typeof manifest.files?.vocab !== 'string')
    fail('files.model and files.vocab must be file names');
  return manifest as ExportManifest;
}

export class ManifestError extends MinigptError {
  override name = 'ManifestError';
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
