// A DecoderSession over an onnxruntime session of a minigpt export: builds each step's feeds
// (ids, attention mask, positions, the past cache; num_logits_to_keep = 1 where the graph
// has it) and keeps the
// cache between steps in one of three ways, so that a runner (onnxruntime-node, -web) only
// adapts its onnxruntime package to OrtBinding and picks the way that suits it.
import type { ExportManifest } from './manifest.js';
import { cacheNames } from './manifest.js';
import { OnnxDataType, appendGraphOutputs, type OnnxValueInfo } from './onnx-proto.js';
import type { DecoderInput, DecoderSession } from './session.js';

/** The part of an onnxruntime Tensor the decoder touches (node and web have it alike). */
export interface OrtTensorLike {
  readonly dims: readonly number[];
  /** CPU data; for a tensor kept on a device, use getData. */
  readonly data: unknown;
  getData?(): Promise<unknown>;
  dispose?(): void;
}

/** The calls the decoder makes on a runner's onnxruntime. */
export interface OrtBinding<Tensor extends OrtTensorLike = OrtTensorLike> {
  int64(data: BigInt64Array, dims: readonly number[]): Tensor;
  float32(data: Float32Array, dims: readonly number[]): Tensor;
  /**
   * `session.run(feeds, fetches)`: a list of output names, or names mapped to tensors the
   * runtime should write into (null: it allocates).
   */
  run(
    feeds: Record<string, Tensor>,
    fetches: readonly string[] | Record<string, Tensor | null>,
  ): Promise<Record<string, Tensor>>;
}

/**
 * How the cache lives between steps:
 * - 'copy-rows': two growing buffers per cache input (ping-pong); a step reads the past from
 *   one, fetches only its own rows (the graph's new_key_values values, added as outputs) and
 *   lays past and rows into the other. For runtimes that copy every fetched output into a
 *   fresh array — onnxruntime-web on wasm, and onnxruntime-node too, even when handed a buffer
 *   to write into: copying the whole present out per token cost as much as the step itself,
 *   twice as much at batch 16 (runner-node's bench/decode-profile.mjs).
 * - 'write-present': the same buffers; onnxruntime writes present into the one not read. For a
 *   runtime that writes preallocated outputs in place and returns nothing more.
 * - 'keep-present': present tensors are fed back as returned, and freed when replaced (WebGPU,
 *   where they stay on the GPU).
 */
export type CacheStrategy = 'write-present' | 'copy-rows' | 'keep-present';

interface Buffers {
  /** Per cache input, two sides of `floats` each, used as (B, nh, slots, hs) from the start. */
  readonly sides: Array<[Float32Array, Float32Array]>;
  readonly floats: number;
  /** Serial of the newest state using them; older states cannot be continued or free them. */
  latest: number;
}

/** The cache after a step: P slots for each of B rows. */
export interface OnnxCacheState {
  readonly batch: number;
  readonly length: number;
  /** 'write-present' and 'copy-rows': where the cache is. */
  readonly side?: 0 | 1;
  readonly serial?: number;
  readonly buffers?: Buffers;
  /** 'keep-present': the present tensors, by cache input. */
  readonly tensors?: ReadonlyMap<string, OrtTensorLike>;
}

