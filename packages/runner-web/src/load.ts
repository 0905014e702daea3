// Loads an exported minigpt model from URLs (or in-memory files) with onnxruntime-web and
// exposes it as a DecoderSession for @minigpt/runtime: WebGPU when the browser offers an
// adapter, wasm otherwise. A thin adapter: the cache bookkeeping is the runtime's
// (createOnnxDecoder). It never imports onnxruntime-node or TensorFlow.js.
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
  modelFileFor,
  tokenizerMismatch,
  type ModelDtype,
  cacheNames,
  cacheRowsOutputs,
  createSessionWithCacheRows,
  checkGraphAgainstManifest,
  createOnnxDecoder,
  graphSignatureOf,
  generate,
  generateBatch,
  parseManifest,
  type BatchGeneration,
  type BatchGenerationOptions,
  type DecoderInput,
  type DecoderSession,
  type ExportManifest,
  type Generation,
  type GenerationOptions,
  type OnnxCacheState,
  type OrtBinding,
} from '@minigpt/runtime';
import { tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import type * as Ort from 'onnxruntime-web';

export type { ModelDtype };

export type WebDevice = 'webgpu' | 'wasm';

/** Where the export is: a base URL holding minigpt.json, or the three files themselves. */
export type ModelSource =
  | string
  | {
      /** onnx/model.onnx (or the int8 graph, with dtype 'q8'): its URL or bytes. */
      readonly model: string | ArrayBuffer | Uint8Array;
      /** minigpt.json: its URL or parsed object. */
      readonly manifest: string | object;
      /** tokenizer.minigpt.json: its URL or parsed object. */
      readonly vocab: string | object;
    };

export interface WebLoadOptions {
  /** Default 'auto': WebGPU when an adapter is available, else wasm. */
  readonly device?: WebDevice | 'auto';
  /** Default 'fp32'. 'q8' loads onnx/model_quantized.onnx (names as transformers.js's dtype). */
  readonly dtype?: ModelDtype;
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

export interface WebLoadedModel {
  readonly manifest: ExportManifest;
  readonly tokenizer: Tokenizer;
  readonly session: DecoderSession<OnnxCacheState>;
  /** The device the session really runs on. */
  readonly device: WebDevice;
  /** The graph loaded. */
  readonly dtype: ModelDtype;
  /** Threads of the wasm backend (on WebGPU it runs the ops the GPU does not). */
  readonly threads: number;
  generate(prompt: string, options?: GenerationOptions): Generation;
  /** Several prompts in one batch (left-padded): each row streams, stops and samples on its own. */
  generateBatch(prompts: readonly string[], options?: BatchGenerationOptions): BatchGeneration;
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
        : manifest.files.vocab;
  const vocabJson =
    files && typeof files.vocab !== 'string' ? files.vocab : await fetchJson(fetchImpl, vocabUrl);
  const tokenizer = tokenizerFromJSON(vocabJson, vocabUrl);
  const mismatch = tokenizerMismatch(tokenizer, manifest);
  if (mismatch) throw new WebRunnerError(`${vocabUrl}: ${mismatch}`);
  const dtype = options.dtype ?? 'fp32';
  const model = modelFileFor(manifest, dtype);
  if ('missing' in model)
    throw new WebRunnerError(`${manifestUrl}: ${model.missing}`, {
      file: manifestUrl,
      rule: 'missing',
    });
  const modelName = model.file;
  const modelUrl =
    typeof source === 'string'
      ? base + modelName
      : typeof files!.model === 'string'
        ? files!.model
        : modelName;
  const fetchedBytes =
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
  // On wasm the runtime keeps the cache in JS, in place, and fetches only each step's rows,
  // which the published graph computes but does not declare (so transformers.js never pays
  // for them); present is dropped, and with it the Concats that copy the whole cache.
  const rowsInPlace = device === 'wasm' && cacheRowsOutputs(manifest).length > 0;
  const sessionOptions: Ort.InferenceSession.SessionOptions = {
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    // On WebGPU the cache stays on the GPU between steps; only logits come back.
    ...(device === 'webgpu' ? { preferredOutputLocation: presentLocations(manifest) } : {}),
  };
  const checkGraph = (checked: Ort.InferenceSession) =>
    checkGraphAgainstManifest(
      manifest,
      graphSignatureOf(checked),
      modelUrl,
      (message) => new WebRunnerError(message, { file: modelUrl, rule: 'graph' }),
    );
  const create = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, sessionOptions);
  let session: Ort.InferenceSession;
  try {
    session = rowsInPlace
      ? await createSessionWithCacheRows(
          fetchedBytes,
          manifest,
          create,
          checkGraph,
          (message) => new WebRunnerError(message, { file: modelUrl, rule: 'graph' }),
          modelUrl,
        )
      : await create(fetchedBytes);
  } catch (error) {
    if (error instanceof MinigptError) throw error;
    throw new WebRunnerError(
      `${modelUrl}: onnxruntime-web cannot load it on ${device} (${fetchedBytes.byteLength} bytes) — truncated or damaged, or ${device} unavailable? (${firstLine(error)})`,
    );
  }
  // Before any cache buffer exists: the buffers are sized from the manifest's numbers.
  try {
    checkGraph(session);
  } catch (error) {
    await session.release();
    throw error;
  }
  const binding: OrtBinding<Ort.Tensor> = {
    int64: (data, dims) => new ort.Tensor('int64', data, dims),
    float32: (data, dims) => new ort.Tensor('float32', data, dims),
    run: (feeds, fetches) => session.run(feeds, fetches as Ort.InferenceSession.FetchesType),
  };
  const core = createOnnxDecoder(binding, manifest, rowsInPlace ? 'rows-in-place' : 'keep-present');
  const maybeYield = createYielder();
  const decoder: DecoderSession<OnnxCacheState> = {
    blockSize: core.blockSize,
    vocabSize: core.vocabSize,
    async forward(input: DecoderInput, state: OnnxCacheState | null) {
      await maybeYield();
      return core.forward(input, state);
    },
    release: (state) => core.release(state),
  };
  return {
    manifest,
    tokenizer,
    session: decoder,
    device,
    dtype,
    threads,
    generate: (prompt, generationOptions) =>
      generate(decoder, tokenizer, prompt, generationOptions),
    generateBatch: (prompts, generationOptions) =>
      generateBatch(decoder, tokenizer, prompts, generationOptions),
    dispose: () => session.release(),
  };
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!;
}

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
