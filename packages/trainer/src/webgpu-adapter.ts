// WebGPU adapters as tfjs-backend-webgpu will get them, wherever navigator.gpu comes from (a
// browser, or Dawn installed by the Node entry): what an adapter says it is, and loading the
// backend in a browser. A software adapter (SwiftShader, llvmpipe, a fallback adapter) runs
// — tests use SwiftShader — but far slower than wasm, so 'auto' passes it over; ask for
// `webgpu` by name to use it anyway.

/** What the adapter says it is. */
export interface WebGpuAdapterSummary {
  readonly vendor: string;
  readonly architecture: string;
  readonly description: string;
  readonly software: boolean;
}

/** The part of the WebGPU API this needs (the DOM's types are not in every consumer's lib). */
export interface GpuLike {
  requestAdapter(options?: object): Promise<AdapterLike | null>;
}
export interface AdapterLike {
  readonly isFallbackAdapter?: boolean;
  readonly info?: {
    readonly vendor?: string;
    readonly architecture?: string;
    readonly device?: string;
    readonly description?: string;
    readonly isFallbackAdapter?: boolean;
  };
}

/** What an adapter's info says it is. */
export function summarizeAdapter(adapter: AdapterLike): WebGpuAdapterSummary {
  const info = adapter.info ?? {};
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    description: info.description || info.device || '',
    software:
      info.isFallbackAdapter === true ||
      adapter.isFallbackAdapter === true ||
      /swiftshader|llvmpipe|lavapipe|software/i.test(text),
  };
}

export function softwareOnlyError(adapter: WebGpuAdapterSummary): Error {
  return new Error(
    `only a software adapter (${adapter.description || adapter.architecture || adapter.vendor}), slower than wasm; backend 'webgpu' uses it anyway`,
  );
}

/** navigator.gpu, or undefined where the browser (or runtime) has no WebGPU. */
export function browserGpu(): GpuLike | undefined {
  return (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
}

/** The steps of loadBrowserWebGpu, replaceable in tests. */
export interface BrowserWebGpuParts {
  /** navigator.gpu (browserGpu), or undefined where the browser has no WebGPU. */
  readonly gpu: () => GpuLike | undefined;
  /** Registers tfjs's webgpu backend. */
  readonly register: () => Promise<void>;
}

/**
 * Registers tfjs's webgpu backend on the browser's navigator.gpu when it offers an adapter:
 * in 'auto' only a hardware one (a software adapter is a skip, with the reason).
 */
export async function loadBrowserWebGpu(
  context: { readonly requested: boolean },
  parts: BrowserWebGpuParts,
): Promise<void> {
  const gpu = parts.gpu();
  if (!gpu) throw new Error('this browser has no WebGPU (navigator.gpu is missing)');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter (the browser offers none on this machine)');
  const summary = summarizeAdapter(adapter);
  if (summary.software && !context.requested) throw softwareOnlyError(summary);
  await parts.register();
}
