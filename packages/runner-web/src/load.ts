// Loads an exported minigpt model from URLs (or in-memory files) with onnxruntime-web and
// exposes it as a DecoderSession for @minigpt/runtime: WebGPU when the browser offers an
// adapter, wasm otherwise. It never imports onnxruntime-node or TensorFlow.js.
//
// onnxruntime-web is imported per device, and only when a model is loaded: its wasm-only
// build (a 14 MB .wasm) runs ~25 % faster than the WebGPU-capable one (28 MB, asyncify), and
// as a chunk of its own it can start its thread workers from its own URL — bundled into the
// page's chunk, each worker would start the page's script instead and never answer.
//
// Every file is untrusted: parseManifest admits only plain file names, so the model and vocab
// URLs (base URL + name) stay beside minigpt.json, and the graph's own signature must agree
// with the manifest before any cache buffer is sized from it.
import { MinigptError } from '@minigpt/errors';
import {
  cacheNames,
  type CacheNames,
  checkGraphAgainstManifest,
  graphSignatureOf,
  generate,
  parseManifest,
  type DecoderSession,
  type ExportManifest,
  type Generation,
  type GenerationOptions,
} from '@minigpt/runtime';
import { tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import type * as Ort from 'onnxruntime-web';

export type WebDevice = 'webgpu' | 'wasm';

/** Where the export is: a base URL holding minigpt.json, or the three files themselves. */
export type ModelSource =
  | string
  | {
      /** model.onnx: its URL or bytes. */
      readonly model: string | ArrayBuffer | Uint8Array;
      /** minigpt.json: its URL or parsed object. */
      readonly manifest: string | object;
      /** vocab.json: its URL or parsed object. */
      readonly vocab: string | object;
    };

export interface WebLoadOptions {
  /** Default 'auto': WebGPU when an adapter is available, else wasm. */
  readonly device?: WebDevice | 'auto';
  /**
   * Threads of the wasm backend. Default: on a cross-origin isolated page (COOP/COEP
   * headers) every core up to 4 — generation keeps them all busy, and the calling thread
   * only waits (onnxruntime-web alone would take half: 1 of 2 cores gave 840–930 tokens/s,
   * 2 gave 1,000–1,100, seed-size model); 1 on any other page, where threads are unavailable.
   */
  readonly threads?: number;
  /** For tests and custom hosting. Default: the global fetch. */
  readonly fetch?: typeof fetch;
}

export class WebRunnerError extends MinigptError {
  override name = 'WebRunnerError';
}

type OrtModule = typeof Ort;

/** The present tensors as returned (on WebGPU, kept on the GPU). */
interface PresentCacheState {
  readonly length: number;
  readonly tensors: ReadonlyMap<string, Ort.Tensor>;
}

/** wasm: the cache in one side of a generation's ping-pong buffers (see createWasmSession). */
interface WasmCacheState {
  readonly length: number;
  readonly side: 0 | 1;
  readonly serial: number;
  readonly buffers: CacheBuffers;
}

interface CacheBuffers {
  /** Per cache input, two (1, nh, blockSize, hs) buffers. */
  readonly sides: Array<[Float32Array, Float32Array]>;
  /** Serial of the newest state using them; older states cannot be continued. */
  latest: number;
}

type CacheState = WasmCacheState | PresentCacheState;

export interface WebLoadedModel {
  readonly manifest: ExportManifest;
  readonly tokenizer: Tokenizer;
  readonly session: DecoderSession<CacheState>;
  /** The device the session really runs on. */
  readonly device: WebDevice;
  /** Threads of the wasm backend (on WebGPU it runs the ops the GPU does not). */
  readonly threads: number;
  generate(prompt: string, options?: GenerationOptions): Generation;
  dispose(): Promise<void>;
}

/** true when this environment has WebGPU with an adapter (it may still lack one). */
export async function hasWebGpuAdapter(): Promise<boolean> {
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } })
    .navigator?.gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

