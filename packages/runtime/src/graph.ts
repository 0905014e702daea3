// Compares an ONNX graph's declared inputs and outputs with a parsed manifest, so a runner
// sizes nothing from manifest numbers the graph contradicts: names for every layer, element
// types, heads and head size in the cache dims, the vocab in the logits. It sees only the
// signature onnxruntime reports (no weights), so blockSize remains the manifest's word.
import { preview } from '@minigpt/errors';
import { ManifestError, layerName, type ExportManifest } from './manifest.js';

/** One graph input or output as a runner's onnxruntime describes it. */
export interface ValueInfo {
  readonly name: string;
  /** Element type as onnxruntime names it ('float32', 'int64', …); undefined: not a tensor. */
  readonly type: string | undefined;
  /**
   * Declared dims: a number is fixed, a string is a symbolic (dynamic) dim, null or a
   * negative number is unknown. Empty when the graph declares no shape.
   */
  readonly shape: readonly (number | string | null)[];
}

/** The inputs and outputs of a loaded graph (`session.inputMetadata` / `outputMetadata`). */
export interface GraphSignature {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
}

/** One entry of an onnxruntime session's `inputMetadata` / `outputMetadata` (node and web). */
export type SessionValueMetadata =
  | {
      readonly name: string;
      readonly isTensor: true;
      readonly type: string;
      readonly shape: readonly (number | string)[];
    }
  | { readonly name: string; readonly isTensor: false };

/** The signature of an onnxruntime session, as checkGraphAgainstManifest reads it. */
export function graphSignatureOf(session: {
  readonly inputMetadata: readonly SessionValueMetadata[];
  readonly outputMetadata: readonly SessionValueMetadata[];
}): GraphSignature {
  const info = (value: SessionValueMetadata): ValueInfo =>
    value.isTensor
      ? { name: value.name, type: value.type, shape: [...value.shape] }
      : { name: value.name, type: undefined, shape: [] };
  return { inputs: session.inputMetadata.map(info), outputs: session.outputMetadata.map(info) };
}

/**
 * Throws unless `graph` has exactly the inputs the manifest names (input ids, attention
 * mask, position ids, num_logits_to_keep, and a key and a value cache input for each of
 * nLayer layers, no more) and every output it names, with the manifest's dtypes and shapes:
 * ids and positions (B, T); mask (B, P+T); num_logits_to_keep a scalar; caches (B, nHead, P,
 * nEmbd/nHead); logits (B, K, vocabSize). Head count, head size and vocab must be fixed
 * numbers in the graph; batch and sequence dims must be dynamic. The cache comes back as
 * present, as the cache-rows outputs (outputs.newKey/newValue, which a runner declares in
 * present's place: cacheRowsModel), or as both; each is checked where declared, present
 * where neither is. `source` names the model file in the message,
 * `makeError` makes the runner's own error (default: a ManifestError, rule 'graph').
 */
export function checkGraphAgainstManifest(
  manifest: ExportManifest,
  graph: GraphSignature,
  source: string,
  makeError: (message: string) => Error = (message) =>
    new ManifestError(message, { file: source, rule: 'graph' }),
): void {
  const problem = graphProblem(manifest, graph);
  if (problem !== undefined) {
    throw makeError(
      `${source}: ${problem}. The model and its minigpt.json are not from the same export: re-export the checkpoint with \`minigpt export\``,
    );
  }
}

type Side = 'input' | 'output';

/** What one dim must be. */
type DimRule =
  | { readonly kind: 'batch' }
  | { readonly kind: 'dynamic'; readonly label: string }
  | { readonly kind: 'fixed'; readonly label: string; readonly value: number };

interface Expected {
  readonly side: Side;
  readonly name: string;
  readonly type: string;
  readonly dims: readonly DimRule[];
  /** The layer of a cache tensor. */
  readonly layer?: number;
}

