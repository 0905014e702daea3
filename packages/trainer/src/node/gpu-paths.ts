// Which GPU paths `pnpm bench:gpu` (bench/gpu.bench.mjs) can measure here, and why each of
// the others cannot: WebGPU training (tfjs-backend-webgpu on Dawn), tfjs-node-gpu training
// (CUDA), and onnxruntime-node generation on its CUDA and WebGPU execution providers. The
// machine is reached only through the probes passed in, so the decisions are testable on
// any machine, with or without a GPU. Not exported from the package: the bench imports it
// from dist.
import type { WebGpuAdapterSummary } from '../webgpu-adapter.js';

export type GpuPathName = 'webgpu' | 'tensorflow-gpu' | 'ort-cuda' | 'ort-webgpu';

/** What each path is, as the bench prints it. */
export const GPU_PATH_LABELS: Readonly<Record<GpuPathName, string>> = {
  webgpu: 'WebGPU training (tfjs-backend-webgpu on Dawn)',
  'tensorflow-gpu': 'tfjs-node-gpu training',
  'ort-cuda': 'onnxruntime-node CUDA EP',
  'ort-webgpu': 'onnxruntime-node WebGPU EP',
};

/** One of onnxruntime-node's `listSupportedBackends()` entries. */
export interface ExecutionProviderEntry {
  readonly name: string;
  /** false: its library is installed separately (CUDA: `--onnxruntime-node-install=cuda12`). */
  readonly bundled: boolean;
}

/** How the machine is asked. Each probe throws (or rejects) with the reason it failed. */
export interface GpuProbes {
  /** The adapter Dawn offers (probeWebGpuQuietly); rejects when there is none. */
  readonly requestAdapter: () => Promise<WebGpuAdapterSummary>;
  /**
   * Where a package resolves from the trainer; rejects with code ERR_MODULE_NOT_FOUND (or
   * MODULE_NOT_FOUND) when it is not installed.
   */
  readonly resolveModule: (specifier: string) => Promise<string>;
  /** onnxruntime-node's `listSupportedBackends()`. */
  readonly listExecutionProviders: () => Promise<readonly ExecutionProviderEntry[]>;
  /** Creates a session on this execution provider alone; rejects with onnxruntime's reason. */
  readonly tryExecutionProvider: (name: 'cuda' | 'webgpu') => Promise<void>;
  /** `nvidia-smi -L`'s GPU lines; undefined where nvidia-smi is not installed. */
  readonly listNvidiaGpus: () => Promise<readonly string[] | undefined>;
}

export interface GpuPathOptions {
  /** Count a software WebGPU adapter (SwiftShader, llvmpipe…) as a GPU: for checking the bench. */
  readonly allowSoftware?: boolean;
}

export type GpuPath =
  | {
      readonly name: GpuPathName;
      readonly available: true;
      /** The device it runs on, as its driver names it. */
      readonly adapter: string;
      /** A software adapter, run only because `allowSoftware` said so. */
      readonly software: boolean;
    }
  | { readonly name: GpuPathName; readonly available: false; readonly reason: string };

export interface GpuPathReport {
  /** In GPU_PATH_LABELS's order. */
  readonly paths: readonly GpuPath[];
  /** Dawn's adapter, when it offered one (hardware or software). */
  readonly webGpuAdapter?: WebGpuAdapterSummary;
  /** `nvidia-smi -L`'s lines, when nvidia-smi ran. */
  readonly nvidiaGpus?: readonly string[];
}

const NOT_FOUND_CODES = new Set(['ERR_MODULE_NOT_FOUND', 'MODULE_NOT_FOUND']);

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(probe: () => Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await probe() };
  } catch (error) {
    return { ok: false, error };
  }
}

function isNotFound(error: unknown): boolean {
  return NOT_FOUND_CODES.has(String((error as { code?: unknown } | null)?.code));
}

function firstLineOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0]!.trim();
}

function messageOf(error: unknown): string {
  return firstLineOf(error).slice(0, 200);
}

/** An adapter as one phrase: "NVIDIA (ampere): NVIDIA GeForce RTX 3090". */
export function describeAdapter(adapter: WebGpuAdapterSummary): string {
  const vendor = adapter.vendor || 'unknown vendor';
  const architecture = adapter.architecture ? ` (${adapter.architecture})` : '';
  return `${vendor}${architecture}${adapter.description ? `: ${adapter.description}` : ''}`;
}

/**
 * onnxruntime's error in a few words: its messages start with a source path and a C++
 * signature ("/onnxruntime_src/…/webgpu_context.cc:136 onnxruntime::…::<lambda()> … was
 * false. Failed to get a WebGPU adapter: No supported adapters"); the sentence after the
 * failed check is what says why.
 */
export function summarizeOrtError(error: unknown): string {
  const text = firstLineOf(error);
  const afterCheck = / was false\. (.+)$/.exec(text);
  // "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library"
  const said = afterCheck ? afterCheck[1]! : text.replace(/^\S+\.(?:cc|h|cpp):\d+\s+/, '');
  return said.trim().slice(0, 200);
}

