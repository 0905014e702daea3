// checkGraphAgainstManifest on signatures shaped like onnxruntime's metadata for a minigpt
// export, each broken one way. The runners' tests run the same check on real ONNX graphs.
import { describe, expect, it } from 'vitest';
import {
  graphSignatureOf,
  ManifestError,
  checkGraphAgainstManifest,
  parseManifest,
  type ExportManifest,
  type GraphSignature,
  type ValueInfo,
} from './index.js';

const manifest = parseManifest({
  format: 'minigpt-onnx',
  formatVersion: 1,
  opset: 17,
  model: { vocabSize: 30, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32 },
  inputs: {
    inputIds: 'input_ids',
    pastKey: 'past_key_values.{i}.key',
    pastValue: 'past_key_values.{i}.value',
  },
  outputs: {
    logits: 'logits',
    presentKey: 'present.{i}.key',
    presentValue: 'present.{i}.value',
    newKey: 'new_key_values.{i}.key',
    newValue: 'new_key_values.{i}.value',
  },
  dtypes: { inputIds: 'int64', cache: 'float32', logits: 'float32' },
  files: { model: 'model.onnx', vocab: 'vocab.json' },
  tokenizer: 'char',
});

/** What onnxruntime reports for the exporter's graph of `layers` layers (as measured). */
function exportedGraph(layers = 2, heads = 2, headSize = 16, vocab = 30): GraphSignature {
  const cache = (name: string, length: string): ValueInfo => ({
    name,
    type: 'float32',
    shape: ['batch', heads, length, headSize], // (B, nh, P|P+T|T, hs)
  });
  const inputs: ValueInfo[] = [{ name: 'input_ids', type: 'int64', shape: ['batch', 'sequence'] }];
  const outputs: ValueInfo[] = [
    { name: 'logits', type: 'float32', shape: ['batch', 'sequence', vocab] },
  ];
  for (let i = 0; i < layers; i++) {
    inputs.push(cache(`past_key_values.${i}.key`, 'past_sequence'));
    inputs.push(cache(`past_key_values.${i}.value`, 'past_sequence'));
    outputs.push(cache(`present.${i}.key`, 'total_sequence'));
    outputs.push(cache(`present.${i}.value`, 'total_sequence'));
  }
  for (let i = 0; i < layers; i++) {
    outputs.push(cache(`new_key_values.${i}.key`, 'sequence'));
    outputs.push(cache(`new_key_values.${i}.value`, 'sequence'));
  }
  return { inputs, outputs };
}

/** The graph with value `name` replaced by `change(value)`. */
function edited(name: string, change: (value: ValueInfo) => ValueInfo): GraphSignature {
  const graph = exportedGraph();
  const edit = (values: readonly ValueInfo[]) =>
    values.map((value) => (value.name === name ? change(value) : value));
  return { inputs: edit(graph.inputs), outputs: edit(graph.outputs) };
}

function problem(graph: GraphSignature, against: ExportManifest = manifest): string {
  try {
    checkGraphAgainstManifest(against, graph, 'out/model.onnx');
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as ManifestError).rule).toBe('graph');
    expect((error as ManifestError).file).toBe('out/model.onnx');
    const message = (error as Error).message;
    expect(message).toMatch(
      /^out\/model\.onnx: .*\. The model and its minigpt\.json are not from the same export: re-export the checkpoint with `minigpt export`$/,
    );
    return message;
  }
  throw new Error('the graph was accepted');
}

