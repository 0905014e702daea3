// A DecoderSession over an onnxruntime session of a minigpt export: builds each step's feeds
// (ids, attention mask, positions, the past cache; num_logits_to_keep = 1 where the graph
// has it) and keeps the cache between steps in one of three ways, so that a runner
// (onnxruntime-node, -web) only adapts its onnxruntime package to OrtBinding and picks the
// way that suits it.
import type { ExportManifest } from './manifest.js';
import { cacheNames } from './manifest.js';
import { OnnxDataType, editGraphOutputs, type OnnxValueInfo } from './onnx-proto.js';
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
 * - 'rows-in-place': one buffer per cache input, (B, nh, capacity, hs), that a step's rows
 *   are written into at their slots; the graph is fed the whole capacity with the empty slots
 *   masked out (attention does not depend on the order of the slots: positions come from
 *   position_ids), and only its own rows come back (the graph's new_key_values values,
 *   declared as outputs in place of present: createSessionWithCacheRows). No step copies the
 *   cache; the capacity grows by GROWTH_SLOTS, copying it then. For runtimes that copy every
 *   fetched output into a fresh array — onnxruntime-web on wasm, and onnxruntime-node too,
 *   even when handed a buffer to write into (runner-node's bench/decode-profile.mjs).
 * - 'write-present': two growing buffers per cache input (ping-pong); onnxruntime writes
 *   present into the one not read. For a runtime that writes preallocated outputs in place
 *   and returns nothing more.
 * - 'keep-present': present tensors are fed back as returned, and freed when replaced (WebGPU,
 *   where they stay on the GPU).
 */
export type CacheStrategy = 'rows-in-place' | 'write-present' | 'keep-present';

/**
 * Slots a 'rows-in-place' cache grows by. Each grow copies the cache once; each step attends
 * over the empty slots too (masked), so 32 costs a step at most 31 masked slots and a window
 * of 1,024 tokens 32 copies instead of one per token.
 */
export const GROWTH_SLOTS = 32;

/**
 * The slots a 'rows-in-place' cache holds once it has `tokens` tokens: whole GROWTH_SLOTS,
 * at most the block. Every later step feeds the graph that many past slots until it grows.
 */
export function cacheCapacity(tokens: number, blockSize: number): number {
  return Math.min(blockSize, Math.ceil(tokens / GROWTH_SLOTS) * GROWTH_SLOTS);
}

interface Buffers {
  /**
   * 'rows-in-place': one array per cache input; 'write-present': two per cache input (the
   * sides of cache input i are 2i and 2i + 1). `floats` each, used as (B, nh, slots, hs) from
   * the start.
   */
  readonly arrays: Float32Array[];
  readonly floats: number;
  /** Serial of the newest state using them; older states cannot be continued or free them. */
  latest: number;
  /** `arrays` as 64-bit words, made with them, for writeCacheRows ('rows-in-place'). */
  readonly words: readonly BigInt64Array[];
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * `values` (integers) as int64s. Ids, positions and mask values fit 32 bits: on a
 * little-endian machine (every one JavaScript runs on in practice) each is written as two
 * 32-bit words, which at batch 16 was a third of the time of a BigInt per value.
 */
export function toInt64(values: ArrayLike<number>): BigInt64Array {
  const data = new BigInt64Array(values.length);
  const words = LITTLE_ENDIAN ? new Int32Array(data.buffer) : undefined;
  for (let index = 0; index < values.length; index++) {
    const value = values[index]!;
    if (words && value === (value | 0)) {
      words[2 * index] = value;
      words[2 * index + 1] = value < 0 ? -1 : 0;
    } else {
      data[index] = BigInt(value);
    }
  }
  return data;
}

/**
 * The step's mask (B, P+T) as the graph sees it with a 'rows-in-place' cache, (B, capacity + T)
 * int64: each row's P past slots, capacity − P masked empty ones, then its T new ones. Written
 * as 32-bit words as toInt64 does (a value is 1 for a real token, 0 for a pad or empty slot).
 */
export function spreadMask(
  mask: ArrayLike<number>,
  batch: number,
  past: number,
  added: number,
  capacity: number,
): BigInt64Array {
  const width = capacity + added;
  const total = past + added;
  const data = new BigInt64Array(batch * width); // zeros: the empty slots stay masked
  const words = new Int32Array(data.buffer);
  const low = LITTLE_ENDIAN ? 0 : 1; // the word of an int64 that holds its low 32 bits
  for (let row = 0; row < batch; row++) {
    const from = row * total;
    const to = row * width;
    for (let slot = 0; slot < past; slot++)
      words[2 * (to + slot) + low] = mask[from + slot] ? 1 : 0;
    for (let t = 0; t < added; t++)
      words[2 * (to + capacity + t) + low] = mask[from + past + t] ? 1 : 0;
  }
  return data;
}

/**
 * Writes a step's rows into 'rows-in-place' caches: `rows` is the packed CACHE_ROWS_OUTPUT,
 * (caches · B, nh, T, hs), and each cache is (B, nh, slots, hs) with the T new slots of every
 * (row, head) at `past`. The rows are short runs (T · hs floats per (row, head), 1,536 of them
 * per step at batch 16 for 6 layers): they move as 64-bit words where both sides allow it, the
 * bits unchanged, which halves the element moves of a float loop — that loop was 9 % of a
 * batch-16 int8 generation (runner-node, --cpu-prof, 2026-12-02), more than anything else
 * outside onnxruntime. `cacheWords`, where given, are the caches' words (cacheWordsOf), so
 * that a step makes no views of its own.
 */
export function writeCacheRows(
  caches: readonly Float32Array[],
  rows: Float32Array,
  heads: number,
  added: number,
  headSize: number,
  slots: number,
  past: number,
  cacheWords?: readonly BigInt64Array[],
): void {
  const rowFloats = added * headSize; // one (row, head)'s new slots
  const wordAligned = (array: Float32Array) => array.byteOffset % 8 === 0;
  if (headSize % 2 === 0 && wordAligned(rows) && caches.every(wordAligned)) {
    // Every run starts at a multiple of hs floats: an even float index, a whole word.
    const rowWords = rowFloats / 2;
    const source = new BigInt64Array(rows.buffer, rows.byteOffset, rows.length >> 1);
    const targets = cacheWords ?? cacheWordsOf(caches);
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index]!;
      const first = (index * heads * rowFloats) / 2; // this cache's (B, nh, T, hs), in words
      for (let head = 0; head < heads; head++) {
        const from = first + head * rowWords;
        const at = ((head * slots + past) * headSize) / 2;
        for (let k = 0; k < rowWords; k++) target[at + k] = source[from + k]!;
      }
    }
    return;
  }
  for (let index = 0; index < caches.length; index++) {
    const cache = caches[index]!;
    const first = index * heads * rowFloats;
    for (let head = 0; head < heads; head++) {
      // A plain loop: at batch 16 a subarray per (row, head) cost more than the copy.
      const from = first + head * rowFloats;
      const at = (head * slots + past) * headSize;
      for (let k = 0; k < rowFloats; k++) cache[at + k] = rows[from + k]!;
    }
  }
}