export function createOnnxDecoder<Tensor extends OrtTensorLike>(
  ort: OrtBinding<Tensor>,
  manifest: ExportManifest,
  strategy: CacheStrategy,
): DecoderSession<OnnxCacheState> {
  const { nHead, nEmbd, vocabSize, blockSize } = manifest.model;
  const headSize = nEmbd / nHead;
  const names = cacheNames(manifest);
  if (strategy === 'copy-rows' && names.some((name) => name.added === undefined))
    throw new Error("createOnnxDecoder: 'copy-rows' needs the manifest's outputs.newKey/newValue");
  const keepName = manifest.inputs.numLogitsToKeep;
  const numLogitsToKeep = ort.int64(BigInt64Array.of(1n), []); // only the last position's logits
  const heads = (batch: number) => batch * nHead; // (B, nh) rows of a cache tensor

  const int64 = (values: ArrayLike<number>, dims: number[]) => {
    const data = new BigInt64Array(values.length);
    for (let index = 0; index < values.length; index++) data[index] = BigInt(values[index]!);
    return ort.int64(data, dims);
  };

  const pool: Buffers[] = [];
  /** Buffers of at least `floats` each: from the pool, else new. */
  const takeBuffers = (floats: number): Buffers => {
    const reused = pool.findIndex((buffers) => buffers.floats >= floats);
    if (reused >= 0) return pool.splice(reused, 1)[0]!;
    return {
      sides: names.map(() => [new Float32Array(floats), new Float32Array(floats)]),
      floats,
      latest: 0,
    };
  };
  const retire = (buffers: Buffers) => {
    buffers.latest++; // states still pointing here can no longer continue or free them
    if (pool.length < 4) pool.push(buffers);
  };

  function check(input: DecoderInput, state: OnnxCacheState | null) {
    const { batch } = input;
    const past = state?.length ?? 0;
    if (!Number.isInteger(batch) || batch < 1)
      throw new RangeError(`batch must be a positive integer, got ${batch}`);
    if (state && state.batch !== batch)
      throw new RangeError(`the cache holds ${state.batch} rows, but the step has ${batch}`);
    const added = input.ids.length / batch;
    if (!Number.isInteger(added) || added < 1 || input.positions.length !== input.ids.length)
      throw new RangeError('ids and positions must both be (B, T) with T ≥ 1');
    const total = past + added;
    if (input.mask.length !== batch * total)
      throw new RangeError(`mask must be (B, P+T) = (${batch}, ${total})`);
    if (total > blockSize)
      throw new RangeError(`a context of ${total} tokens exceeds blockSize ${blockSize}`);
    return { batch, past, added, total };
  }

  const baseFeeds = (input: DecoderInput, added: number, total: number) => ({
    [manifest.inputs.inputIds]: int64(input.ids, [input.batch, added]), // (B, T)
    [manifest.inputs.attentionMask]: int64(input.mask, [input.batch, total]), // (B, P+T)
    [manifest.inputs.positionIds]: int64(input.positions, [input.batch, added]), // (B, T)
    ...(keepName !== undefined ? { [keepName]: numLogitsToKeep } : {}), // ()
  });

  /** A (B, nh, length, hs) view of the start of `buffer`. */
  const view = (buffer: Float32Array, batch: number, length: number) =>
    ort.float32(buffer.subarray(0, heads(batch) * length * headSize), [
      batch,
      nHead,
      length,
      headSize,
    ]);

  /** Each row's last position's logits, (B, V), from logits (B, K, V). */
  async function logitsOf(results: Record<string, Tensor>): Promise<Float32Array> {
    const logits = results[manifest.outputs.logits]!;
    const data = (logits.getData ? await logits.getData() : logits.data) as Float32Array;
    const [batch, kept] = logits.dims as [number, number, number];
    if (kept === 1) return data.slice(); // onnxruntime may reuse its output array next run
    const last = new Float32Array(batch * vocabSize);
    for (let row = 0; row < batch; row++) {
      const at = (row * kept + kept - 1) * vocabSize;
      last.set(data.subarray(at, at + vocabSize), row * vocabSize);
    }
    return last;
  }

  if (strategy === 'keep-present') {
    return {
      blockSize,
      vocabSize,
      async forward(input, state) {
        const { batch, added, total } = check(input, state);
        const feeds: Record<string, Tensor> = baseFeeds(input, added, total);
        for (const name of names) {
          feeds[name.input] =
            (state?.tensors?.get(name.output) as Tensor | undefined) ??
            ort.float32(new Float32Array(0), [batch, nHead, 0, headSize]); // (B, nh, 0, hs)
        }
        const results = await ort.run(feeds, [
          manifest.outputs.logits,
          ...names.map((name) => name.output),
        ]);
        const tensors = new Map(names.map((name) => [name.output, results[name.output]!]));
        return { logits: await logitsOf(results), state: { batch, length: total, tensors } };
      },
      release(state) {
        // GPU-resident tensors hold GPU buffers: free them as soon as they are replaced.
        for (const tensor of state.tensors?.values() ?? []) tensor.dispose?.();
      },
    };
  }

  const rowsFetches = [manifest.outputs.logits, ...names.map((name) => name.added!)];
  return {
    blockSize,
    vocabSize,
    async forward(input, state) {
      const { batch, past, added, total } = check(input, state);
      let buffers = state?.buffers;
      if (state && state.serial !== buffers!.latest)
        throw new Error('DecoderSession: only the newest state of a generation can be continued');
      const readSide = state?.side ?? 0;
      const writeSide = readSide === 0 ? 1 : 0;
      const readFrom = buffers;
      const slotFloats = heads(batch) * headSize; // floats of one cache slot across the batch
      if (!buffers || buffers.floats < slotFloats * total) {
        // Grow geometrically up to blockSize: a batch of 16 short prompts need not hold 16
        // full windows. The past is read from the old buffers this one step.
        const slots = Math.min(
          blockSize,
          Math.max(total, 2 * Math.floor((buffers?.floats ?? 0) / slotFloats), 64),
        );
        buffers = takeBuffers(slotFloats * slots);
      }
      const feeds: Record<string, Tensor> = baseFeeds(input, added, total);
      names.forEach((name, index) => {
        feeds[name.input] = readFrom
          ? view(readFrom.sides[index]![readSide], batch, past)
          : ort.float32(new Float32Array(0), [batch, nHead, 0, headSize]); // (B, nh, P, hs)
      });
      let results: Record<string, Tensor>;
      if (strategy === 'write-present') {
        const fetches: Record<string, Tensor | null> = { [manifest.outputs.logits]: null };
        names.forEach((name, index) => {
          fetches[name.output] = view(buffers.sides[index]![writeSide], batch, total); // (B, nh, P+T, hs)
        });
        results = await ort.run(feeds, fetches);
      } else {
        results = await ort.run(feeds, rowsFetches);
        names.forEach((name, index) => {
          const from = readFrom?.sides[index]![readSide];
          const to = buffers.sides[index]![writeSide];
          const rows = results[name.added!]!.data as Float32Array; // (B, nh, T, hs)
          for (let head = 0; head < heads(batch); head++) {
            // (B, nh, P+T, hs): each (row, head)'s P past slots, then its T new ones.
            const at = head * total * headSize;
            if (from)
              to.set(from.subarray(head * past * headSize, (head + 1) * past * headSize), at);
            to.set(
              rows.subarray(head * added * headSize, (head + 1) * added * headSize),
              at + past * headSize,
            );
          }
        });
      }
      if (readFrom && readFrom !== buffers) retire(readFrom);
      buffers.latest++;
      return {
        logits: await logitsOf(results),
        state: { batch, length: total, side: writeSide, serial: buffers.latest, buffers },
      };
    },
    release(state) {
      // Older states of a chain share its buffers: only the newest one gives them back.
      if (state.serial === state.buffers!.latest) retire(state.buffers!);
    },
  };
}

