// createOnnxDecoder over a fake onnxruntime that runs the export's graph contract in plain JS:
// a step's cache rows come from its ids and positions, present = concat(past, rows) on the
// sequence axis, and each row's logits come from its present slots where the mask is 1 — a
// sum over slots, whatever their order, as attention is (positions come from position_ids).
// Every strategy must give the logits a full recompute of the whole sequence gives, step by
// step.
import { CharTokenizer } from '@minigpt/tokenizer';
import { describe, expect, it } from 'vitest';
import {
  cacheNames,
  createOnnxDecoder,
  generateBatch,
  GROWTH_SLOTS,
  parseManifest,
  type CacheStrategy,
  type DecoderInput,
  type DecoderSession,
  type ExportManifest,
  type OrtBinding,
  type OrtTensorLike,
} from './index.js';
import {
  CACHE_ROWS_OUTPUT,
  cacheWordsOf,
  spreadMask,
  toInt64,
  writeCacheRows,
} from './onnx-decoder.js';
import { manifestJson } from './test-manifest.js';

const STRATEGIES: CacheStrategy[] = ['write-present', 'rows-in-place', 'keep-present'];
const BATCH = 3;

/** A minigpt manifest of a 2-layer model with 2 heads of size 2 and 7 tokens. */
function manifestOf({ blockSize = 200, rows = true, keep = true } = {}): ExportManifest {
  const json = manifestJson({ vocabSize: 7, blockSize, nLayer: 2, nHead: 2, nEmbd: 4 });
  if (!keep) delete json.inputs.numLogitsToKeep;
  if (!rows) {
    delete json.outputs.newKey;
    delete json.outputs.newValue;
  }
  return parseManifest(json);
}

/** A tensor of the fake runtime; on the fake "GPU", `data` cannot be read, only getData(). */
class FakeTensor implements OrtTensorLike {
  disposed = false;
  constructor(
    readonly values: Float32Array | BigInt64Array,
    readonly dims: readonly number[],
    private readonly onDevice = false,
  ) {}
  get data(): Float32Array | BigInt64Array {
    if (this.onDevice) throw new Error('data of a GPU tensor: use getData()');
    return this.values;
  }
  getData(): Promise<Float32Array | BigInt64Array> {
    return Promise.resolve(this.values);
  }
  dispose(): void {
    this.disposed = true;
  }
}

/** What one run was given: feeds as numbers, and what was fetched. */
interface RunRecord {
  readonly feeds: Record<string, { dims: number[]; data: number[] | Float32Array }>;
  /** A list of names, or names mapped to the dims of a preallocated tensor (null: none). */
  readonly fetches: string[] | Record<string, number[] | null>;
  /** The memory each past input and each preallocated output lives in. */
  readonly memory: ArrayBufferLike[];
}

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Cache value (cache input, head, j) of a token at a position: any fixed function. */
const rowValue = (cache: number, head: number, j: number, id: number, position: number) =>
  Math.sin(1.3 * id + 0.7 * position + 0.11 * head + 0.05 * j + 0.37 * cache);

/** The logit weight of vocab entry v on cache value (cache input, head, j) of any slot. */
const weight = (v: number, j: number, head: number, cache: number) =>
  1 + ((v * 7 + j * 3 + head * 5 + cache * 11) % 10) / 10;

