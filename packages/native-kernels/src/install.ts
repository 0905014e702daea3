// Loading the addon and registering its kernels on tfjs's wasm backend.
//
// Why the wasm backend: its tensors live in one WebAssembly.Memory, so a native kernel can
// read inputs and write outputs in place through the memory's ArrayBuffer, and every op the
// addon does not cover keeps running in wasm on the same tensors. tfjs 4.22's wasm backend
// runs one thread in Node and its matMul reaches 17–29 GFLOP/s; the addon's packed SGEMM
// runs on every core (≈ 200 GFLOP/s for the GPT's shapes on 2 Zen 4 cores). The tfjs side of
// each kernel (shapes, dtypes, outputs) is @minigpt/wasm-kernels' installKernelSet, shared
// with the WebAssembly kernels there.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ATTENTION_KERNEL_NAMES,
  DROPOUT_KERNEL_NAMES,
  FUSED_KERNEL_NAMES,
  KERNEL_NAMES,
  NO_WASM_BACKEND,
  activeKernelSet,
  installKernelSet,
  uninstallKernelSet,
  type KernelSet,
} from '@minigpt/wasm-kernels';

export { FUSED_KERNEL_NAMES };

/** The functions the compiled addon exports: a KernelSet's, plus its threads. */
export interface NativeAddon extends Omit<KernelSet, 'cheapTransposes'> {
  /** Threads the kernels use and the SIMD width (floats) they were compiled for. */
  info(): { threads: number; vectorLanes: number };
  setThreads(threads: number): void;
}

export type NativeLoadResult =
  | { readonly addon: NativeAddon; readonly path: string }
  | { readonly addon: null; readonly reason: string };

export interface NativeInstallResult {
  readonly installed: boolean;
  /** Why not, when not installed. */
  readonly reason?: string;
  /** The kernels registered, when installed. */
  readonly kernels: readonly string[];
  readonly threads?: number;
  readonly vectorLanes?: number;
}

/** The tfjs kernels the addon replaces or adds on the wasm backend (attention, dropout too). */
export const NATIVE_KERNEL_NAMES = [
  ...KERNEL_NAMES,
  ...ATTENTION_KERNEL_NAMES,
  ...DROPOUT_KERNEL_NAMES,
] as const;

const defaultAddonPath = join(
  fileURLToPath(new URL('.', import.meta.url)),
  '..',
  'build',
  'Release',
  'minigpt_kernels.node',
);

/** Loads the compiled addon; `reason` says why when it cannot. */
export function loadNativeAddon(path = defaultAddonPath): NativeLoadResult {
  if (process.env['MINIGPT_NATIVE'] === '0') return { addon: null, reason: 'MINIGPT_NATIVE=0' };
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    if (typeof addon.matMul !== 'function')
      return { addon: null, reason: `${path}: not this addon` };
    return { addon, path };
  } catch (error) {
    const message = String((error as Error).message ?? error).split('\n')[0];
    return {
      addon: null,
      reason: `${path} could not be loaded (${message}) — it is built on install when a C++ compiler, make and python3 are present; \`npm rebuild @minigpt/native-kernels\` builds it again`,
    };
  }
}

/**
 * Replaces tfjs's wasm kernels named in NATIVE_KERNEL_NAMES with the addon's. Call after
 * the wasm backend is registered (importing @tensorflow/tfjs-backend-wasm); the original
 * kernels stay in use for anything the addon does not handle (other dtypes, batch
 * broadcasts other than one-to-many). Calling it again does nothing.
 */
export function installNativeKernels(
  options: { readonly threads?: number; readonly addonPath?: string } = {},
): NativeInstallResult {
  const loaded = loadNativeAddon(options.addonPath);
  if (!loaded.addon) return { installed: false, reason: loaded.reason, kernels: [] };
  const addon = loaded.addon;
  if (options.threads !== undefined) addon.setThreads(options.threads);
  const set = kernelSetOf(addon);
  // The native set is the fastest: it takes the place of another one installed before it
  // (the WebAssembly set, from an earlier run in this process).
  const active = activeKernelSet();
  if (active && active !== set) uninstallKernelSet();
  const kernels = installKernelSet(set);
  if (!kernels) return { installed: false, reason: NO_WASM_BACKEND, kernels: [] };
  const { threads, vectorLanes } = addon.info();
  return { installed: true, kernels: [...kernels], threads, vectorLanes };
}

const kernelSets = new WeakMap<NativeAddon, KernelSet>();

/** The addon as a KernelSet (one object per addon, so that it is recognised when active). */
function kernelSetOf(addon: NativeAddon): KernelSet {
  let set = kernelSets.get(addon);
  if (!set) {
    // The addon's packing reads any strides at full speed: transposed operands are free.
    set = Object.assign(Object.create(addon) as NativeAddon, { cheapTransposes: true });
    kernelSets.set(addon, set);
  }
  return set;
}

/** Puts tfjs's own wasm kernels back, and removes the added ones (after installNativeKernels). */
export function uninstallNativeKernels(): void {
  uninstallKernelSet();
}
