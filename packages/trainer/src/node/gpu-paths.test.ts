// findGpuPaths on machines described by injected probes — a GPU server, this project's
// CPU-only machine (with the messages its probes really give), SwiftShader only, half-installed
// setups — whatever the machine running the tests has.
import { describe, expect, it, vi } from 'vitest';
import type { WebGpuAdapterSummary } from '../webgpu-adapter.js';
import {
  describeAdapter,
  findGpuPaths,
  refusalLine,
  summarizeOrtError,
  type GpuPath,
  type GpuPathName,
  type GpuProbes,
  type GpuPathReport,
} from './gpu-paths.js';

const H200: WebGpuAdapterSummary = {
  vendor: 'nvidia',
  architecture: 'hopper',
  description: 'NVIDIA H200',
  software: false,
};
const SWIFTSHADER: WebGpuAdapterSummary = {
  vendor: 'google',
  architecture: 'swiftshader',
  description: 'SwiftShader driver 5.0.0',
  software: true,
};
const NVIDIA_SMI = ['GPU 0: NVIDIA H200 (UUID: GPU-0c6e7a1e-0000-0000-0000-000000000000)'];
const ORT_PROVIDERS = [
  { name: 'cpu', bundled: true },
  { name: 'webgpu', bundled: true },
  { name: 'cuda', bundled: false },
  { name: 'tensorrt', bundled: false },
];
// What onnxruntime-node 1.30 threw on this project's machine (no GPU, no Vulkan loader).
const ORT_WEBGPU_NO_ADAPTER =
  '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters';
const ORT_CUDA_NO_LIBRARY =
  'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library';

function notFound(specifier: string): Error {
  return Object.assign(new Error(`Cannot find package '${specifier}'`), {
    code: 'ERR_MODULE_NOT_FOUND',
  });
}

/** A machine with an NVIDIA GPU and everything installed; `overrides` take parts away. */
function gpuServer(overrides: Partial<GpuProbes> = {}): GpuProbes {
  return {
    requestAdapter: async () => H200,
    resolveModule: async (specifier) => `/node_modules/${specifier}/index.js`,
    listExecutionProviders: async () => ORT_PROVIDERS,
    tryExecutionProvider: async () => {},
    listNvidiaGpus: async () => NVIDIA_SMI,
    ...overrides,
  };
}

/** This project's machine: 2 CPU cores, no GPU, no Vulkan loader, no tfjs-node-gpu. */
function cpuOnlyMachine(overrides: Partial<GpuProbes> = {}): GpuProbes {
  return gpuServer({
    requestAdapter: async () => {
      throw new Error('no WebGPU adapter (no Vulkan loader: libvulkan.so.1 not found)');
    },
    resolveModule: async (specifier) => {
      if (specifier === '@tensorflow/tfjs-node-gpu') throw notFound(specifier);
      return `/node_modules/${specifier}/index.js`;
    },
    tryExecutionProvider: async (name) => {
      throw new Error(name === 'cuda' ? ORT_CUDA_NO_LIBRARY : ORT_WEBGPU_NO_ADAPTER);
    },
    listNvidiaGpus: async () => undefined,
    ...overrides,
  });
}

function path(report: GpuPathReport, name: GpuPathName): GpuPath {
  const found = report.paths.find((p) => p.name === name);
  if (!found) throw new Error(`no ${name} in the report`);
  return found;
}

function reasonOf(report: GpuPathReport, name: GpuPathName): string {
  const found = path(report, name);
  if (found.available) throw new Error(`${name} is available`);
  return found.reason;
}