function fakeOrt(
  manifest: ExportManifest,
  { rowsDeclared = true, onDevice = false }: { rowsDeclared?: boolean; onDevice?: boolean } = {},
) {
  const { nHead, nEmbd, vocabSize, blockSize } = manifest.model;
  const headSize = nEmbd / nHead;
  const names = cacheNames(manifest);
  const { inputs, outputs } = manifest;
  const runs: RunRecord[] = [];
  // onnxruntime may hand back the same output array on the next run: so does this fake.
  const logitsArrays = new Map<number, Float32Array>();
  // weight(v, j, head, cache) by (cache, head, j), a row of V each.
  const weightTable: Float64Array[] = [];
  for (let cache = 0; cache < names.length; cache++)
    for (let head = 0; head < nHead; head++)
      for (let j = 0; j < headSize; j++)
        weightTable.push(
          Float64Array.from({ length: vocabSize }, (_, v) => weight(v, j, head, cache)),
        );
  const known = new Set([
    outputs.logits,
    ...names.map((name) => name.output),
    ...(rowsDeclared ? [...names.map((name) => name.added!), CACHE_ROWS_OUTPUT] : []),
  ]);

  const binding: OrtBinding<FakeTensor> = {
    int64: (data, dims) => new FakeTensor(data, dims),
    float32: (data, dims) => new FakeTensor(data, dims),
    async run(feeds, fetches) {
      const record: RunRecord = {
        feeds: {},
        fetches: Array.isArray(fetches)
          ? [...(fetches as string[])]
          : Object.fromEntries(
              Object.entries(fetches).map(([name, tensor]) => [
                name,
                tensor ? [...tensor.dims] : null,
              ]),
            ),
        memory: [],
      };
      runs.push(record);
      const expectedInputs = new Set([
        inputs.inputIds,
        inputs.attentionMask,
        inputs.positionIds,
        ...(inputs.numLogitsToKeep !== undefined ? [inputs.numLogitsToKeep] : []),
        ...names.map((name) => name.input),
      ]);
      for (const [name, tensor] of Object.entries(feeds)) {
        if (!expectedInputs.has(name)) throw new Error(`unknown input ${name}`);
        if (tensor.disposed) throw new Error(`input ${name} was disposed`);
        if (tensor.values.length !== product(tensor.dims))
          throw new Error(`input ${name}: ${tensor.values.length} values for dims ${tensor.dims}`);
        const { values } = tensor;
        record.feeds[name] = {
          dims: [...tensor.dims],
          data: values instanceof BigInt64Array ? Array.from(values, Number) : values.slice(),
        };
      }
      for (const name of expectedInputs) if (!feeds[name]) throw new Error(`missing input ${name}`);
      const ids = record.feeds[inputs.inputIds]!;
      const [batch, added] = ids.dims as [number, number]; // (B, T)
      const mask = record.feeds[inputs.attentionMask]!; // (B, P+T)
      const positions = record.feeds[inputs.positionIds]!; // (B, T)
      // With num_logits_to_keep (1): logits (B, 1, V). Without: (B, T, V), of which this fake
      // fills only each row's last position (the others NaN, so reading one shows).
      const keep =
        inputs.numLogitsToKeep === undefined ? undefined : record.feeds[inputs.numLogitsToKeep]!;
      if (keep && (keep.dims.length !== 0 || keep.data[0] !== 1))
        throw new Error('this fake keeps 1 logit');
      const kept = keep ? 1 : added;
      const total = mask.dims[1]!;
      const past = total - added;
      if (mask.dims[0] !== batch || `${positions.dims}` !== `${ids.dims}` || past < 0)
        throw new Error('ids, mask and positions disagree');
      if (positions.data.some((position) => position >= blockSize))
        throw new Error(`position_ids must be below n_positions ${blockSize}`);
      if (ids.data.some((id) => id >= vocabSize)) throw new Error('input_ids must be below vocab');

      // present (B, nh, P+T, hs) per cache: the past, then this step's rows.
      const presents = names.map((name, cache) => {
        const pastFeed = feeds[name.input]!;
        if (`${pastFeed.dims}` !== `${[batch, nHead, past, headSize]}`)
          throw new Error(`${name.input} has dims ${pastFeed.dims}, not (B, nh, P, hs)`);
        record.memory.push(pastFeed.values.buffer);
        const rows = new Float32Array(batch * nHead * added * headSize); // (B, nh, T, hs)
        const present = new Float32Array(batch * nHead * total * headSize);
        for (let b = 0; b < batch; b++) {
          for (let head = 0; head < nHead; head++) {
            const at = (b * nHead + head) * total * headSize;
            const from = (b * nHead + head) * past * headSize;
            present.set(pastFeed.values.subarray(from, from + past * headSize) as Float32Array, at);
            for (let t = 0; t < added; t++) {
              for (let j = 0; j < headSize; j++) {
                const value = rowValue(
                  cache,
                  head,
                  j,
                  ids.data[b * added + t]!,
                  positions.data[b * added + t]!,
                );
                rows[((b * nHead + head) * added + t) * headSize + j] = value;
                present[at + (past + t) * headSize + j] = value;
              }
            }
          }
        }
        return { rows, present };
      });
      // logits (B, 1, V): each row's real slots of every present, weighted by slot.
      const logits = logitsArrays.get(batch * kept) ?? new Float32Array(batch * kept * vocabSize);
      logitsArrays.set(batch * kept, logits);
      logits.fill(Number.NaN);
      const sums = new Float64Array(vocabSize);
      for (let b = 0; b < batch; b++) {
        sums.fill(0);
        presents.forEach(({ present }, cache) => {
          for (let head = 0; head < nHead; head++) {
            for (let s = 0; s < total; s++) {
              // A masked slot counts with weight 0, as after the graph's softmax: 0 times a
              // stale NaN there is NaN, as in onnxruntime.
              const gate = mask.data[b * total + s] === 1 ? 1 : 0;
              for (let j = 0; j < headSize; j++) {
                const value = gate * present[((b * nHead + head) * total + s) * headSize + j]!;
                const weights = weightTable[(cache * nHead + head) * headSize + j]!;
                for (let v = 0; v < vocabSize; v++) sums[v]! += value * weights[v]!;
              }
            }
          }
        });
        logits.set(sums, (b * kept + kept - 1) * vocabSize);
      }
      const computed = new Map<string, { values: Float32Array; dims: number[] }>([
        [outputs.logits, { values: logits, dims: [batch, kept, vocabSize] }],
      ]);
      names.forEach((name, cache) => {
        const { rows, present } = presents[cache]!;
        computed.set(name.output, { values: present, dims: [batch, nHead, total, headSize] });
        if (rowsDeclared)
          computed.set(name.added!, { values: rows, dims: [batch, nHead, added, headSize] });
      });
      if (rowsDeclared) {
        // cacheRowsModel's Concat of the rows along the batch axis, in cacheNames order.
        const packed = new Float32Array(names.length * batch * nHead * added * headSize);
        presents.forEach(({ rows }, cache) => packed.set(rows, cache * rows.length));
        computed.set(CACHE_ROWS_OUTPUT, {
          values: packed,
          dims: [names.length * batch, nHead, added, headSize],
        });
      }
      const results: Record<string, FakeTensor> = {};
      const requested = Array.isArray(fetches)
        ? (fetches as string[]).map((name) => [name, null] as const)
        : Object.entries(fetches);
      for (const [name, preallocated] of requested) {
        if (!known.has(name)) throw new Error(`the graph has no output ${name}`);
        const { values, dims } = computed.get(name)!;
        if (preallocated) {
          // onnxruntime writes into a preallocated output only of exactly the output's shape.
          if (`${preallocated.dims}` !== `${dims}`)
            throw new Error(`${name}: preallocated dims ${preallocated.dims}, output ${dims}`);
          const target = preallocated.values as Float32Array;
          for (const input of Object.values(feeds)) {
            if (input.values.buffer === target.buffer)
              throw new Error(`${name} is written over an input`);
          }
          record.memory.push(target.buffer);
          target.set(values);
          results[name] = preallocated;
        } else {
          results[name] = new FakeTensor(values, dims, onDevice && name !== outputs.logits);
        }
      }
      return results;
    },
  };
  return { binding, runs };
}