/** Each cache's 64-bit words (its whole floats, an odd last one left out), for writeCacheRows. */
export function cacheWordsOf(caches: readonly Float32Array[]): BigInt64Array[] {
  return caches.map(
    (cache) => new BigInt64Array(cache.buffer, cache.byteOffset, cache.length >> 1),
  );
}

/** The cache after a step: P slots for each of B rows. */
export interface OnnxCacheState {
  readonly batch: number;
  readonly length: number;
  /** 'write-present': where the cache is. */
  readonly side?: 0 | 1;
  /** 'rows-in-place': slots per (row, head) in the buffers, the first `length` filled. */
  readonly capacity?: number;
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
  if (strategy === 'rows-in-place' && names.some((name) => name.added === undefined))
    throw new Error(
      "createOnnxDecoder: 'rows-in-place' needs the manifest's outputs.newKey/newValue",
    );
  const keepName = manifest.inputs.numLogitsToKeep;
  const numLogitsToKeep = ort.int64(BigInt64Array.of(1n), []); // only the last position's logits
  const heads = (batch: number) => batch * nHead; // (B, nh) rows of a cache tensor

  const int64 = (values: ArrayLike<number>, dims: number[]) => ort.int64(toInt64(values), dims);

  const arraysPerBuffers = strategy === 'write-present' ? 2 * names.length : names.length;
  const pool: Buffers[] = [];
  /**
   * Buffers of at least `floats` each: from the pool (`fresh` false: they hold an earlier
   * generation's values), else new (all zeros). Not zeroed here: at batch 16 zeroing a whole
   * grown cache (12 × 2 MB) cost more than the step's rows; the caller zeroes what it needs.
   */
  const takeBuffers = (floats: number): { buffers: Buffers; fresh: boolean } => {
    const reused = pool.findIndex((buffers) => buffers.floats >= floats);
    if (reused >= 0) return { buffers: pool.splice(reused, 1)[0]!, fresh: false };
    const arrays = Array.from({ length: arraysPerBuffers }, () => new Float32Array(floats));
    return { buffers: { arrays, words: cacheWordsOf(arrays), floats, latest: 0 }, fresh: true };
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

  /** The step's feeds but the cache; `mask` defaults to the input's, (B, P+T). */
  const baseFeeds = (input: DecoderInput, added: number, total: number, mask?: Tensor) => ({
    [manifest.inputs.inputIds]: int64(input.ids, [input.batch, added]), // (B, T)
    [manifest.inputs.attentionMask]: mask ?? int64(input.mask, [input.batch, total]), // (B, P+T)
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

  /** The buffers of `state`, refusing a state that is not its chain's newest. */
  const buffersOf = (state: OnnxCacheState | null) => {
    if (state && state.serial !== state.buffers!.latest)
      throw new Error('DecoderSession: only the newest state of a generation can be continued');
    return state?.buffers;
  };
  const release = (state: OnnxCacheState) => {
    // Older states of a chain share its buffers: only the newest one gives them back.
    if (state.serial === state.buffers!.latest) retire(state.buffers!);
  };
  const emptyPast = (batch: number) =>
    ort.float32(new Float32Array(0), [batch, nHead, 0, headSize]); // (B, nh, 0, hs)

  if (strategy === 'keep-present') {
    return {
      blockSize,
      vocabSize,
      async forward(input, state) {
        const { batch, added, total } = check(input, state);
        const feeds: Record<string, Tensor> = baseFeeds(input, added, total);
        for (const name of names) {
          feeds[name.input] =
            (state?.tensors?.get(name.output) as Tensor | undefined) ?? emptyPast(batch);
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

  if (strategy === 'rows-in-place') {
    const rowsFetches = [manifest.outputs.logits, CACHE_ROWS_OUTPUT];
    return {
      blockSize,
      vocabSize,
      async forward(input, state) {
        const { batch, past, added, total } = check(input, state);
        let buffers = buffersOf(state);
        const capacity = state?.capacity ?? 0;
        const feeds: Record<string, Tensor> = baseFeeds(
          input,
          added,
          total,
          ort.int64(spreadMask(input.mask, batch, past, added, capacity), [
            batch,
            capacity + added,
          ]),
        );
        names.forEach((name, index) => {
          feeds[name.input] = buffers
            ? view(buffers.arrays[index]!, batch, capacity) // (B, nh, capacity, hs)
            : emptyPast(batch);
        });
        const results = await ort.run(feeds, rowsFetches);
        let slots = capacity;
        if (total > capacity) {
          // Grow: the P filled slots of each (row, head) move to the larger stride. Slots past
          // this step's rows are masked, but a weight of 0 times a stale NaN from an earlier
          // generation would still be NaN: those are zeroed (only those).
          slots = cacheCapacity(total, blockSize);
          const floats = heads(batch) * slots * headSize;
          if (buffers && buffers.floats >= floats) {
            // In place, within the room taken last time: the last head moves first, so that no
            // head is overwritten before it has moved. Moving into other buffers touched memory
            // the step had not, and took twice as long at batch 16.
            for (const array of buffers.arrays) {
              for (let head = heads(batch) - 1; head >= 0; head--) {
                const at = head * slots * headSize;
                const was = head * capacity * headSize;
                array.copyWithin(at, was, was + past * headSize);
                array.fill(0, at + total * headSize, at + slots * headSize);
              }
            }
          } else {
            // Room for twice the slots (at most the block), so that the next grow is in place.
            const room = heads(batch) * Math.min(blockSize, 2 * slots) * headSize;
            const { buffers: grown, fresh } = takeBuffers(room);
            grown.arrays.forEach((to, index) => {
              const from = buffers?.arrays[index];
              for (let head = 0; head < heads(batch); head++) {
                const at = head * slots * headSize;
                if (from) {
                  const was = head * capacity * headSize;
                  to.set(from.subarray(was, was + past * headSize), at);
                }
                if (!fresh) to.fill(0, at + total * headSize, at + slots * headSize);
              }
            });
            if (buffers) retire(buffers);
            buffers = grown;
          }
        }
        const rows = results[CACHE_ROWS_OUTPUT]!.data as Float32Array; // (caches · B, nh, T, hs)
        const filled = buffers!;
        writeCacheRows(
          filled.arrays,
          rows,
          heads(batch),
          added,
          headSize,
          slots,
          past,
          filled.words,
        );
        filled.latest++;
        return {
          logits: await logitsOf(results),
          state: { batch, length: total, capacity: slots, serial: filled.latest, buffers: filled },
        };
      },
      release,
    };
  }

  return {
    blockSize,
    vocabSize,
    async forward(input, state) {
      const { batch, past, added, total } = check(input, state);
      let buffers = buffersOf(state);
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
        // onnxruntime writes present's (B, nh, P+T, hs) whole: no slot is read unwritten.
        buffers = takeBuffers(slotFloats * slots).buffers;
      }
      const feeds: Record<string, Tensor> = baseFeeds(input, added, total);
      const fetches: Record<string, Tensor | null> = { [manifest.outputs.logits]: null };
      names.forEach((name, index) => {
        feeds[name.input] = readFrom
          ? view(readFrom.arrays[2 * index + readSide]!, batch, past) // (B, nh, P, hs)
          : emptyPast(batch);
        fetches[name.output] = view(buffers.arrays[2 * index + writeSide]!, batch, total); // (B, nh, P+T, hs)
      });
      const results = await ort.run(feeds, fetches);
      if (readFrom && readFrom !== buffers) retire(readFrom);
      buffers.latest++;
      return {
        logits: await logitsOf(results),
        state: { batch, length: total, side: writeSide, serial: buffers.latest, buffers },
      };
    },
    release,
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
 * The output cacheRowsModel adds: every cache input's rows of the step, concatenated along the
 * batch axis in cacheNames order, (caches · B, nh, T, hs). One fetched output instead of one
 * per cache input: onnxruntime-node allocates and copies each fetched output separately, and at
 * batch 1 the seed-size model's 12 rows outputs cost 7–9 % of a step (runner-node's
 * bench/decode-profile.mjs, part 2b).
 */
export const CACHE_ROWS_OUTPUT = 'minigpt_cache_rows';

/**
 * `model` as the 'rows-in-place' strategy runs it: the cache rows declared as outputs in
 * place of present, so the Concats that build present (a copy of the whole cache per step)
 * are gone from the graph, and the past-attention Ifs are replaced by their branch (unless
 * `inlinePastAttention` is false). The rows are also concatenated into CACHE_ROWS_OUTPUT, which
 * the decoder fetches; they stay declared one by one for checkGraphAgainstManifest (an output
 * that is not fetched costs nothing more: its node runs either way). The exporter's graph
 * attends over the past and the new rows as two operands, so nothing else reads present; in
 * a graph that does read it (exports made before that change), the Concats stay and only the
 * outputs change.
 */
export function cacheRowsModel(
  model: Uint8Array,
  manifest: ExportManifest,
  { inlinePastAttention = true }: { inlinePastAttention?: boolean } = {},
): Uint8Array {
  const rows = cacheRowsOutputs(manifest);
  const { nHead, nEmbd } = manifest.model;
  if (rows.length === 0)
    throw new RangeError(
      'cacheRowsModel: the manifest names no cache rows (outputs.newKey/newValue)',
    );
  return editGraphOutputs(model, {
    addNodes: [
      {
        opType: 'Concat',
        inputs: rows.map((row) => row.name),
        outputs: [CACHE_ROWS_OUTPUT],
        name: CACHE_ROWS_OUTPUT,
        attributes: { axis: { type: 'int', value: 0 } },
      },
    ],
    add: [
      ...rows,
      {
        name: CACHE_ROWS_OUTPUT,
        dataType: OnnxDataType.FLOAT,
        dims: ['caches_x_batch_size', nHead, 'sequence_length', nEmbd / nHead],
      },
    ],
    remove: cacheNames(manifest).map((name) => name.output),
    // 'rows-in-place' runs on onnxruntime's CPU and wasm kernels, where the past-attention
    // If is not needed (PAST_ATTENTION_BRANCH).
    inlinePastAttention,
  });
}

/**
 * A session of cacheRowsModel(`model`), for the 'rows-in-place' strategy; or, when the
 * manifest names no rows, of `model` as it is. The rows are declared from the manifest's
 * names and numbers, so a manifest the graph contradicts makes onnxruntime fail: then the
 * graph as published is loaded and `check` runs on it (it throws the graph check's error),
 * or, if that passes, `makeError` names the rows the graph does not compute. When the
 * published graph fails too, or its bytes are not an encoded model, the first error is
 * rethrown (the file is damaged: the caller says so).
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
    return await create(cacheRowsModel(model, manifest));
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