describe('findGpuPaths', () => {
  it('on a GPU server: every path, each with the device it runs on', async () => {
    const report = await findGpuPaths(gpuServer());
    expect(report.paths).toEqual([
      { name: 'webgpu', available: true, adapter: 'nvidia (hopper): NVIDIA H200', software: false },
      { name: 'tensorflow-gpu', available: true, adapter: NVIDIA_SMI[0], software: false },
      { name: 'ort-cuda', available: true, adapter: NVIDIA_SMI[0], software: false },
      {
        name: 'ort-webgpu',
        available: true,
        adapter: 'nvidia (hopper): NVIDIA H200',
        software: false,
      },
    ]);
    expect(report.webGpuAdapter).toEqual(H200);
    expect(report.nvidiaGpus).toEqual(NVIDIA_SMI);
    expect(refusalLine(report)).toBeUndefined();
  });

  it('on a machine without a GPU: nothing runs, and one line says why for each path', async () => {
    const report = await findGpuPaths(cpuOnlyMachine());
    expect(report.paths.every((p) => !p.available)).toBe(true);
    expect(reasonOf(report, 'webgpu')).toBe(
      'no WebGPU adapter (no Vulkan loader: libvulkan.so.1 not found)',
    );
    expect(reasonOf(report, 'tensorflow-gpu')).toBe('tfjs-node-gpu not installed');
    expect(reasonOf(report, 'ort-cuda')).toBe(
      `cannot start (${ORT_CUDA_NO_LIBRARY}; its CUDA files are installed by npm i onnxruntime-node --onnxruntime-node-install=cuda12)`,
    );
    expect(reasonOf(report, 'ort-webgpu')).toBe(
      'cannot start (Failed to get a WebGPU adapter: No supported adapters)',
    );
    const line = refusalLine(report)!;
    expect(line).not.toContain('\n');
    expect(line).toBe(
      'bench:gpu: no GPU to measure here; tried ' +
        'WebGPU training (tfjs-backend-webgpu on Dawn): no WebGPU adapter (no Vulkan loader: libvulkan.so.1 not found); ' +
        'tfjs-node-gpu training: tfjs-node-gpu not installed; ' +
        `onnxruntime-node CUDA EP: cannot start (${ORT_CUDA_NO_LIBRARY}; its CUDA files are installed by npm i onnxruntime-node --onnxruntime-node-install=cuda12); ` +
        'onnxruntime-node WebGPU EP: cannot start (Failed to get a WebGPU adapter: No supported adapters)',
    );
  });

  it('refuses a software adapter for both WebGPU paths unless allowSoftware', async () => {
    const probes = cpuOnlyMachine({
      requestAdapter: async () => SWIFTSHADER,
      tryExecutionProvider: async (name) => {
        if (name === 'cuda') throw new Error(ORT_CUDA_NO_LIBRARY);
      },
    });
    const refused = await findGpuPaths(probes);
    const why =
      'only a software adapter (google (swiftshader): SwiftShader driver 5.0.0); software adapters refused (--allow-software runs on it)';
    expect(reasonOf(refused, 'webgpu')).toBe(why);
    expect(reasonOf(refused, 'ort-webgpu')).toBe(why);
    expect(refusalLine(refused)).toContain(`WebGPU EP: ${why}`);

    const allowed = await findGpuPaths(probes, { allowSoftware: true });
    const software = {
      available: true,
      adapter: 'google (swiftshader): SwiftShader driver 5.0.0',
      software: true,
    };
    expect(path(allowed, 'webgpu')).toEqual({ name: 'webgpu', ...software });
    expect(path(allowed, 'ort-webgpu')).toEqual({ name: 'ort-webgpu', ...software });
    expect(path(allowed, 'ort-cuda').available).toBe(false);
    expect(refusalLine(allowed)).toBeUndefined();
  });

  it('counts tfjs-node-gpu only where the NVIDIA driver lists a GPU (it runs on CPU without one)', async () => {
    const installed = {
      resolveModule: async (specifier: string) => `/node_modules/${specifier}/index.js`,
    };
    const noSmi = await findGpuPaths(cpuOnlyMachine(installed));
    expect(reasonOf(noSmi, 'tensorflow-gpu')).toBe(
      'tfjs-node-gpu is installed but no NVIDIA GPU is visible (nvidia-smi not found)',
    );
    const noDriver = await findGpuPaths(
      cpuOnlyMachine({
        ...installed,
        listNvidiaGpus: async () => {
          throw new Error(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
          );
        },
      }),
    );
    expect(reasonOf(noDriver, 'tensorflow-gpu')).toBe(
      "tfjs-node-gpu is installed but no NVIDIA GPU is visible (nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.)",
    );
    const noneListed = await findGpuPaths(
      cpuOnlyMachine({ ...installed, listNvidiaGpus: async () => [] }),
    );
    expect(reasonOf(noneListed, 'tensorflow-gpu')).toBe(
      'tfjs-node-gpu is installed but no NVIDIA GPU is visible (nvidia-smi lists no GPU)',
    );
    const two = ['GPU 0: NVIDIA A100', 'GPU 1: NVIDIA A100'];
    const listed = await findGpuPaths(
      cpuOnlyMachine({ ...installed, listNvidiaGpus: async () => two }),
    );
    expect(path(listed, 'tensorflow-gpu')).toEqual({
      name: 'tensorflow-gpu',
      available: true,
      adapter: 'GPU 0: NVIDIA A100; GPU 1: NVIDIA A100',
      software: false,
    });
  });

  it('tries a session only on the execution providers the onnxruntime build lists', async () => {
    const tryExecutionProvider = vi.fn(async () => {});
    const report = await findGpuPaths(
      gpuServer({
        listExecutionProviders: async () => [{ name: 'cpu', bundled: true }],
        tryExecutionProvider,
      }),
    );
    expect(tryExecutionProvider).not.toHaveBeenCalled();
    expect(reasonOf(report, 'ort-cuda')).toBe('this onnxruntime-node build has no CUDA EP');
    expect(reasonOf(report, 'ort-webgpu')).toBe('this onnxruntime-node build has no WebGPU EP');
    // The training paths do not depend on onnxruntime.
    expect(path(report, 'webgpu').available).toBe(true);
    expect(path(report, 'tensorflow-gpu').available).toBe(true);
  });

  it('says when onnxruntime-node itself is missing or cannot list its providers', async () => {
    const missing = await findGpuPaths(
      gpuServer({
        listExecutionProviders: async () => {
          throw Object.assign(new Error("Cannot find module 'onnxruntime-node'"), {
            code: 'MODULE_NOT_FOUND',
          });
        },
      }),
    );
    expect(reasonOf(missing, 'ort-cuda')).toBe('onnxruntime-node not installed');
    expect(reasonOf(missing, 'ort-webgpu')).toBe('onnxruntime-node not installed');
    const broken = await findGpuPaths(
      gpuServer({
        listExecutionProviders: async () => {
          throw new Error('timed out after 120 s');
        },
      }),
    );
    expect(reasonOf(broken, 'ort-cuda')).toBe(
      'onnxruntime-node did not list its execution providers (timed out after 120 s)',
    );
  });

  it('runs CUDA generation without nvidia-smi, saying the device was not named', async () => {
    const report = await findGpuPaths(gpuServer({ listNvidiaGpus: async () => undefined }));
    expect(path(report, 'ort-cuda')).toEqual({
      name: 'ort-cuda',
      available: true,
      adapter: 'a CUDA device (nvidia-smi not found)',
      software: false,
    });
  });

  it("does not count onnxruntime's WebGPU EP when the adapter cannot be identified", async () => {
    // The `webgpu` package missing: onnxruntime's own Dawn starts, on an adapter nobody named.
    const probes = gpuServer({ requestAdapter: async () => Promise.reject(notFound('webgpu')) });
    const refused = await findGpuPaths(probes);
    expect(reasonOf(refused, 'webgpu')).toBe('the webgpu package (Dawn) is not installed');
    expect(reasonOf(refused, 'ort-webgpu')).toBe(
      "its WebGPU EP starts, but its adapter cannot be told from a software one (the webgpu package's probe failed: the webgpu package (Dawn) is not installed); --allow-software runs on it",
    );
    const allowed = await findGpuPaths(probes, { allowSoftware: true });
    expect(path(allowed, 'ort-webgpu')).toEqual({
      name: 'ort-webgpu',
      available: true,
      adapter:
        "unknown (the webgpu package's probe failed: the webgpu package (Dawn) is not installed)",
      software: true,
    });
    // allowSoftware does not make a missing package available.
    expect(path(allowed, 'webgpu').available).toBe(false);
  });

  it('needs tfjs-backend-webgpu for WebGPU training, not for WebGPU generation', async () => {
    const report = await findGpuPaths(
      gpuServer({
        resolveModule: async (specifier) => {
          if (specifier === '@tensorflow/tfjs-backend-webgpu') throw notFound(specifier);
          return `/node_modules/${specifier}/index.js`;
        },
      }),
    );
    expect(reasonOf(report, 'webgpu')).toBe('@tensorflow/tfjs-backend-webgpu not installed');
    expect(path(report, 'ort-webgpu').available).toBe(true);
  });

  it('keeps a probe’s reason when it fails with something other than an Error', async () => {
    const report = await findGpuPaths(
      cpuOnlyMachine({
        requestAdapter: () => Promise.reject('the WebGPU probe timed out'),
        tryExecutionProvider: () => Promise.reject('device lost\nstack…'),
      }),
    );
    expect(reasonOf(report, 'webgpu')).toBe('the WebGPU probe timed out');
    expect(reasonOf(report, 'ort-webgpu')).toBe('cannot start (device lost)');
  });
});