/** The cache-rows values (new_key_values.*) as graph outputs (B, nh, T, hs), when named. */
export function cacheRowsOutputs(manifest: ExportManifest): OnnxValueInfo[] {
  const { nHead, nEmbd } = manifest.model;
  return cacheNames(manifest).flatMap((name) =>
    name.added === undefined
      ? []
      : [
          {
            name: name.added,
            dataType: OnnxDataType.FLOAT,
            dims: ['batch_size', nHead, 'sequence_length', nEmbd / nHead],
          },
        ],
  );
}

/**
 * A session of `model` with its cache rows declared as outputs (appendGraphOutputs), for the
 * 'copy-rows' strategy; or, when the manifest names no rows, of `model` as it is. The rows
 * are declared from the manifest's names and numbers, so a manifest the graph contradicts
 * makes onnxruntime fail: then the graph as published is loaded and `check` runs on it (it
 * throws the graph check's error), or, if that passes, `makeError` names the rows the graph
 * does not compute. When the published graph fails too, the first error is rethrown (the
 * file is damaged: the caller says so).
 */
export async function createSessionWithCacheRows<Session extends { release(): Promise<void> }>(
  model: Uint8Array,
  manifest: ExportManifest,
  create: (model: Uint8Array) => Promise<Session>,
  check: (session: Session) => void,
  makeError: (message: string) => Error,
  source: string,
): Promise<Session> {
  const rows = cacheRowsOutputs(manifest);
  if (rows.length === 0) return create(model);
  try {
    return await create(appendGraphOutputs(model, rows));
  } catch (error) {
    let published: Session;
    try {
      published = await create(model);
    } catch {
      throw error;
    }
    try {
      check(published);
    } finally {
      await published.release();
    }
    const { newKey, newValue } = manifest.outputs;
    throw makeError(
      `${source}: the graph computes no values named as minigpt.json's outputs.newKey "${newKey}" and outputs.newValue "${newValue}" say. The model and its minigpt.json are not from the same export: re-export the checkpoint with \`minigpt export\``,
    );
  }
}
