// WebGPU for training in Node: @tensorflow/tfjs-backend-webgpu on Dawn, through the `webgpu`
// package (Dawn's Node binding, binaries inside the npm package; Vulkan, Metal or D3D12
// underneath). Both packages are optional peers. A software adapter (SwiftShader,
// llvmpipe…) works — tests use SwiftShader — but is far slower than wasm, so 'auto' passes
// it over; ask for `webgpu` by name to use it anyway.

/** What the adapter says it is. */
export interface WebGpuAdapterSummary {
  readonly vendor: string;
  readonly architecture: string;
  readonly description: string;
  readonly software: boolean;
}

interface GpuLike {
  requestAdapter(options?: object): Promise<AdapterLike | null>;
}
interface AdapterLike {
  readonly isFallbackAdapter?: boolean;
  readonly info?: {
    readonly vendor?: string;
    readonly architecture?: string;
    readonly device?: string;
    readonly description?: string;
    readonly isFallbackAdapter?: boolean;
  };
}

let gpu: GpuLike | undefined;

/** navigator.gpu from Dawn, made once per process (and installed as the global one). */
async function dawnGpu(): Promise<GpuLike> {
  const existing = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (existing) return existing;
  if (!gpu) {
    const name = 'webgpu'; // a variable specifier: an optional package tsc must not require
    const dawn = (await import(name)) as {
      create(flags: string[]): GpuLike;
      globals: Record<string, unknown>;
    };
    // tfjs-backend-webgpu reads GPUBufferUsage & co. and navigator.gpu as in a browser.
    for (const [key, value] of Object.entries(dawn.globals))
      if (!(key in globalThis)) Object.assign(globalThis, { [key]: value });
    gpu = dawn.create([]);
    const navigator = ((globalThis as { navigator?: object }).navigator ?? {}) as object;
    Object.defineProperty(navigator, 'gpu', { value: gpu, configurable: true });
    if (!('navigator' in globalThis))
      Object.defineProperty(globalThis, 'navigator', { value: navigator, configurable: true });
  }
  return gpu;
}

/** The adapter Dawn offers here, or why there is none. */
export async function probeWebGpu(): Promise<WebGpuAdapterSummary> {
  const adapter = await (await dawnGpu()).requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error(
      'no WebGPU adapter (Dawn found no Vulkan, Metal or D3D12 device; on Linux install libvulkan1 and a GPU driver)',
    );
  }
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

/** Registers the tfjs webgpu backend on Dawn; in 'auto', refuses a software adapter. */
export async function loadWebGpu(context: { readonly requested: boolean }): Promise<void> {
  const adapter = await probeWebGpu();
  if (adapter.software && !context.requested) {
    throw new Error(
      `only a software adapter (${adapter.description || adapter.architecture}), slower than wasm; --backend=webgpu uses it anyway`,
    );
  }
  const name = '@tensorflow/tfjs-backend-webgpu';
  await import(name);
}