describe('summarizeOrtError', () => {
  it("keeps the sentence after onnxruntime's failed check", () => {
    expect(summarizeOrtError(new Error(ORT_WEBGPU_NO_ADAPTER))).toBe(
      'Failed to get a WebGPU adapter: No supported adapters',
    );
  });

  it('drops a leading source location, keeps a plain message whole', () => {
    expect(
      summarizeOrtError(
        '/onnxruntime_src/onnxruntime/core/session/inference_session.cc:2210 Exception during initialization: CUDA failure 100: no CUDA-capable device is detected',
      ),
    ).toBe('Exception during initialization: CUDA failure 100: no CUDA-capable device is detected');
    expect(summarizeOrtError(new Error(ORT_CUDA_NO_LIBRARY))).toBe(ORT_CUDA_NO_LIBRARY);
  });
});

describe('describeAdapter', () => {
  it('names vendor, architecture and device, leaving out what the adapter did not say', () => {
    expect(describeAdapter(H200)).toBe('nvidia (hopper): NVIDIA H200');
    expect(
      describeAdapter({ vendor: '', architecture: '', description: 'llvmpipe', software: true }),
    ).toBe('unknown vendor: llvmpipe');
    expect(
      describeAdapter({ vendor: 'apple', architecture: '', description: '', software: false }),
    ).toBe('apple');
  });
});