/** Asks every probe (concurrently) and decides which GPU paths can run here. */
export async function findGpuPaths(
  probes: GpuProbes,
  options: GpuPathOptions = {},
): Promise<GpuPathReport> {
  const allowSoftware = options.allowSoftware === true;
  const [adapter, tfjsWebGpu, tfjsNodeGpu, providers, nvidia] = await Promise.all([
    settle(probes.requestAdapter),
    settle(() => probes.resolveModule('@tensorflow/tfjs-backend-webgpu')),
    settle(() => probes.resolveModule('@tensorflow/tfjs-node-gpu')),
    settle(probes.listExecutionProviders),
    settle(probes.listNvidiaGpus),
  ]);
  const listed = providers.ok ? new Set(providers.value.map((entry) => entry.name)) : undefined;
  // Sessions only on providers this build lists: one not built in cannot start anyway.
  const [cudaSession, webGpuSession] = await Promise.all(
    (['cuda', 'webgpu'] as const).map((name) =>
      listed?.has(name)
        ? settle(() => probes.tryExecutionProvider(name))
        : Promise.resolve(undefined),
    ),
  );
  const gpus = nvidia.ok ? nvidia.value : undefined;
  const nvidiaWhy = nvidia.ok
    ? gpus === undefined
      ? 'nvidia-smi not found'
      : 'nvidia-smi lists no GPU'
    : `nvidia-smi failed: ${messageOf(nvidia.error)}`;

  // The WebGPU adapter as each WebGPU path may use it, or why it may not.
  const webGpuAdapterUse = (): { adapter: string; software: boolean } | { reason: string } => {
    if (!adapter.ok) {
      return isNotFound(adapter.error)
        ? { reason: 'the webgpu package (Dawn) is not installed' }
        : { reason: messageOf(adapter.error) };
    }
    const described = describeAdapter(adapter.value);
    if (adapter.value.software && !allowSoftware)
      return {
        reason: `only a software adapter (${described}); software adapters refused (--allow-software runs on it)`,
      };
    return { adapter: described, software: adapter.value.software };
  };

  const paths: GpuPath[] = [];
  // WebGPU training: the backend package and a (hardware) adapter.
  {
    const use = webGpuAdapterUse();
    if (!tfjsWebGpu.ok)
      paths.push({
        name: 'webgpu',
        available: false,
        reason: isNotFound(tfjsWebGpu.error)
          ? '@tensorflow/tfjs-backend-webgpu not installed'
          : messageOf(tfjsWebGpu.error),
      });
    else if ('reason' in use) paths.push({ name: 'webgpu', available: false, reason: use.reason });
    else paths.push({ name: 'webgpu', available: true, ...use });
  }
  // tfjs-node-gpu: it loads (and then runs on the CPU) without a GPU, so it counts only
  // where the NVIDIA driver lists one.
  if (!tfjsNodeGpu.ok)
    paths.push({
      name: 'tensorflow-gpu',
      available: false,
      reason: isNotFound(tfjsNodeGpu.error)
        ? 'tfjs-node-gpu not installed'
        : messageOf(tfjsNodeGpu.error),
    });
  else if (!gpus || gpus.length === 0)
    paths.push({
      name: 'tensorflow-gpu',
      available: false,
      reason: `tfjs-node-gpu is installed but no NVIDIA GPU is visible (${nvidiaWhy})`,
    });
  else
    paths.push({
      name: 'tensorflow-gpu',
      available: true,
      adapter: gpus.join('; '),
      software: false,
    });
  // onnxruntime-node's execution providers.
  const providerPath = (
    name: 'ort-cuda' | 'ort-webgpu',
    provider: 'cuda' | 'webgpu',
    session: Settled<void> | undefined,
  ): GpuPath => {
    const label = provider === 'cuda' ? 'CUDA' : 'WebGPU';
    if (!providers.ok)
      return {
        name,
        available: false,
        reason: isNotFound(providers.error)
          ? 'onnxruntime-node not installed'
          : `onnxruntime-node did not list its execution providers (${messageOf(providers.error)})`,
      };
    if (!session)
      return { name, available: false, reason: `this onnxruntime-node build has no ${label} EP` };
    if (!session.ok) {
      const hint =
        provider === 'cuda'
          ? '; its CUDA files are installed by npm i onnxruntime-node --onnxruntime-node-install=cuda12'
          : '';
      return {
        name,
        available: false,
        reason: `cannot start (${summarizeOrtError(session.error)}${hint})`,
      };
    }
    if (provider === 'cuda')
      return {
        name,
        available: true,
        adapter: gpus && gpus.length > 0 ? gpus.join('; ') : `a CUDA device (${nvidiaWhy})`,
        software: false,
      };
    // onnxruntime has its own Dawn and says nothing about the adapter it took; the `webgpu`
    // package's Dawn, on the same drivers, says what there is (and whether it is software).
    const use = webGpuAdapterUse();
    if (!('reason' in use)) return { name, available: true, ...use };
    if (adapter.ok) return { name, available: false, reason: use.reason };
    const unknown = `the webgpu package's probe failed: ${use.reason}`;
    return allowSoftware
      ? { name, available: true, adapter: `unknown (${unknown})`, software: true }
      : {
          name,
          available: false,
          reason: `its WebGPU EP starts, but its adapter cannot be told from a software one (${unknown}); --allow-software runs on it`,
        };
  };
  paths.push(providerPath('ort-cuda', 'cuda', cudaSession));
  paths.push(providerPath('ort-webgpu', 'webgpu', webGpuSession));

  return {
    paths,
    ...(adapter.ok ? { webGpuAdapter: adapter.value } : {}),
    ...(gpus ? { nvidiaGpus: gpus } : {}),
  };
}

/**
 * The one line the bench ends with where no GPU path can run: each path tried and why it
 * is unavailable. Undefined where some path can run.
 */
export function refusalLine(report: GpuPathReport): string | undefined {
  if (report.paths.some((path) => path.available)) return undefined;
  const reasons = report.paths.map(
    (path) =>
      `${GPU_PATH_LABELS[path.name]}: ${path.available ? 'available' : path.reason.replace(/\s+/g, ' ')}`,
  );
  return `bench:gpu: no GPU to measure here; tried ${reasons.join('; ')}`;
}
