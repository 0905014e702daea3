// Loads an exported minigpt model from URLs (or in-memory files) with onnxruntime-web and
// exposes it as a DecoderSession for @minigpt/runtime: WebGPU when the browser offers an
// adapter, wasm otherwise. It never imports onnxruntime-node or TensorFlow.js.
import {
  cacheNames,
  generate,
  parseManifest,
  type DecoderSession,
  type ExportManifest,
  type Generation,
  type GenerationOptions,
} from '@minigpt/runtime';
import { tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import * as ort from 'onnxruntime-web';

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
  /** For tests and custom hosting. Default: the global fetch. */
  readonly fetch?: typeof fetch;
}

export class WebRunnerError extends Error {
  override name = 'WebRunnerError';
}

interface CacheState {
  readonly length: number;
  readonly tensors: ReadonlyMap<string, ort.Tensor>;
}

export interface WebLoadedModel {
  readonly manifest: ExportManifest;
  readonly tokenizer: Tokenizer;
  readonly session: DecoderSession<CacheState>;
  /** The device the session really runs on. */
  readonly device: WebDevice;
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
  let session: ort.InferenceSession;
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
  const decoder = createDecoderSession(session, manifest);
  return {
    manifest,
    tokenizer,
    session: decoder,
    device,
    generate: (prompt, generationOptions) =>
      generate(decoder, tokenizer, prompt, generationOptions),
    dispose: () => session.release(),
  };
}

function presentLocations(manifest: ExportManifest): Record<string, 'gpu-buffer' | 'cpu'> {
  const locations: Record<string, 'gpu-buffer' | 'cpu'> = { [manifest.outputs.logits]: 'cpu' };
  for (const { output } of cacheNames(manifest)) locations[output] = 'gpu-buffer';
  return locations;
}

function createDecoderSession(
  session: ort.InferenceSession,
  manifest: ExportManifest,
): DecoderSession<CacheState> {
  const { nHead, nEmbd, vocabSize, blockSize } = manifest.model;
  const headSize = nEmbd / nHead;
  const names = cacheNames(manifest);
  let lastYield = Date.now();
  return {
    blockSize,
    vocabSize,
    async forward(ids, state) {
      // A wasm run resolves through microtasks only; without a macrotask turn now and then the
      // page would neither repaint nor take clicks (a Stop button) while tokens stream.
      if (Date.now() - lastYield > 30) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        lastYield = Date.now();
      }
      const feeds: Record<string, ort.Tensor> = {
        [manifest.inputs.inputIds]: new ort.Tensor(
          'int64',
          BigInt64Array.from(ids, (id) => BigInt(id)),
          [1, ids.length],
        ), // (1, T)
      };
      for (const { input, output } of names) {
        feeds[input] =
          state?.tensors.get(output) ??
          new ort.Tensor('float32', new Float32Array(0), [1, nHead, 0, headSize]); // (1, nh, P, hs)
      }
      const results = await session.run(feeds);
      const logitsTensor = results[manifest.outputs.logits]!;
      const logits = (await logitsTensor.getData()) as Float32Array; // (1, T, V)
      const tensors = new Map<string, ort.Tensor>();
      for (const [key, value] of Object.entries(results))
        if (key !== manifest.outputs.logits) tensors.set(key, value);
      return {
        logits: logits.slice((ids.length - 1) * vocabSize),
        state: { length: (state?.length ?? 0) + ids.length, tensors },
      };
    },
    release(state) {
      // GPU-resident cache tensors hold GPU buffers: free them as soon as they are replaced.
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