export async function loadModel(
  source: ModelSource,
  options: WebLoadOptions = {},
): Promise<WebLoadedModel> {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const files = typeof source === 'string' ? undefined : source;
  const base = typeof source === 'string' ? source.replace(/\/?$/, '/') : '';
  const manifestUrl =
    typeof source === 'string'
      ? `${base}minigpt.json`
      : typeof files!.manifest === 'string'
        ? files!.manifest
        : 'minigpt.json';
  const manifestJson =
    files && typeof files.manifest !== 'string'
      ? files.manifest
      : await fetchJson(fetchImpl, manifestUrl);
  const manifest = parseManifest(manifestJson, manifestUrl);
  const vocabUrl =
    typeof source === 'string'
      ? base + manifest.files.vocab
      : typeof files!.vocab === 'string'
        ? files!.vocab
        : 'vocab.json';
  const vocabJson =
    files && typeof files.vocab !== 'string' ? files.vocab : await fetchJson(fetchImpl, vocabUrl);
  const tokenizer = tokenizerFromJSON(vocabJson, vocabUrl);
  if (tokenizer.vocabSize !== manifest.model.vocabSize) {
    throw new WebRunnerError(
      `${vocabUrl}: the tokenizer has ${tokenizer.vocabSize} tokens but the model (minigpt.json) has ${manifest.model.vocabSize}: they are not from the same export`,
    );
  }
  const modelUrl =
    typeof source === 'string'
      ? base + manifest.files.model
      : typeof files!.model === 'string'
        ? files!.model
        : 'model.onnx';
  const modelBytes =
    files && typeof files.model !== 'string'
      ? toBytes(files.model)
      : await fetchBytes(fetchImpl, modelUrl);

  const requested = options.device ?? 'auto';
  const device: WebDevice =
    requested === 'auto' ? ((await hasWebGpuAdapter()) ? 'webgpu' : 'wasm') : requested;
  if (
    options.threads !== undefined &&
    (!Number.isInteger(options.threads) || options.threads < 1)
  ) {
    throw new WebRunnerError(`threads must be a positive integer, got ${options.threads}`);
  }
  const ort = await importOrt(device);
  const threads = options.threads ?? defaultThreads();
  ort.env.wasm.numThreads = threads;
  let session: Ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes, {
      executionProviders: [device],
      graphOptimizationLevel: 'all',
      // On WebGPU the cache stays on the GPU between steps; only logits come back.
      ...(device === 'webgpu' ? { preferredOutputLocation: presentLocations(manifest) } : {}),
    });
  } catch (error) {
    throw new WebRunnerError(
      `${modelUrl}: onnxruntime-web cannot load it on ${device} (${modelBytes.byteLength} bytes) — truncated or damaged, or ${device} unavailable? (${String((error as Error)?.message ?? error).split('\n')[0]})`,
    );
  }
  // Before any cache buffer exists: the buffers are sized from the manifest's numbers.
  try {
    checkGraphAgainstManifest(
      manifest,
      graphSignatureOf(session),
      modelUrl,
      (message) => new WebRunnerError(message, { file: modelUrl, rule: 'graph' }),
    );
  } catch (error) {
    await session.release();
    throw error;
  }
  const names = cacheNames(manifest);
  const decoder: DecoderSession<CacheState> =
    device === 'webgpu'
      ? createPresentSession(ort, session, manifest, names)
      : names.every((name) => name.added)
        ? createWasmSession(ort, session, manifest, names)
        : createPresentSession(ort, session, manifest, names);
  return {
    manifest,
    tokenizer,
    session: decoder,
    device,
    threads,
    generate: (prompt, generationOptions) =>
      generate(decoder, tokenizer, prompt, generationOptions),
    dispose: () => session.release(),
  };
}

/** onnxruntime-web's view of the graph's inputs and outputs, as the runtime's check reads it. */
function presentLocations(manifest: ExportManifest): Record<string, 'gpu-buffer' | 'cpu'> {
  const locations: Record<string, 'gpu-buffer' | 'cpu'> = { [manifest.outputs.logits]: 'cpu' };
  for (const { output } of cacheNames(manifest)) locations[output] = 'gpu-buffer';
  return locations;
}

