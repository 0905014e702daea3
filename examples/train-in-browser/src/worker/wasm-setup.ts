// Where tfjs-backend-wasm finds its .wasm binaries, and how many threads it runs. Vite emits
// the three binaries as assets (`?url`: hashed names in `vite build`, /@fs/ paths in dev), so
// the backend fetches them from this page's origin whatever the bundle layout; a CDN would
// break under COEP require-corp and offline. This file stays when the trainer's
// BROWSER_CANDIDATES replace the spike's backend choice: the trainer's
// `import('@tensorflow/tfjs-backend-wasm')` is this same module in the bundle, so the paths
// and the thread count set here are the ones it initialises with.
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import plainWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import simdWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import threadedSimdWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

let pathsSet = false;

function setPaths() {
  if (pathsSet) return;
  const absolute = (url: string) => new URL(url, self.location.href).href;
  setWasmPaths({
    'tfjs-backend-wasm.wasm': absolute(plainWasm),
    'tfjs-backend-wasm-simd.wasm': absolute(simdWasm),
    'tfjs-backend-wasm-threaded-simd.wasm': absolute(threadedSimdWasm),
  });
  pathsSet = true;
}

/**
 * Runs `initialise` (whatever calls `tf.setBackend('wasm')`: the spike's backend choice, or
 * the trainer's) with the wasm backend set up to use `threads` threads — default one per
 * logical core.
 *
 * tfjs-backend-wasm 4.22 caps its thread pool at half of `navigator.hardwareConcurrency`
 * (backend.cc: "many x86-64 processors have 2 threads per core"), which it reads once, when
 * its wasm module starts; setThreadsCount cannot go past that cap. On a 2-core machine that
 * is one thread, though the page's main thread is idle while the worker trains. So while
 * the module starts, the worker's navigator reports twice the cores wanted; the real value
 * is back as soon as `initialise` settles. The bench measures 1 thread against 2.
 */
export async function withWasmThreads<T>(
  initialise: () => Promise<T>,
  threads = navigator.hardwareConcurrency || 1,
): Promise<T> {
  setPaths();
  setThreadsCount(threads);
  Object.defineProperty(navigator, 'hardwareConcurrency', {
    configurable: true,
    get: () => threads * 2,
  });
  try {
    return await initialise();
  } finally {
    // Removes the own property: the prototype's real getter shows through again.
    delete (navigator as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
}

/** What the wasm backend runs with, once it is the active backend. */
export async function wasmDetails(): Promise<{
  simd: boolean;
  threadsSupported: boolean;
  threads: number;
}> {
  const [simd, threadsSupported] = await Promise.all([
    tf.env().getAsync('WASM_HAS_SIMD_SUPPORT') as Promise<boolean>,
    tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT') as Promise<boolean>,
  ]);
  return { simd, threadsSupported, threads: getThreadsCount() };
}
