// The backend line the page shows, for each case the worker can report.
import { describe, expect, it } from 'vitest';
import { describeBackend, type BackendReport } from './protocol.js';

const wasm: BackendReport = {
  name: 'wasm',
  tfjsBackend: 'wasm',
  crossOriginIsolated: true,
  sharedArrayBuffer: true,
  wasm: { simd: true, threadsSupported: true, threads: 2 },
  skipped: [{ name: 'webgpu', reason: 'no adapter' }],
};

describe('describeBackend', () => {
  it('names the backend, its threads and SIMD, and why faster ones were skipped', () => {
    expect(describeBackend(wasm)).toBe('wasm (threads: 2, SIMD) — webgpu skipped: no adapter');
  });

  it("says whether minigpt's WebAssembly kernels run, and why not", () => {
    expect(
      describeBackend({ ...wasm, wasm: { ...wasm.wasm!, kernels: { installed: true } } }),
    ).toBe('wasm (threads: 2, SIMD, minigpt kernels) — webgpu skipped: no adapter');
    expect(
      describeBackend({
        ...wasm,
        wasm: {
          ...wasm.wasm!,
          kernels: { installed: false, reason: 'the kernels did not compile' },
        },
        skipped: [],
      }),
    ).toBe("wasm (threads: 2, SIMD) — tfjs's own kernels: the kernels did not compile");
  });

  it('says why wasm runs on one thread: no isolation, or no wasm threads in this browser', () => {
    const single = { simd: true, threadsSupported: false, threads: 1 };
    expect(
      describeBackend({
        ...wasm,
        crossOriginIsolated: false,
        sharedArrayBuffer: false,
        wasm: single,
        skipped: [],
      }),
    ).toBe(
      'wasm (threads: 1, SIMD) — one thread: the page is not cross-origin isolated (COOP/COEP headers missing)',
    );
    expect(describeBackend({ ...wasm, wasm: { ...single, simd: false }, skipped: [] })).toBe(
      'wasm (threads: 1) — one thread: this browser has no wasm threads',
    );
  });

  it('describes a WebGPU adapter, and cpu after both were skipped', () => {
    expect(
      describeBackend({
        name: 'webgpu',
        tfjsBackend: 'webgpu',
        crossOriginIsolated: true,
        sharedArrayBuffer: true,
        adapter: 'nvidia ampere',
        skipped: [],
      }),
    ).toBe('webgpu (nvidia ampere)');
    expect(
      describeBackend({
        name: 'cpu',
        tfjsBackend: 'cpu',
        crossOriginIsolated: false,
        sharedArrayBuffer: false,
        skipped: [
          { name: 'webgpu', reason: 'this browser has no WebGPU (navigator.gpu is missing)' },
          { name: 'wasm', reason: 'WebAssembly is disabled' },
        ],
      }),
    ).toBe(
      'cpu — webgpu skipped: this browser has no WebGPU (navigator.gpu is missing) — wasm skipped: WebAssembly is disabled',
    );
  });
});