function defaultThreads(): number {
  const scope = globalThis as {
    crossOriginIsolated?: boolean;
    navigator?: { hardwareConcurrency?: number };
  };
  // Outside a browser (Node tests) this build can neither count cores nor start threads.
  if (!scope.crossOriginIsolated || !scope.navigator) return 1;
  return Math.max(1, Math.min(4, scope.navigator.hardwareConcurrency || 1));
}

async function importOrt(device: WebDevice): Promise<OrtModule> {
  return (await (device === 'webgpu'
    ? import('onnxruntime-web/webgpu')
    : import('onnxruntime-web/wasm'))) as OrtModule;
}

/** Feeds for one step: the ids (1, T) and each cache input, from `pastTensor`. */
function stepFeeds(
  ort: OrtModule,
  manifest: ExportManifest,
  ids: readonly number[],
  names: readonly CacheNames[],
  pastTensor: (name: CacheNames, index: number) => Ort.Tensor,
): Record<string, Ort.Tensor> {
  const feeds: Record<string, Ort.Tensor> = {
    [manifest.inputs.inputIds]: new ort.Tensor(
      'int64',
      BigInt64Array.from(ids, (id) => BigInt(id)),
      [1, ids.length],
    ), // (1, T)
  };
  names.forEach((name, index) => (feeds[name.input] = pastTensor(name, index)));
  return feeds;
}

/**
 * A wasm run resolves through microtasks only; without a macrotask turn now and then a page
 * would neither repaint nor take clicks (a Stop button) while tokens stream.
 */
function createYielder(): () => Promise<void> {
  let lastYield = 0;
  let lastCall = 0;
  return async () => {
    const now = Date.now();
    // A pause between calls (a new generation) gave the event loop its turns already; a yield
    // on a first token would wait for the page's next frame (~16 ms).
    if (now - lastCall > 30) lastYield = now;
    if (now - lastYield > 30) {
      await yieldToEventLoop();
      lastYield = Date.now();
    }
    lastCall = Date.now();
  };
}

/**
 * wasm: the cache lives in JS, in two preallocated buffers per cache input (ping-pong), and
 * each step fetches only its own rows (new_key_values, (1, nh, T, hs)) besides the logits.
 * onnxruntime-web copies every fetched output out of its heap into a fresh array, so fetching
 * the whole present cache cost as much as the step's compute in Chromium (seed-size model:
 * 1.2–1.7 ms → 0.7 ms a step). Laying out past + new rows into the other buffer is one
 * memcpy per head. Buffers belong to one chain of states and return to a pool on release,
 * so concurrent generations never share them.
 */
function createWasmSession(
  ort: OrtModule,
  session: Ort.InferenceSession,
  manifest: ExportManifest,
  names: readonly CacheNames[],
): DecoderSession<WasmCacheState> {
  const { nHead, nEmbd, vocabSize, blockSize } = manifest.model;
  const headSize = nEmbd / nHead;
  const slot = nHead * blockSize * headSize; // floats in one (1, nh, blockSize, hs) cache
  const fetchNames = [manifest.outputs.logits, ...names.map((name) => name.added!)];
  const pool: CacheBuffers[] = [];
  const newBuffers = (): CacheBuffers => ({
    sides: names.map(() => [new Float32Array(slot), new Float32Array(slot)]),
    latest: 0,
  });
  const maybeYield = createYielder();
  return {
    blockSize,
    vocabSize,
    async forward(ids, state) {
      await maybeYield();
      const buffers = state?.buffers ?? pool.pop() ?? newBuffers();
      if (state && state.serial !== buffers.latest) {
        throw new Error('DecoderSession: only the newest state of a generation can be continued');
      }
      const past = state?.length ?? 0;
      const added = ids.length;
      const total = past + added;
      if (total > blockSize)
        throw new RangeError(`a context of ${total} tokens exceeds blockSize ${blockSize}`);
      const readSide = state?.side ?? 0;
      const writeSide = readSide === 0 ? 1 : 0;
      const feeds = stepFeeds(
        ort,
        manifest,
        ids,
        names,
        (_, index) =>
          new ort.Tensor(
            'float32',
            buffers.sides[index]![readSide].subarray(0, nHead * past * headSize),
            [1, nHead, past, headSize],
          ), // (1, nh, P, hs)
      );
      const results = await session.run(feeds, fetchNames);
      names.forEach((name, index) => {
        const from = buffers.sides[index]![readSide];
        const to = buffers.sides[index]![writeSide];
        const rows = results[name.added!]!.data as Float32Array; // (1, nh, T, hs)
        for (let head = 0; head < nHead; head++) {
          // (1, nh, P+T, hs): head h's P past rows, then its T new ones.
          const at = head * total * headSize;
          to.set(from.subarray(head * past * headSize, (head + 1) * past * headSize), at);
          to.set(
            rows.subarray(head * added * headSize, (head + 1) * added * headSize),
            at + past * headSize,
          );
        }
      });
      const logits = results[manifest.outputs.logits]!.data as Float32Array; // (1, T, V)
      buffers.latest++;
      return {
        logits: logits.slice((added - 1) * vocabSize),
        state: { length: total, side: writeSide, serial: buffers.latest, buffers },
      };
    },
    release(state) {
      // Older states of the chain share its buffers: only the newest one gives them back.
      if (state.serial === state.buffers.latest && pool.length < 4) {
        state.buffers.latest++;
        pool.push(state.buffers);
      }
    },
  };
}

