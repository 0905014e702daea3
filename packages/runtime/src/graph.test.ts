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
import { manifestJson } from './test-manifest.js';

const manifest = parseManifest(
  manifestJson({ vocabSize: 30, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32 }),
);

/**
 * What onnxruntime reports for the exporter's graph of `layers` layers (dims named as
 * @minigpt/export-onnx names them); with `rows`, also the cache-rows outputs a runner adds
 * (cacheRowsModel), which the published graph does not declare; without `present`, no
 * present outputs (cacheRowsModel removes them).
 */
function exportedGraph(
  { layers = 2, heads = 2, headSize = 16, vocab = 30, rows = false, present = true } = {} as {
    layers?: number;
    heads?: number;
    headSize?: number;
    vocab?: number;
    rows?: boolean;
    present?: boolean;
  },
): GraphSignature {
  const cache = (name: string, length: string): ValueInfo => ({
    name,
    type: 'float32',
    shape: ['batch_size', heads, length, headSize], // (B, nh, P|P+T|T, hs)
  });
  const total = 'past_sequence_length + sequence_length';
  const inputs: ValueInfo[] = [
    { name: 'input_ids', type: 'int64', shape: ['batch_size', 'sequence_length'] }, // (B, T)
    { name: 'attention_mask', type: 'int64', shape: ['batch_size', total] }, // (B, P+T)
    { name: 'position_ids', type: 'int64', shape: ['batch_size', 'sequence_length'] }, // (B, T)
    { name: 'num_logits_to_keep', type: 'int64', shape: [] }, // ()
  ];
  const outputs: ValueInfo[] = [
    { name: 'logits', type: 'float32', shape: ['batch_size', 'logits_length', vocab] }, // (B, K, V)
  ];
  for (let i = 0; i < layers; i++) {
    inputs.push(cache(`past_key_values.${i}.key`, 'past_sequence_length'));
    inputs.push(cache(`past_key_values.${i}.value`, 'past_sequence_length'));
    if (!present) continue;
    outputs.push(cache(`present.${i}.key`, total));
    outputs.push(cache(`present.${i}.value`, total));
  }
  for (let i = 0; rows && i < layers; i++) {
    outputs.push(cache(`new_key_values.${i}.key`, 'sequence_length'));
    outputs.push(cache(`new_key_values.${i}.value`, 'sequence_length'));
  }
  return { inputs, outputs };
}

