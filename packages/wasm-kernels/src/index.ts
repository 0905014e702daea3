// Public entry of @minigpt/wasm-kernels: fast kernels for TensorFlow.js's wasm backend,
// compiled to WebAssembly SIMD, for browsers and for Node without a C++ compiler; and the
// registration every kernel set shares (@minigpt/native-kernels registers its addon with it).
import {
  NO_WASM_BACKEND,
  activeKernelSet,
  installKernelSet,
  uninstallKernelSet,
} from './kernel-set.js';
import { createWasmKernelSet } from './wasm-kernel-set.js';
import type { KernelSet } from './kernel-set.js';

export {
  ATTENTION_KERNEL_NAMES,
  DROPOUT_KERNEL_NAMES,
  FUSED_KERNEL_NAMES,
  KERNEL_NAMES,
  NO_WASM_BACKEND,
  activeKernelSet,
  heapFloats,
  installKernelSet,
  uninstallKernelSet,
  type AttentionCall,
  type KernelSet,
} from './kernel-set.js';
export { createWasmKernelSet, kernelsWasmBytes } from './wasm-kernel-set.js';

export interface WasmKernelsResult {
  readonly installed: boolean;
  /** Why not, when not installed. */
  readonly reason?: string;
  /** The kernels registered, when installed. */
  readonly kernels: readonly string[];
  /** The kernels run on the calling thread. */
  readonly threads?: number;
  /** SIMD width in floats. */
  readonly vectorLanes?: number;
}

let kernelSet: Promise<KernelSet> | undefined;

/**
 * Compiles the WebAssembly kernels (once per realm) and registers them on tfjs's wasm
 * backend: its BatchMatMul, Exp and Erf, and the fused kernels @minigpt/model and
 * @minigpt/trainer run where a backend has them. Call after the wasm backend is registered.
 * When another set is registered already (@minigpt/native-kernels), that one stays.
 */
export async function installWasmKernels(): Promise<WasmKernelsResult> {
  if (typeof WebAssembly === 'undefined')
    return { installed: false, reason: 'this runtime has no WebAssembly', kernels: [] };
  kernelSet ??= createWasmKernelSet();
  let kernels: readonly string[] | null;
  try {
    const set = await kernelSet;
    const other = activeKernelSet();
    if (other && other !== set)
      return {
        installed: false,
        reason: 'another kernel set is registered (@minigpt/native-kernels) and stays',
        kernels: [],
      };
    kernels = installKernelSet(set);
  } catch (error) {
    kernelSet = undefined;
    // A runtime without WebAssembly SIMD or bulk memory refuses to compile the module.
    return {
      installed: false,
      reason: `the kernels did not compile: ${String(error)}`,
      kernels: [],
    };
  }
  if (!kernels) return { installed: false, reason: NO_WASM_BACKEND, kernels: [] };
  return { installed: true, kernels, threads: 1, vectorLanes: 4 };
}

/** Puts tfjs's own wasm kernels back (whichever kernel set was installed). */
export function uninstallWasmKernels(): void {
  uninstallKernelSet();
}
