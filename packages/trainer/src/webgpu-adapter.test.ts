// Backends in a browser, with navigator.gpu and the page's isolation stood in for: 'auto'
// takes WebGPU only on a hardware adapter and says why it skipped it otherwise; wasm says
// whether it has threads.
import { afterEach, describe, expect, it } from 'vitest';
import {
  browserCandidates,
  loadBrowserWebGpu,
  selectBackend,
  summarizeAdapter,
  wasmFeatures,
  type AdapterLike,
} from './index.js';

const adapter = (info: AdapterLike['info'], isFallbackAdapter?: boolean): AdapterLike => ({
  info,
  ...(isFallbackAdapter === undefined ? {} : { isFallbackAdapter }),
});
const gpuWith = (offered: AdapterLike | null) => () => ({ requestAdapter: async () => offered });

describe('WebGPU in a browser', () => {
  it('tells software adapters from hardware ones', () => {
    expect(summarizeAdapter(adapter({ vendor: 'nvidia', architecture: 'ampere' })).software).toBe(
      false,
    );
    expect(
      summarizeAdapter(adapter({ vendor: 'google', architecture: 'swiftshader' })).software,
    ).toBe(true);
    expect(
      summarizeAdapter(adapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15)' })).software,
    ).toBe(true);
    expect(summarizeAdapter(adapter({ vendor: 'intel' }, true)).software).toBe(true);
  });

  it("registers the backend on a hardware adapter, in 'auto' too", async () => {
    let registered = 0;
    await loadBrowserWebGpu(
      { requested: false },
      {
        gpu: gpuWith(adapter({ vendor: 'apple', architecture: 'metal-3' })),
        register: async () => void registered++,
      },
    );
    expect(registered).toBe(1);
  });

  it("skips a software adapter in 'auto', saying so, and uses it when asked for by name", async () => {
    let registered = 0;
    const parts = {
      gpu: gpuWith(adapter({ vendor: 'google', architecture: 'swiftshader' })),
      register: async () => void registered++,
    };
    await expect(loadBrowserWebGpu({ requested: false }, parts)).rejects.toThrow(
      /only a software adapter \(swiftshader\), slower than wasm/,
    );
    expect(registered).toBe(0);
    await loadBrowserWebGpu({ requested: true }, parts);
    expect(registered).toBe(1);
  });

  it('says when the browser has no WebGPU or no adapter', async () => {
    const register = async () => {};
    await expect(
      loadBrowserWebGpu({ requested: false }, { gpu: () => undefined, register }),
    ).rejects.toThrow(/navigator\.gpu is missing/);
    await expect(
      loadBrowserWebGpu({ requested: false }, { gpu: gpuWith(null), register }),
    ).rejects.toThrow(/no WebGPU adapter/);
  });
});

describe('browser candidates', () => {
  const scope = globalThis as {
    navigator?: unknown;
    document?: unknown;
    crossOriginIsolated?: boolean;
  };
  const saved = { document: scope.document, crossOriginIsolated: scope.crossOriginIsolated };
  afterEach(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete (scope as Record<string, unknown>)[key];
      else (scope as Record<string, unknown>)[key] = value;
    }
  });

  it("'auto' falls from WebGPU (none here) to wasm, loaded the page's way, and says why", async () => {
    let wasmLoads = 0;
    const choice = await selectBackend(
      'auto',
      browserCandidates({
        webgpu: async () => {
          throw new Error('must not be imported without an adapter');
        },
        wasm: async () => {
          wasmLoads++;
          await import('@tensorflow/tfjs-backend-wasm');
        },
      }),
    );
    expect(choice.name).toBe('wasm');
    expect(wasmLoads).toBe(1);
    expect(choice.skipped).toEqual([
      { name: 'webgpu', reason: 'this browser has no WebGPU (navigator.gpu is missing)' },
    ]);
  });

  it('says whether wasm gets threads: only a cross-origin isolated page has them', () => {
    expect(wasmFeatures()).toBeUndefined(); // Node: not a browser
    scope.document = {};
    scope.crossOriginIsolated = false;
    expect(wasmFeatures()).toEqual({
      threads: false,
      reason: expect.stringMatching(
        /not cross-origin isolated \(serve it with COOP same-origin and COEP require-corp\)/,
      ),
    });
    scope.crossOriginIsolated = true;
    expect(wasmFeatures()).toEqual({ threads: true });
  });
});