function graphProblem(manifest: ExportManifest, graph: GraphSignature): string | undefined {
  const { nLayer, nHead, nEmbd, vocabSize } = manifest.model;
  const { inputs, outputs, dtypes } = manifest;
  const batch: DimRule = { kind: 'batch' };
  const heads: DimRule = { kind: 'fixed', label: 'model.nHead', value: nHead };
  const headSize: DimRule = {
    kind: 'fixed',
    label: `the head size, model.nEmbd / model.nHead = ${nEmbd} / ${nHead}`,
    value: nEmbd / nHead,
  };
  const sequence = (label: string): DimRule => ({ kind: 'dynamic', label });

  const expected: Expected[] = [
    {
      side: 'input',
      name: inputs.inputIds,
      type: dtypes.inputIds,
      dims: [batch, sequence('sequence length')], // (B, T)
    },
    {
      side: 'input',
      name: inputs.attentionMask,
      type: 'int64',
      dims: [batch, sequence('total length')], // (B, P+T)
    },
    {
      side: 'input',
      name: inputs.positionIds,
      type: 'int64',
      dims: [batch, sequence('sequence length')], // (B, T)
    },
    ...(inputs.numLogitsToKeep !== undefined
      ? [{ side: 'input' as const, name: inputs.numLogitsToKeep, type: 'int64', dims: [] }] // ()
      : []),
    {
      side: 'output',
      name: outputs.logits,
      type: dtypes.logits,
      dims: [
        batch,
        sequence('number of positions kept'),
        { kind: 'fixed', label: 'model.vocabSize', value: vocabSize },
      ], // (B, K, V)
    },
  ];
  const declared = { input: byName(graph.inputs), output: byName(graph.outputs) };
  const declares = (...patterns: Array<string | undefined>) =>
    [...declared.output.keys()].some((name) =>
      patterns.some(
        (pattern) => pattern !== undefined && layerMatcher(pattern)(name) !== undefined,
      ),
    );
  // The graph returns the cache as present, as the rows a runner declares in its place
  // (cacheRowsModel), or both; whichever it declares is checked, present when neither. Any
  // layer's declared means all must be: a runner fetching them needs every layer.
  const rowsDeclared =
    outputs.newKey !== undefined &&
    outputs.newValue !== undefined &&
    declares(outputs.newKey, outputs.newValue);
  const presentChecked = !rowsDeclared || declares(outputs.presentKey, outputs.presentValue);
  const patterns: Array<{ side: Side; pattern: string; length: string }> = [
    { side: 'input', pattern: inputs.pastKey, length: 'past length' }, // (B, nh, P, hs)
    { side: 'input', pattern: inputs.pastValue, length: 'past length' },
    ...(presentChecked
      ? [
          { side: 'output' as const, pattern: outputs.presentKey, length: 'total length' }, // (B, nh, P+T, hs)
          { side: 'output' as const, pattern: outputs.presentValue, length: 'total length' },
        ]
      : []),
    ...(rowsDeclared
      ? [
          { side: 'output' as const, pattern: outputs.newKey!, length: 'sequence length' }, // (B, nh, T, hs)
          { side: 'output' as const, pattern: outputs.newValue!, length: 'sequence length' },
        ]
      : []),
  ];
  for (let layer = 0; layer < nLayer; layer++) {
    for (const { side, pattern, length } of patterns) {
      expected.push({
        side,
        name: layerName(pattern, layer),
        type: dtypes.cache,
        dims: [batch, heads, sequence(length), headSize],
        layer,
      });
    }
  }

  // A graph with more layers than the manifest says would run with a cache the runner never
  // fills: refused, as is any input the runner would not feed.
  for (const { side, pattern } of patterns) {
    const matcher = layerMatcher(pattern);
    for (const name of declared[side].keys()) {
      const layer = matcher(name);
      if (layer !== undefined && layer >= nLayer)
        return `the graph has ${side} ${preview(name)} for layer ${layer}, but minigpt.json says model.nLayer = ${nLayer}`;
    }
  }
  for (const want of expected) {
    if (!declared[want.side].has(want.name)) {
      return `the graph has no ${want.side} "${want.name}"${
        want.layer === undefined
          ? ''
          : ` (layer ${want.layer}; minigpt.json says model.nLayer = ${nLayer})`
      }`;
    }
  }
  const wanted = new Set(expected.filter((want) => want.side === 'input').map((want) => want.name));
  for (const name of declared.input.keys()) {
    if (!wanted.has(name))
      return `the graph has input ${preview(name)}, which minigpt.json does not name (the runner would not feed it)`;
  }
  for (const want of expected) {
    const problem = valueProblem(want, declared[want.side].get(want.name)!);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function valueProblem(want: Expected, value: ValueInfo): string | undefined {
  const what = `${want.side} "${want.name}"`;
  if (value.type === undefined) return `${what} is not a tensor`;
  if (value.type !== want.type)
    return `${what} holds ${preview(value.type)}, but minigpt.json says ${want.type}`;
  const shape = `[${value.shape.map((dim) => (dim === null ? '?' : typeof dim === 'number' ? String(dim) : preview(dim))).join(', ')}]`;
  if (value.shape.length !== want.dims.length) {
    return `${what} has shape ${shape}, but a minigpt export declares ${want.dims.length} dims`;
  }
  for (const [axis, rule] of want.dims.entries()) {
    const dim = value.shape[axis];
    const fixed = typeof dim === 'number' && dim >= 0 ? dim : undefined;
    const at = `dim ${axis} of ${what} ${shape}`;
    if (rule.kind === 'batch' && fixed !== undefined)
      return `${at} fixes the batch at ${fixed}, but the runner feeds batches of any size`;
    if (rule.kind === 'dynamic' && fixed !== undefined)
      return `${at} is fixed at ${fixed}, but it is the ${rule.label}, which changes from step to step`;
    if (rule.kind === 'fixed' && fixed !== rule.value)
      return fixed === undefined
        ? `${at} is not a fixed number, but minigpt.json says ${rule.label} = ${rule.value}`
        : `${at} is ${fixed}, but minigpt.json says ${rule.label} = ${rule.value}`;
  }
  return undefined;
}

function byName(values: readonly ValueInfo[]): Map<string, ValueInfo> {
  return new Map(values.map((value) => [value.name, value]));
}

/** The layer index a name fills into `pattern` ("present.{i}.key"), or undefined. */
function layerMatcher(pattern: string): (name: string) => number | undefined {
  const [before, after] = pattern.split('{i}') as [string, string];
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const regex = new RegExp(`^${escape(before)}(0|[1-9][0-9]{0,8})${escape(after)}$`);
  return (name) => {
    const match = regex.exec(name);
    return match ? Number(match[1]) : undefined;
  };
}