/** The graph with value `name` replaced by `change(value)`. */
function edited(
  name: string,
  change: (value: ValueInfo) => ValueInfo,
  graph = exportedGraph(),
): GraphSignature {
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
  it("accepts the exporter's graph, with or without the cache-rows outputs declared", () => {
    // As published: new_key_values are values inside the graph, not outputs.
    expect(() => checkGraphAgainstManifest(manifest, exportedGraph(), 'm.onnx')).not.toThrow();
    // As the runners load it on the CPU: the rows in place of present; or beside it.
    const rowsOnly = exportedGraph({ rows: true, present: false });
    expect(() => checkGraphAgainstManifest(manifest, rowsOnly, 'm.onnx')).not.toThrow();
    const withRows = exportedGraph({ rows: true });
    expect(() => checkGraphAgainstManifest(manifest, withRows, 'm.onnx')).not.toThrow();
    // Neither: the cache must come back somehow, and present is what a graph declares.
    expect(problem(exportedGraph({ present: false }))).toMatch(
      /the graph has no output "present\.0\.key" \(layer 0; minigpt\.json says model\.nLayer = 2\)/,
    );
    // Rows in place of present are checked all the same.
    expect(
      problem(
        edited(
          'new_key_values.1.key',
          (value) => ({ ...value, shape: ['b', 3, 't', 16] }),
          rowsOnly,
        ),
      ),
    ).toMatch(
      /dim 1 of output "new_key_values\.1\.key" .* is 3, but minigpt\.json says model\.nHead = 2/,
    );
    // A manifest without newKey/newValue: outputs it does not name are allowed (the runner
    // fetches only what it names).
    const { logits, presentKey, presentValue } = manifest.outputs;
    const withoutRows = { ...manifest, outputs: { logits, presentKey, presentValue } };
    expect(() => checkGraphAgainstManifest(withoutRows, exportedGraph(), 'm.onnx')).not.toThrow();
    expect(() => checkGraphAgainstManifest(withoutRows, withRows, 'm.onnx')).not.toThrow();
  });

  it('checks declared cache-rows outputs like the cache: heads, head size, dynamic length', () => {
    const withRows = exportedGraph({ rows: true });
    expect(
      problem(
        edited(
          'new_key_values.0.key',
          (value) => ({ ...value, shape: ['b', 2, 't', 8] }),
          withRows,
        ),
      ),
    ).toMatch(
      /dim 3 of output "new_key_values\.0\.key" \["b", 2, "t", 8\] is 8, but minigpt\.json says the head size, model\.nEmbd \/ model\.nHead = 32 \/ 2 = 16/,
    );
    expect(
      problem(
        edited('new_key_values.1.value', (value) => ({ ...value, type: 'float16' }), withRows),
      ),
    ).toMatch(/output "new_key_values\.1\.value" holds "float16", but minigpt\.json says float32/);
    expect(
      problem(
        edited('new_key_values.1.key', (value) => ({ ...value, shape: ['b', 2, 1, 16] }), withRows),
      ),
    ).toMatch(
      /dim 2 of output "new_key_values\.1\.key" .* is fixed at 1, but it is the sequence length, which changes from step to step/,
    );
    // Declared for some layers but not all: the runner would fetch one that is not there.
    const partial = {
      ...withRows,
      outputs: withRows.outputs.filter((value) => value.name !== 'new_key_values.1.value'),
    };
    expect(problem(partial)).toMatch(
      /the graph has no output "new_key_values\.1\.value" \(layer 1; minigpt\.json says model\.nLayer = 2\)/,
    );
    // Layer 0's rows missing but a later layer's declared: still all or none.
    const laterOnly = {
      ...withRows,
      outputs: withRows.outputs.filter((value) => !value.name.startsWith('new_key_values.0.')),
    };
    expect(problem(laterOnly)).toMatch(/the graph has no output "new_key_values\.0\.key"/);
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
    const graph = exportedGraph();
    const trimmed = {
      inputs: graph.inputs.filter((value) => !value.name.includes('.1.')),
      outputs: graph.outputs,
    };
    expect(problem(trimmed, fewer)).toMatch(
      /the graph has output "present\.1\.key" for layer 1, but minigpt\.json says model\.nLayer = 1/,
    );
  });

  it.each(['attention_mask', 'position_ids', 'num_logits_to_keep'])(
    'refuses a graph without the %s input (a format-1 graph has none of them)',
    (input) => {
      const graph = exportedGraph();
      const without = { ...graph, inputs: graph.inputs.filter((value) => value.name !== input) };
      expect(problem(without)).toMatch(new RegExp(`the graph has no input "${input}"(\\.|$)`));
    },
  );

  it('refuses names the graph lacks, and inputs the manifest does not name', () => {
    const renamed = { ...manifest, outputs: { ...manifest.outputs, logits: 'lm_logits' } };
    expect(problem(exportedGraph(), renamed)).toMatch(/the graph has no output "lm_logits"/);
    const graph = exportedGraph();
    const extra = {
      ...graph,
      inputs: [
        ...graph.inputs,
        { name: 'token_type_ids', type: 'int64', shape: ['batch_size', 'sequence_length'] },
      ],
    };
    expect(problem(extra)).toMatch(
      /the graph has input "token_type_ids", which minigpt\.json does not name \(the runner would not feed it\)/,
    );
  });

  it('refuses a head count or head size the cache dims contradict', () => {
    const wider = { ...manifest, model: { ...manifest.model, nEmbd: 64 } };
    expect(problem(exportedGraph(), wider)).toMatch(
      /dim 3 of input "past_key_values\.0\.key" \["batch_size", 2, "past_sequence_length", 16\] is 16, but minigpt\.json says the head size, model\.nEmbd \/ model\.nHead = 64 \/ 2 = 32/,
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
      /dim 2 of output "logits" \["batch_size", "logits_length", 30\] is 30, but minigpt\.json says model\.vocabSize = 31/,
    );
    expect(problem(edited('logits', (value) => ({ ...value, shape: ['b', 's', null] })))).toMatch(
      /dim 2 of output "logits" \["b", "s", \?\] is not a fixed number/,
    );
  });

  it('refuses a num_logits_to_keep that is not an int64 scalar', () => {
    for (const shape of [[1], ['batch_size'], [1, 1]]) {
      expect(problem(edited('num_logits_to_keep', (value) => ({ ...value, shape })))).toMatch(
        /input "num_logits_to_keep" has shape \[.+\], but a minigpt export declares 0 dims/,
      );
    }
    expect(problem(edited('num_logits_to_keep', (value) => ({ ...value, type: 'int32' })))).toMatch(
      /input "num_logits_to_keep" holds "int32", but minigpt\.json says int64/,
    );
  });

  it('refuses a mask or positions of another type or rank, or with a fixed length', () => {
    expect(problem(edited('attention_mask', (value) => ({ ...value, type: 'bool' })))).toMatch(
      /input "attention_mask" holds "bool", but minigpt\.json says int64/,
    );
    expect(
      problem(edited('attention_mask', (value) => ({ ...value, shape: ['batch_size', 16] }))),
    ).toMatch(
      /dim 1 of input "attention_mask" \["batch_size", 16\] is fixed at 16, but it is the total length, which changes from step to step/,
    );
    expect(
      problem(edited('position_ids', (value) => ({ ...value, shape: ['batch_size'] }))),
    ).toMatch(
      /input "position_ids" has shape \["batch_size"\], but a minigpt export declares 2 dims/,
    );
  });

  it('refuses other dtypes, non-tensors, other ranks and fixed sequence dims', () => {
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
  });

  it('refuses a fixed batch dim, even 1: the runner feeds batches of any size', () => {
    for (const [name, shape] of [
      ['input_ids', [4, 'sequence_length']],
      ['input_ids', [1, 'sequence_length']],
      ['attention_mask', [1, 'total']],
      ['past_key_values.0.key', [1, 2, 'past', 16]],
      ['logits', [2, 'logits_length', 30]],
    ] as Array<[string, Array<number | string>]>) {
      expect(problem(edited(name, (value) => ({ ...value, shape })))).toMatch(
        new RegExp(
          `dim 0 of (input|output) "${name.replaceAll('.', '\\.')}" .* fixes the batch at ${shape[0]}, but the runner feeds batches of any size`,
        ),
      );
    }
    // Unknown dims (negative or null, as some exporters write them) are fine where dims vary.
    for (const shape of [
      [-1, -1],
      [null, 'sequence_length'],
    ]) {
      expect(() =>
        checkGraphAgainstManifest(
          manifest,
          edited('input_ids', (value) => ({ ...value, shape })),
          'm.onnx',
        ),
      ).not.toThrow();
    }
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