/** One step for the whole batch, rows given one by one. */
interface RowStep {
  readonly ids: number[];
  /** 1 for a real token, 0 for a pad, per new slot. */
  readonly real: number[];
  readonly positions: number[];
}

/**
 * A prefill of 3 left-padded prompts (3, 5 and 1 tokens), then `decode` steps of one token
 * per row; row 2 ends after 4 of them and rides along as a pad, as generateBatch feeds it.
 */
function scenario(decode: number): RowStep[][] {
  const prompts = [[1, 2, 3], [4, 5, 6, 0, 1], [2]];
  const width = 5;
  const steps: RowStep[][] = [
    prompts.map((prompt) => {
      const pads = width - prompt.length;
      return {
        ids: [...Array(pads).fill(0), ...prompt],
        real: [...Array(pads).fill(0), ...prompt.map(() => 1)],
        positions: [...Array(pads).fill(0), ...prompt.map((_, index) => index)],
      };
    }),
  ];
  for (let step = 0; step < decode; step++) {
    steps.push(
      prompts.map((prompt, row) => {
        const ended = row === 2 && step >= 4;
        return {
          ids: [(step * 3 + row * 2 + 1) % 7],
          real: [ended ? 0 : 1],
          positions: [ended ? 0 : prompt.length + step],
        };
      }),
    );
  }
  return steps;
}

/** A DecoderInput of plain arrays. */
interface StepInput extends DecoderInput {
  readonly ids: number[];
  readonly mask: number[];
  readonly positions: number[];
}

/** The decoder input of `steps[index]`, its mask covering every slot so far. */
function inputAt(steps: RowStep[][], index: number): StepInput {
  const rows = steps[0]!.length;
  const perRow = (pick: (step: RowStep) => number[], upTo: number, from = upTo) =>
    Array.from({ length: rows }, (_, row) =>
      steps.slice(from, upTo + 1).flatMap((step) => pick(step[row]!)),
    ).flat();
  return {
    batch: rows,
    ids: perRow((step) => step.ids, index), // (B, T)
    mask: perRow((step) => step.real, index, 0), // (B, P+T)
    positions: perRow((step) => step.positions, index), // (B, T)
  };
}

/** The whole sequence up to `steps[index]` fed at once, with no cache. */
function recomputeInput(steps: RowStep[][], index: number): StepInput {
  const joined: RowStep[] = steps[0]!.map((_, row) => ({
    ids: steps.slice(0, index + 1).flatMap((step) => step[row]!.ids),
    real: steps.slice(0, index + 1).flatMap((step) => step[row]!.real),
    positions: steps.slice(0, index + 1).flatMap((step) => step[row]!.positions),
  }));
  return inputAt([joined], 0);
}