describe('checkGraphAgainstManifest', () => {
  it("accepts the exporter's graph, and it without new_key_values for an older manifest", () => {
    expect(() => checkGraphAgainstManifest(manifest, exportedGraph(), 'm.onnx')).not.toThrow();
    const { logits, presentKey, presentValue } = manifest.outputs;
    const older = { ...manifest, outputs: { logits, presentKey, presentValue } };
    const graph = exportedGraph();
    const withoutNew = {
      ...graph,
      outputs: graph.outputs.filter((value) => !value.name.startsWith('new_')),
    };
    expect(() => checkGraphAgainstManifest(older, withoutNew, 'm.onnx')).not.toThrow();
    // Outputs a manifest does not name are allowed: the runner fetches only what it names.
    expect(() => checkGraphAgainstManifest(older, graph, 'm.onnx')).not.toThrow();
  });

  it('refuses a manifest with more layers than the graph', () => {
    const more = { ...manifest, model: { ...manifest.model, nLayer: 3 } };
    expect(problem(exportedGraph(), more)).toMatch(
      /the graph has no input "past_key_values\.2\.key" \(layer 2; minigpt\.json says model\.nLayer = 3\)/,
    );
  });

  it('refuses a manifest with fewer layers than the graph', () => {
    const fewer = { ...manifest, model: { ...manifest.model, nLayer: 1 } };
    expect(problem(exportedGraph(), fewer)).toMatch(
      /the graph has input "past_key_values\.1\.key" for layer 1, but minigpt\.json says model\.nLayer = 1/,
    );
    // Only outputs of an extra layer (a graph whose inputs were trimmed) are found too.
    const graph = exportedGraph(2);
    const trimmed = {
      inputs: graph.inputs.filter((value) => !value.name.includes('.1.')),
      outputs: graph.outputs,
    };
    expect(problem(trimmed, fewer)).toMatch(
      /the graph has output "present\.1\.key" for layer 1, but minigpt\.json says model\.nLayer = 1/,
    );
  });

  it('refuses names the graph lacks, and inputs the manifest does not name', () => {
    const renamed = { ...manifest, outputs: { ...manifest.outputs, logits: 'lm_logits' } };
    expect(problem(exportedGraph(), renamed)).toMatch(/the graph has no output "lm_logits"/);
    const graph = exportedGraph();
    const extra = {
      ...graph,
      inputs: [...graph.inputs, { name: 'attention_mask', type: 'int64', shape: ['batch', 't'] }],
    };
    expect(problem(extra)).toMatch(
      /the graph has input "attention_mask", which minigpt\.json does not name/,
    );
  });

  it('refuses a head count or head size the cache dims contradict', () => {
    const wider = { ...manifest, model: { ...manifest.model, nEmbd: 64 } };
    expect(problem(exportedGraph(), wider)).toMatch(
      /dim 3 of input "past_key_values\.0\.key" \["batch", 2, "past_sequence", 16\] is 16, but minigpt\.json says the head size, model\.nEmbd \/ model\.nHead = 64 \/ 2 = 32/,
    );
    const moreHeads = { ...manifest, model: { ...manifest.model, nHead: 4 } };
    expect(problem(exportedGraph(), moreHeads)).toMatch(
      /dim 1 of input "past_key_values\.0\.key" .* is 2, but minigpt\.json says model\.nHead = 4/,
    );
    expect(
      problem(
        edited('present.1.value', (value) => ({ ...value, shape: ['batch', 'heads', 't', 16] })),
      ),
    ).toMatch(
      /dim 1 of output "present\.1\.value" .* is not a fixed number, but minigpt\.json says model\.nHead = 2/,
    );
  });

  it('refuses a vocab the logits contradict', () => {
    const bigger = { ...manifest, model: { ...manifest.model, vocabSize: 31 } };
    expect(problem(exportedGraph(), bigger)).toMatch(
      /dim 2 of output "logits" \["batch", "sequence", 30\] is 30, but minigpt\.json says model\.vocabSize = 31/,
    );
    expect(problem(edited('logits', (value) => ({ ...value, shape: ['b', 's', null] })))).toMatch(
      /dim 2 of output "logits" \["b", "s", \?\] is not a fixed number/,
    );
  });

  it('refuses other dtypes, non-tensors, other ranks and fixed sequence or batch dims', () => {
    expect(problem(edited('input_ids', (value) => ({ ...value, type: 'int32' })))).toMatch(
      /input "input_ids" holds "int32", but minigpt\.json says int64/,
    );
    expect(problem(edited('present.0.key', (value) => ({ ...value, type: 'float16' })))).toMatch(
      /output "present\.0\.key" holds "float16", but minigpt\.json says float32/,
    );
    expect(problem(edited('logits', (value) => ({ ...value, type: undefined })))).toMatch(
      /output "logits" is not a tensor/,
    );
    expect(problem(edited('logits', (value) => ({ ...value, shape: [] })))).toMatch(
      /output "logits" has shape \[\], but a minigpt export declares 3 dims/,
    );
    expect(
      problem(edited('input_ids', (value) => ({ ...value, shape: ['batch', 'seq', 1] }))),
    ).toMatch(/input "input_ids" has shape \["batch", "seq", 1\], but a minigpt export declares 2/);
    expect(
      problem(edited('past_key_values.1.value', (value) => ({ ...value, shape: ['b', 2, 8, 16] }))),
    ).toMatch(
      /dim 2 of input "past_key_values\.1\.value" .* is fixed at 8, but it is the past length, which changes from step to step/,
    );
    expect(problem(edited('input_ids', (value) => ({ ...value, shape: [4, 'sequence'] })))).toMatch(
      /fixes the batch at 4, but the runner feeds batches of 1/,
    );
    // A batch of 1 and negative (unknown) dims are fine where dims may vary.
    expect(() =>
      checkGraphAgainstManifest(
        manifest,
        edited('input_ids', (value) => ({ ...value, shape: [1, -1] })),
        'm.onnx',
      ),
    ).not.toThrow();
  });

  it("makes the runner's own error when asked, and keeps hostile graph names short", () => {
    class RunnerLikeError extends Error {}
    const more = { ...manifest, model: { ...manifest.model, nLayer: 3 } };
    expect(() =>
      checkGraphAgainstManifest(more, exportedGraph(), 'x.onnx', (m) => new RunnerLikeError(m)),
    ).toThrow(RunnerLikeError);
    const graph = exportedGraph();
    const hostile = {
      ...graph,
      inputs: [...graph.inputs, { name: `x\n${'y'.repeat(10_000)}`, type: 'int64', shape: [] }],
    };
    const message = problem(hostile);
    expect(message).not.toContain('\n');
    expect(message.length).toBeLessThan(400);
  });
});

describe('graphSignatureOf', () => {
  it('reads an onnxruntime session’s metadata, non-tensor values without a type', () => {
    const signature = graphSignatureOf({
      inputMetadata: [{ name: 'input_ids', isTensor: true, type: 'int64', shape: ['batch', 5] }],
      outputMetadata: [{ name: 'map', isTensor: false }],
    });
    expect(signature).toEqual({
      inputs: [{ name: 'input_ids', type: 'int64', shape: ['batch', 5] }],
      outputs: [{ name: 'map', type: undefined, shape: [] }],
    });
  });
});