/**
 * The present tensors fed back as the next step's past. On WebGPU they stay on the GPU
 * between steps ('gpu-buffer') and only logits come back; on wasm this serves exports made
 * before new_key_values existed.
 */
function createPresentSession(
  ort: OrtModule,
  session: Ort.InferenceSession,
  manifest: ExportManifest,
  names: readonly CacheNames[],
): DecoderSession<PresentCacheState> {
  const { nHead, nEmbd, vocabSize, blockSize } = manifest.model;
  const headSize = nEmbd / nHead;
  const fetchNames = [manifest.outputs.logits, ...names.map((name) => name.output)];
  const maybeYield = createYielder();
  return {
    blockSize,
    vocabSize,
    async forward(ids, state) {
      await maybeYield();
      const feeds = stepFeeds(
        ort,
        manifest,
        ids,
        names,
        (name) =>
          state?.tensors.get(name.output) ??
          new ort.Tensor('float32', new Float32Array(0), [1, nHead, 0, headSize]), // (1, nh, P, hs)
      );
      const results = await session.run(feeds, fetchNames);
      const logits = (await results[manifest.outputs.logits]!.getData()) as Float32Array; // (1, T, V)
      const tensors = new Map(names.map((name) => [name.output, results[name.output]!]));
      return {
        logits: logits.slice((ids.length - 1) * vocabSize),
        state: { length: (state?.length ?? 0) + ids.length, tensors },
      };
    },
    release(state) {
      // GPU-resident cache tensors hold GPU buffers: free them as soon as they are replaced
      // (for wasm's CPU tensors this only drops the data).
      for (const tensor of state.tensors.values()) tensor.dispose();
    },
  };
}

async function fetchJson(fetchImpl: typeof fetch, url: string): Promise<unknown> {
  const response = await fetchOrExplain(fetchImpl, url);
  try {
    return await response.json();
  } catch {
    throw new WebRunnerError(
      `${url}: not valid JSON (damaged, or the server returned a page instead of the file?)`,
    );
  }
}

async function fetchBytes(fetchImpl: typeof fetch, url: string): Promise<Uint8Array> {
  return new Uint8Array(await (await fetchOrExplain(fetchImpl, url)).arrayBuffer());
}

async function fetchOrExplain(fetchImpl: typeof fetch, url: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetchImpl(url);
  } catch (error) {
    throw new WebRunnerError(`${url}: cannot be fetched (${(error as Error).message})`);
  }
  if (!response.ok)
    throw new WebRunnerError(
      `${url}: HTTP ${response.status} ${response.statusText} — is the export served at this URL?`,
    );
  return response;
}

function toBytes(data: ArrayBuffer | Uint8Array): Uint8Array {
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

// setTimeout(0) is clamped to ≥ 4 ms once timers nest, which cost a streaming page a tenth
// of its speed; a message on a MessageChannel is a macrotask without that clamp.
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    // The DOM's MessagePort (typed here as Node's, which has the same onmessage at run time).
    (channel.port1 as unknown as { onmessage: () => void }).onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