/** Runs `steps` as generation does (each old state released once replaced); logits per step. */
async function drive<State>(decoder: DecoderSession<State>, steps: RowStep[][]) {
  let state: State | null = null;
  const logits: Float32Array[] = [];
  for (let index = 0; index < steps.length; index++) {
    const result: { logits: Float32Array; state: State } = await decoder.forward(
      inputAt(steps, index),
      state,
    );
    if (state !== null) decoder.release(state);
    state = result.state;
    logits.push(result.logits);
  }
  decoder.release(state!);
  return logits;
}

/** Logits (B, V) of a full recompute of each step's whole sequence. */
async function reference(manifest: ExportManifest, steps: RowStep[][]) {
  const decoder = createOnnxDecoder(fakeOrt(manifest).binding, manifest, 'keep-present');
  const out: Float32Array[] = [];
  for (let index = 0; index < steps.length; index++) {
    const { logits, state } = await decoder.forward(recomputeInput(steps, index), null);
    decoder.release(state);
    out.push(logits);
  }
  return out;
}

describe('toInt64', () => {
  it('gives BigInt64Array.from of the values, inside and outside 32 bits', () => {
    const values = [
      0,
      1,
      65,
      -1,
      2 ** 31 - 1,
      -(2 ** 31),
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 40,
      -(2 ** 52),
    ];
    expect(Array.from(toInt64(values))).toEqual(values.map((value) => BigInt(value)));
    expect(() => toInt64([0.5])).toThrow(RangeError);
  });
});

describe('spreadMask', () => {
  it("places each row's past, then masked empty slots, then its new slots, as int64", () => {
    // B = 2, P = 2, T = 2, capacity 4: (B, P+T) → (B, capacity + T).
    const mask = [0, 1, 1, 1, 1, 1, 0, 1]; // row 0 left-padded; row 1 has a pad among its new
    expect(Array.from(spreadMask(mask, 2, 2, 2, 4), Number)).toEqual([
      ...[0, 1, 0, 0, 1, 1],
      ...[1, 1, 0, 0, 0, 1],
    ]);
    // Any nonzero value is a real token, as the graph's Cast to bool reads it.
    expect(Array.from(spreadMask(Uint8Array.of(2, 0, 1), 1, 1, 2, 1), Number)).toEqual([1, 0, 1]);
    // No past: the new slots only.
    expect(Array.from(spreadMask([1, 0, 1], 3, 0, 1, 0), Number)).toEqual([1, 0, 1]);
  });
});

describe('writeCacheRows', () => {
  it("writes each (row, head)'s new slots at `past` in its cache, as 64-bit words or floats", () => {
    // 2 caches, B · nh = 2 heads, T = 1, slots 3, past 1; rows (caches · B · nh, T, hs).
    const rows = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8); // hs = 2
    const caches = [new Float32Array(12).fill(-1), new Float32Array(12).fill(-1)];
    writeCacheRows(caches, rows, 2, 1, 2, 3, 1);
    expect(Array.from(caches[0]!)).toEqual([-1, -1, 1, 2, -1, -1, -1, -1, 3, 4, -1, -1]);
    expect(Array.from(caches[1]!)).toEqual([-1, -1, 5, 6, -1, -1, -1, -1, 7, 8, -1, -1]);

    // Odd hs (floats, not words): 1 cache, 2 heads, T = 2, hs = 3, slots 3, past 1.
    const odd = [new Float32Array(18)];
    writeCacheRows(
      odd,
      Float32Array.from({ length: 12 }, (_, i) => i + 1),
      2,
      2,
      3,
      3,
      1,
    );
    expect(Array.from(odd[0]!)).toEqual([0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 7, 8, 9, 10, 11, 12]);

    // Rows that do not start on an 8-byte boundary take the float path, with the same result.
    const shifted = new Float32Array(9);
    shifted.set(rows, 1);
    const viaFloats = [new Float32Array(12).fill(-1), new Float32Array(12).fill(-1)];
    writeCacheRows(viaFloats, shifted.subarray(1), 2, 1, 2, 3, 1);
    expect(viaFloats).toEqual(caches);

    // With the caches' words made beforehand (as the decoder keeps them): the same.
    const viaWords = [new Float32Array(12).fill(-1), new Float32Array(12).fill(-1)];
    writeCacheRows(viaWords, rows, 2, 1, 2, 3, 1, cacheWordsOf(viaWords));
    expect(viaWords).toEqual(caches);
  });

  it('moves the bits unchanged: NaN payloads, signed zero, subnormals', () => {
    const bits = Uint32Array.of(0x7fa00001, 0xffc12345, 0x80000000, 0x00000001);
    const rows = new Float32Array(bits.buffer);
    const cache = [new Float32Array(8)];
    writeCacheRows(cache, rows, 1, 2, 2, 4, 1); // 1 head, T = 2, hs = 2, slots 4, past 1
    expect(Array.from(new Uint32Array(cache[0]!.buffer).subarray(2, 6))).toEqual(Array.from(bits));
  });
});

