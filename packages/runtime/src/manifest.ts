// minigpt.json, the manifest of an export directory: format version, model shape, graph
// input/output names and dtypes. Runners read it through parseManifest before anything
// else, so a file of another format or version fails with a clear message.

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
  if (typeof manifest.files?.model !== 'string' || typeof manifest.files?.vocab !== 'string')
    fail('files.model and files.vocab must be file names');
  return manifest as ExportManifest;
}

export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** The graph name of layer `layer`'s tensor from a `{i}` pattern. */
export function layerName(pattern: string, layer: number): string {
  return pattern.replace('{i}', String(layer));
}

/** Each cache input and the output that feeds it next step, layer by layer (key, then value). */
export function cacheNames(manifest: ExportManifest): Array<{ input: string; output: string }> {
  const names: Array<{ input: string; output: string }> = [];
  for (let layer = 0; layer < manifest.model.nLayer; layer++) {
    names.push({
      input: layerName(manifest.inputs.pastKey, layer),
      output: layerName(manifest.outputs.presentKey, layer),
    });
    names.push({
      input: layerName(manifest.inputs.pastValue, layer),
      output: layerName(manifest.outputs.presentValue, layer),
    });
  }
  return names;
}
