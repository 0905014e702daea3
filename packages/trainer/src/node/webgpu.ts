// WebGPU for training in Node (the `./node` entry's NODE_CANDIDATES): @tensorflow/tfjs-backend-webgpu on Dawn, through the `webgpu`
// package (Dawn's Node binding, binaries inside the npm package; Vulkan, Metal or D3D12
// underneath). Both packages are optional peers. A software adapter (SwiftShader,
// llvmpipe…) works — tests use SwiftShader — but is far slower than wasm, so 'auto' passes
// it over; ask for `webgpu` by name to use it anyway.
//
// Dawn writes its own diagnostics straight to the process's stderr from native code (on a
// machine without Vulkan: "Warning: Couldn't load Vulkan: libvulkan.so.1 …"). So 'auto'
// first asks for an adapter in a child process whose output is captured, and loads Dawn
// into this process only when that child found a hardware adapter. A run that did not ask
// for WebGPU and has no GPU for it hears nothing from Dawn.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

import {
  softwareOnlyError,
  summarizeAdapter,
  type AdapterLike,
  type GpuLike,
  type WebGpuAdapterSummary,
} from '../webgpu-adapter.js';

export type { WebGpuAdapterSummary };

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

const NO_ADAPTER =
  'no WebGPU adapter (Dawn found no Vulkan, Metal or D3D12 device; on Linux install libvulkan1 and a GPU driver)';

/** The adapter Dawn offers here (Dawn loaded into this process), or why there is none. */
export async function probeWebGpu(): Promise<WebGpuAdapterSummary> {
  const adapter = await (await dawnGpu()).requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER);
  return summarizeAdapter(adapter);
}

/**
 * The child's program: load the `webgpu` module at argv[1], ask for an adapter, print its
 * info as one JSON line, exit (Dawn's threads would keep the process alive).
 */
const PROBE_PROGRAM = `
const loaded = await import(process.argv[1]);
const dawn = typeof loaded.create === 'function' ? loaded : loaded.default;
const adapter = await dawn.create([]).requestAdapter({ powerPreference: 'high-performance' });
const info = adapter ? adapter.info ?? {} : undefined;
process.stdout.write(JSON.stringify(adapter ? {
  isFallbackAdapter: adapter.isFallbackAdapter,
  info: { vendor: info.vendor, architecture: info.architecture, device: info.device,
    description: info.description, isFallbackAdapter: info.isFallbackAdapter },
} : null) + '\\n');
process.exit(0);
`;

export interface QuietProbeOptions {
  /** The `webgpu` module to load (a file URL); default: the one this package resolves. */
  readonly moduleUrl?: string;
  /** Give up after this long (Dawn enumerating a broken driver can hang); default 20 s. */
  readonly timeoutMs?: number;
}

/** The `webgpu` package's entry as this package would import it, or a not-installed error. */
function resolveWebGpuModule(): string {
  try {
    return pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch (error) {
    throw Object.assign(new Error("Cannot find package 'webgpu'", { cause: error }), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
  }
}

/**
 * probeWebGpu in a child process, so that whatever Dawn prints stays off this process's
 * stderr; when there is no adapter, the error's message carries Dawn's first line instead.
 */
export async function probeWebGpuQuietly(
  options: QuietProbeOptions = {},
): Promise<WebGpuAdapterSummary> {
  const moduleUrl = options.moduleUrl ?? resolveWebGpuModule();
  const { stdout, stderr, failure } = await new Promise<{
    stdout: string;
    stderr: string;
    failure?: Error;
  }>((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '--eval', PROBE_PROGRAM, moduleUrl],
      { timeout: options.timeoutMs ?? 20_000, encoding: 'utf8', windowsHide: true },
      (error, stdout, stderr) => resolve({ stdout, stderr, ...(error ? { failure: error } : {}) }),
    );
  });
  const said = stderr
    .split('\n')
    .map((line) => line.replace(/^Warning:\s*/, '').trim())
    .find((line) => line.length > 0 && !line.startsWith('at '));
  // The common case said in a few words: Dawn's own line names a .so and a C++ source line.
  const vulkanMissing = said && /^Couldn't load Vulkan: (\S+?):/.exec(said);
  const dawnSaid = vulkanMissing
    ? ` (no Vulkan loader: ${vulkanMissing[1]} not found)`
    : said
      ? ` (Dawn: ${said})`
      : '';
  if (failure) {
    const how = (failure as { killed?: boolean }).killed ? 'timed out' : 'failed';
    throw new Error(`the WebGPU probe ${how}${dawnSaid}`);
  }
  const line = stdout.trim().split('\n').at(-1) ?? '';
  let adapter: AdapterLike | null;
  try {
    adapter = JSON.parse(line) as AdapterLike | null;
  } catch {
    throw new Error(`the WebGPU probe printed no adapter${dawnSaid}`);
  }
  if (!adapter) throw new Error(said ? `no WebGPU adapter${dawnSaid}` : NO_ADAPTER);
  return summarizeAdapter(adapter);
}

/** The steps of loadWebGpu, replaceable in tests. */
export interface WebGpuLoaderParts {
  /** Probes without letting Dawn print (used by 'auto'). */
  readonly probeQuietly: () => Promise<WebGpuAdapterSummary>;
  /** Loads Dawn into this process and probes there. */
  readonly probeHere: () => Promise<WebGpuAdapterSummary>;
  /** Registers tfjs's webgpu backend. */
  readonly register: () => Promise<void>;
}

const defaultParts: WebGpuLoaderParts = {
  probeQuietly: () => probeWebGpuQuietly(),
  probeHere: probeWebGpu,
  register: async () => {
    const name = '@tensorflow/tfjs-backend-webgpu';
    await import(name);
  },
};

/**
 * Registers the tfjs webgpu backend on Dawn. Asked for by name, it loads Dawn here directly
 * (its diagnostics are then worth seeing). In 'auto' it probes quietly first and goes on
 * only for a hardware adapter: no adapter or a software one is a skip, with Dawn silent.
 */
export async function loadWebGpu(
  context: { readonly requested: boolean },
  parts: WebGpuLoaderParts = defaultParts,
): Promise<void> {
  // A navigator.gpu already here (a browser-like runtime, or Dawn loaded before) prints
  // nothing new when asked again, so there is nothing to keep quiet.
  const present = (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu !== undefined;
  if (!context.requested && !present) {
    const adapter = await parts.probeQuietly();
    if (adapter.software) throw softwareOnlyError(adapter);
  }
  const adapter = await parts.probeHere();
  if (adapter.software && !context.requested) throw softwareOnlyError(adapter);
  await parts.register();
}