describe('createOnnxDecoder', () => {
  it('gives, with every strategy, the logits and cache of a full recompute (batch 3)', async () => {
    const manifest = manifestOf();
    const steps = scenario(8);
    const expected = await reference(manifest, steps);
    expect(expected[0]).toHaveLength(BATCH * 7); // (B, V)
    // The reference itself tells the rows and the steps apart.
    expect(expected[1]!.subarray(0, 7)).not.toEqual(expected[1]!.subarray(7, 14));
    expect(expected[2]).not.toEqual(expected[1]);
    const pastFeeds = new Map<CacheStrategy, Array<RunRecord['feeds']>>();
    for (const strategy of STRATEGIES) {
      // Only 'rows-in-place' needs the rows declared (cacheRowsModel): the others run the
      // graph as published.
      const ort = fakeOrt(manifest, { rowsDeclared: strategy === 'rows-in-place' });
      const logits = await drive(createOnnxDecoder(ort.binding, manifest, strategy), steps);
      expect(logits).toEqual(expected);
      pastFeeds.set(
        strategy,
        ort.runs.map((run) => run.feeds),
      );
    }
    // The same cache went into every step, whichever way it was kept: (B, nh, P, hs) fed as
    // it is, or, in place, the first P of GROWTH_SLOTS slots, the rest zero and masked out.
    const contiguous = pastFeeds.get('write-present')!;
    expect(pastFeeds.get('keep-present')).toEqual(contiguous);
    const inPlace = pastFeeds.get('rows-in-place')!;
    contiguous.forEach((feeds, index) => {
      const past = index === 0 ? 0 : 5 + index - 1;
      const capacity = index === 0 ? 0 : GROWTH_SLOTS;
      for (const name of ['past_key_values.0.key', 'past_key_values.1.value']) {
        expect(feeds[name]!.dims).toEqual([BATCH, 2, past, 2]);
        expect(inPlace[index]![name]!.dims).toEqual([BATCH, 2, capacity, 2]);
        const slots = inPlace[index]![name]!.data as Float32Array;
        for (let head = 0; head < BATCH * 2; head++) {
          const filled = slots.subarray(head * capacity * 2, (head * capacity + past) * 2);
          expect(filled).toEqual(
            (feeds[name]!.data as Float32Array).subarray(head * past * 2, (head + 1) * past * 2),
          );
          expect(
            slots
              .subarray((head * capacity + past) * 2, (head + 1) * capacity * 2)
              .every((x) => x === 0),
          ).toBe(true);
        }
      }
      // Each row's mask: its past, zeros for the empty slots, its new token.
      const mask = feeds['attention_mask']!;
      const inPlaceMask = inPlace[index]!['attention_mask']!;
      const width = capacity + (index === 0 ? 5 : 1);
      expect(inPlaceMask.dims).toEqual([BATCH, width]);
      for (let row = 0; row < BATCH; row++) {
        const own = (mask.data as number[]).slice(row * mask.dims[1]!, (row + 1) * mask.dims[1]!);
        const added = own.length - past;
        expect((inPlaceMask.data as number[]).slice(row * width, (row + 1) * width)).toEqual([
          ...own.slice(0, past),
          ...Array(capacity - past).fill(0),
          ...own.slice(past),
        ]);
        expect(added).toBe(index === 0 ? 5 : 1);
      }
    });
  });

  it('takes each row’s last position from (B, T, V) logits of a graph without num_logits_to_keep', async () => {
    const steps = scenario(4);
    const expected = await reference(manifestOf(), steps);
    const manifest = manifestOf({ keep: false }); // as exports are
    for (const strategy of STRATEGIES) {
      const ort = fakeOrt(manifest, { rowsDeclared: strategy === 'rows-in-place' });
      const logits = await drive(createOnnxDecoder(ort.binding, manifest, strategy), steps);
      expect(logits).toEqual(expected); // NaN anywhere but the last position would show
      expect(ort.runs[0]!.feeds).not.toHaveProperty('num_logits_to_keep');
    }
  });

  it('feeds ids, mask and positions as int64 of their shapes, and num_logits_to_keep as a scalar 1', async () => {
    const manifest = manifestOf();
    const steps = scenario(1);
    for (const strategy of STRATEGIES) {
      const ort = fakeOrt(manifest);
      await drive(createOnnxDecoder(ort.binding, manifest, strategy), steps);
      const [prefill, decode] = ort.runs;
      expect(prefill!.feeds['input_ids']).toEqual({
        dims: [3, 5],
        data: [0, 0, 1, 2, 3, 4, 5, 6, 0, 1, 0, 0, 0, 0, 2],
      });
      expect(prefill!.feeds['attention_mask']).toEqual({
        dims: [3, 5],
        data: [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1],
      });
      expect(prefill!.feeds['position_ids']!.dims).toEqual([3, 5]);
      // (B, P+T), or in place (B, capacity + T).
      const width = strategy === 'rows-in-place' ? GROWTH_SLOTS + 1 : 6;
      expect(decode!.feeds['attention_mask']!.dims).toEqual([3, width]);
      expect(decode!.feeds['position_ids']).toEqual({ dims: [3, 1], data: [3, 5, 1] });
      for (const run of ort.runs) {
        expect(run.feeds['num_logits_to_keep']).toEqual({ dims: [], data: [1] });
      }
    }
  });

  it("'write-present' has onnxruntime write present into preallocated (B, nh, P+T, hs) tensors", async () => {
    const manifest = manifestOf();
    const ort = fakeOrt(manifest);
    await drive(createOnnxDecoder(ort.binding, manifest, 'write-present'), scenario(3));
    ort.runs.forEach((run, index) => {
      const total = 5 + index; // P+T
      const fetches = run.fetches as Record<string, number[] | null>;
      expect(Array.isArray(run.fetches)).toBe(false);
      expect(Object.keys(fetches).sort()).toEqual(
        ['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value'].sort(),
      );
      expect(fetches['logits']).toBeNull();
      for (const name of ['present.0.key', 'present.1.value'])
        expect(fetches[name]).toEqual([BATCH, 2, total, 2]);
    });
  });

  it("'rows-in-place' fetches only logits and this step's rows (as one output); 'keep-present' logits and present", async () => {
    const manifest = manifestOf();
    const rows = fakeOrt(manifest);
    await drive(createOnnxDecoder(rows.binding, manifest, 'rows-in-place'), scenario(2));
    for (const run of rows.runs) expect(run.fetches).toEqual(['logits', CACHE_ROWS_OUTPUT]);
    const keep = fakeOrt(manifest);
    await drive(createOnnxDecoder(keep.binding, manifest, 'keep-present'), scenario(2));
    for (const run of keep.runs) {
      expect(run.fetches).toEqual([
        'logits',
        'present.0.key',
        'present.0.value',
        'present.1.key',
        'present.1.value',
      ]);
    }
    // Without the rows in the manifest there is nothing to fetch them by.
    expect(() =>
      createOnnxDecoder(
        fakeOrt(manifestOf({ rows: false })).binding,
        manifestOf({ rows: false }),
        'rows-in-place',
      ),
    ).toThrow(/'rows-in-place' needs the manifest's outputs\.newKey\/newValue/);
  });

  it('grows its buffers past their first size, up to blockSize, keeping the cache', async () => {
    const blockSize = 140;
    const manifest = manifestOf({ blockSize });
    const steps = scenario(blockSize - 5); // the prefill's 5 slots, then to exactly blockSize
    const expected = await reference(manifest, steps);
    const floatsPerSlot = BATCH * 2 * 2; // (B, nh, ·, hs)
    // The graph is fed GROWTH_SLOTS more past slots at each grow, up to blockSize.
    const ort = fakeOrt(manifest);
    const logits = await drive(createOnnxDecoder(ort.binding, manifest, 'rows-in-place'), steps);
    expect(logits).toEqual(expected);
    const fed = [...new Set(ort.runs.map((run) => run.feeds['past_key_values.0.key']!.dims[2]!))];
    expect(fed).toEqual([
      0,
      GROWTH_SLOTS,
      2 * GROWTH_SLOTS,
      3 * GROWTH_SLOTS,
      4 * GROWTH_SLOTS,
      blockSize,
    ]);
    // The memory behind them: room for twice the slots each time it is taken (at most the
    // block), so every other grow moves the cache within its own buffers.
    const buffers = [
      ...new Set(ort.runs.flatMap((run) => run.memory).filter((memory) => memory.byteLength > 0)),
    ];
    // One buffer per cache input (4) and room, in order of first use.
    const capacities = buffers.map((memory) => memory.byteLength / 4 / floatsPerSlot);
    expect(capacities).toEqual(
      [2 * GROWTH_SLOTS, blockSize].flatMap((capacity) => Array(4).fill(capacity)),
    );
    // Ping-pong: geometric.
    for (const strategy of ['write-present'] as const) {
      const ort = fakeOrt(manifest);
      const logits = await drive(createOnnxDecoder(ort.binding, manifest, strategy), steps);
      expect(logits).toEqual(expected);
      // Capacities (in slots) of the memory the cache lived in, in order of first use.
      const capacities: number[] = [];
      const seen = new Set<ArrayBufferLike>();
      for (const run of ort.runs) {
        for (const memory of run.memory) {
          if (seen.has(memory) || memory.byteLength === 0) continue;
          seen.add(memory);
          const slots = memory.byteLength / 4 / floatsPerSlot;
          if (!capacities.includes(slots)) capacities.push(slots);
        }
      }
      expect(capacities.length).toBeGreaterThanOrEqual(3); // it grew at least twice
      expect(Math.max(...capacities)).toBe(blockSize); // never past blockSize
      for (let index = 1; index < capacities.length; index++) {
        const grown =
          capacities[index]! >= 2 * capacities[index - 1]! || capacities[index] === blockSize;
        expect(grown).toBe(true); // geometric: a few grows, not one per token
      }
    }
  });

  it.each(['write-present', 'rows-in-place'] as const)(
    '%s: reuses released buffers, and no stale value (even NaN) reaches the next generation',
    async (strategy) => {
      const manifest = manifestOf({ blockSize: 100 });
      const steps = scenario(75);
      const expected = await reference(manifest, steps);
      const ort = fakeOrt(manifest);
      const decoder = createOnnxDecoder(ort.binding, manifest, strategy);
      // Generation A grows through several buffers, then gives them all back.
      let state = (await decoder.forward(inputAt(steps, 0), null)).state;
      for (let index = 1; index <= 70; index++) {
        const next = await decoder.forward(inputAt(steps, index), state);
        decoder.release(state);
        state = next.state;
      }
      decoder.release(state);
      const usedByA = new Set(ort.runs.flatMap((run) => run.memory));
      // Poison everything A's cache lived in, as a diverged model would have left it.
      for (const memory of usedByA) new Float32Array(memory).fill(Number.NaN);
      const runsBefore = ort.runs.length;
      let b = await decoder.forward(inputAt(steps, 0), null);
      expect(b.logits).toEqual(expected[0]);
      for (let index = 1; index <= 70; index++) {
        b = await decoder.forward(inputAt(steps, index), b.state);
        expect(b.logits).toEqual(expected[index]);
      }
      // B ran in A's buffers (the pool), not only in new ones.
      const usedByB = ort.runs.slice(runsBefore).flatMap((run) => run.memory);
      expect(usedByB.some((memory) => memory.byteLength > 0 && usedByA.has(memory))).toBe(true);
    },
  );

  it.each(['write-present', 'rows-in-place'] as const)(
    "%s: continues only a chain's newest state",
    async (strategy) => {
      const manifest = manifestOf();
      const steps = scenario(2);
      const decoder = createOnnxDecoder(fakeOrt(manifest).binding, manifest, strategy);
      const first = await decoder.forward(inputAt(steps, 0), null);
      await decoder.forward(inputAt(steps, 1), first.state);
      await expect(decoder.forward(inputAt(steps, 1), first.state)).rejects.toThrow(
        /only the newest state of a generation can be continued/,
      );
    },
  );

  it.each(['write-present', 'rows-in-place'] as const)(
    '%s: never lets two generations share buffers, whatever is released when',
    async (strategy) => {
      const manifest = manifestOf({ blockSize: 100 });
      const steps = scenario(75);
      const expected = await reference(manifest, steps);
      const ort = fakeOrt(manifest);
      const decoder = createOnnxDecoder(ort.binding, manifest, strategy);
      type State = Parameters<typeof decoder.release>[0];
      // Chain A runs past its first buffers (64 slots), then frees its states out of order:
      // the states from before the grow after it, and the last state twice.
      let a = await decoder.forward(inputAt(steps, 0), null);
      const states = [a.state];
      for (let index = 1; index <= 62; index++) {
        a = await decoder.forward(inputAt(steps, index), a.state);
        expect(a.logits).toEqual(expected[index]);
        states.push(a.state);
      }
      expect(a.state.length).toBe(5 + 62); // grown at 65 slots
      for (const state of states.slice(0, -1).reverse()) decoder.release(state);
      decoder.release(a.state);
      decoder.release(a.state);
      decoder.release(states[0]!);
      // Four generations at once, interleaved step by step, the last starting once the others
      // have grown out of their first buffers: each must see only its own cache.
      const chains = [
        { start: 0, count: 76 },
        { start: 0, count: 76 },
        { start: 0, count: 76 },
        { start: 66, count: 10 },
      ].map(({ start, count }) => ({
        start,
        count,
        state: null as State | null,
        memory: [] as ArrayBufferLike[],
      }));
      for (let tick = 0; tick < 76; tick++) {
        for (const chain of chains) {
          const index = tick - chain.start;
          if (index < 0 || index >= chain.count) continue;
          const runsBefore = ort.runs.length;
          const result = await decoder.forward(inputAt(steps, index), chain.state);
          expect(result.logits).toEqual(expected[index]);
          if (chain.state !== null) decoder.release(chain.state);
          chain.state = result.state;
          chain.memory = ort.runs[runsBefore]!.memory.filter((memory) => memory.byteLength > 0);
        }
        // No memory is in two chains' latest steps.
        chains.forEach((chain, i) => {
          for (const other of chains.slice(i + 1)) {
            for (const memory of chain.memory) expect(other.memory).not.toContain(memory);
          }
        });
      }
      expect(chains.map((chain) => chain.state!.length)).toEqual([5 + 75, 5 + 75, 5 + 75, 5 + 9]);
    },
  );

  it("'keep-present' feeds present back as it came, and disposes a state's tensors on release", async () => {
    const manifest = manifestOf();
    const steps = scenario(3);
    const expected = await reference(manifest, steps);
    const ort = fakeOrt(manifest, { onDevice: true }); // present never read on the CPU
    const decoder = createOnnxDecoder(ort.binding, manifest, 'keep-present');
    const first = await decoder.forward(inputAt(steps, 0), null);
    const second = await decoder.forward(inputAt(steps, 1), first.state);
    expect([first.logits, second.logits]).toEqual(expected.slice(0, 2));
    const firstTensors = [...first.state.tensors!.values()] as FakeTensor[];
    expect(firstTensors).toHaveLength(4);
    expect(firstTensors.every((tensor) => !tensor.disposed)).toBe(true);
    decoder.release(first.state);
    expect(firstTensors.every((tensor) => tensor.disposed)).toBe(true);
    const third = await decoder.forward(inputAt(steps, 2), second.state);
    expect(third.logits).toEqual(expected[2]);
    // A released state's tensors are gone: feeding them is the runtime's error.
    await expect(decoder.forward(inputAt(steps, 1), first.state)).rejects.toThrow(/disposed/);
  });

  it.each(STRATEGIES)(
    '%s: refuses inputs of the wrong shape with a RangeError',
    async (strategy) => {
      const manifest = manifestOf({ blockSize: 12 });
      const ort = fakeOrt(manifest);
      const decoder = createOnnxDecoder(ort.binding, manifest, strategy);
      const steps = scenario(3);
      const prefill = inputAt(steps, 0); // (3, 5)
      const refused = async (input: DecoderInput, state: Parameters<typeof decoder.forward>[1]) => {
        const runs = ort.runs.length;
        await expect(decoder.forward(input, state)).rejects.toThrow(RangeError);
        expect(ort.runs.length).toBe(runs); // nothing reached onnxruntime
      };
      await refused({ ...prefill, mask: prefill.mask.slice(0, -1) }, null);
      await refused({ ...prefill, positions: [0, 1] }, null);
      await refused({ ...prefill, batch: 2 }, null); // 15 ids are not (2, T)
      await refused({ ...prefill, batch: 0 }, null);
      await refused({ batch: 1, ids: [], mask: [], positions: [] }, null); // T = 0
      const { state } = await decoder.forward(prefill, null);
      // Another batch size than the cache's.
      await refused({ batch: 1, ids: [1], mask: Array(6).fill(1), positions: [5] }, state);
      // A mask that leaves out the past.
      await refused(
        { batch: 3, ids: [1, 1, 1], mask: Array(3).fill(1), positions: [5, 5, 5] },
        state,
      );
      // 5 cached + 8 new > blockSize 12.
      const eight = Array(3 * 8).fill(1);
      await refused({ batch: 3, ids: eight, mask: Array(3 * 13).fill(1), positions: eight }, state);
      await expect(
        decoder.forward(
          { batch: 3, ids: eight, mask: Array(3 * 13).fill(1), positions: eight },
          state,
        ),
      ).rejects.toThrow(/a context of 13 tokens exceeds blockSize 12/);
      // The refusals left the cache as it was: the next real step gives the reference logits.
      const next = await decoder.forward(inputAt(steps, 1), state);
      expect(next.logits).toEqual((await reference(manifest, steps))[1]);
    },
  );

  it('runs generateBatch to the same texts with every strategy, through window refills', async () => {
    const manifest = manifestOf({ blockSize: 24 });
    const tokenizer = CharTokenizer.fromText('abcdefg');
    const prompts = ['abc', 'gfedcba', 'a'];
    const texts: string[][] = [];
    for (const strategy of STRATEGIES) {
      const decoder = createOnnxDecoder(fakeOrt(manifest).binding, manifest, strategy);
      const batch = generateBatch(decoder, tokenizer, prompts, {
        maxNewTokens: 40,
        seed: 5,
        rows: [undefined, { maxNewTokens: 25 }],
      });
      texts.push(await batch.texts());
      expect(batch.rows[0]!.stats.refills).toBeGreaterThan(0);
    }
    expect(texts[0]!.map((text) => text.length)).toEqual([40, 25, 40]);
    expect(texts[1]).toEqual(texts[0]);
    expect(texts[2]).toEqual(texts[0]);
  });
});
