// Loading the addon and registering its kernels on tfjs's wasm backend.
//
// Why the wasm backend: its tensors live in one WebAssembly.Memory, so a native kernel can
// read inputs and write outputs in place through the memory's ArrayBuffer, and every op the
// addon does not cover keeps running in wasm on the same tensors. tfjs 4.22's wasm backend
// runs one thread in Node and its matMul reaches 17–29 GFLOP/s; the addon's packed SGEMM
// runs on every core (≈ 200 GFLOP/s for the GPT's shapes on 2 Zen 4 cores).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BatchMatMul,
  Erf,
  Exp,
  broadcast_util,
  getKernel,
  registerKernel,
  unregisterKernel,
  util,
  type BatchMatMulAttrs,
  type BatchMatMulInputs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

/** The functions the compiled addon exports. */
export interface NativeAddon {
  /**
   * C = op(A)·op(B) on float32 matrices inside `heap` (byte offsets), `batch` of them;
   * a broadcast operand is one matrix shared by the whole batch.
   */
  matMul(
    heap: ArrayBuffer,
    aOffset: number,
    bOffset: number,
    cOffset: number,
    batch: number,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    broadcastA: boolean,
    broadcastB: boolean,
  ): void;
  /**
   * out[i] = f(in[i]) for `count` float32s inside `heap`, f by `op`: 0 exp, 1 erf, 2 GELU
   * x·Φ(x), 3 its derivative Φ(x) + x·φ(x); with a scale operand (≥ 0), out[i] = f(in[i])·scale[i].
   */
  unary(
    heap: ArrayBuffer,
    inOffset: number,
    outOffset: number,
    count: number,
    op: 0 | 1 | 2 | 3,
    scaleOffset: number,
  ): void;
  /** Fused LayerNorm over the last axis: y, x̂ and rstd of `rows` rows (beta −1: none). */
  layerNorm(
    heap: ArrayBuffer,
    x: number,
    gamma: number,
    beta: number,
    y: number,
    normalized: number,
    rstd: number,
    rows: number,
    channels: number,
    epsilon: number,
  ): void;
  /** Its backward: dx, dγ, dβ from dy, x̂, rstd, γ. */
  layerNormGrad(
    heap: ArrayBuffer,
    dy: number,
    normalized: number,
    rstd: number,
    gamma: number,
    dx: number,
    dGamma: number,
    dBeta: number,
    rows: number,
    channels: number,
  ): void;
  /**
   * One weight's AdamW update with its gradient scaled by the float32 at `scale`:
   * g = grad·scale, m' = β1·m + (1−β1)·g, v' = β2·v + (1−β2)·g²,
   * w' = w·decay − lr·(m'/c1)/(√(v'/c2) + ε), written to the three outputs.
   */
  adamw(
    heap: ArrayBuffer,
    weight: number,
    grad: number,
    m: number,
    v: number,
    scale: number,
    weightOut: number,
    mOut: number,
    vOut: number,
    count: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    correction1: number,
    correction2: number,
    epsilon: number,
    lr: number,
    decay: number,
  ): void;
  /** Σ x² over `count` float32s (accumulated in double, the same for any thread count). */
  sumOfSquares(heap: ArrayBuffer, x: number, count: number): number;
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

/**
 * Kernels the addon adds (tfjs has none of these): a fused LayerNorm over the last axis and
 * its backward. `@minigpt/model`'s layerNorm runs them when the active backend has them.
 *   MinigptLayerNorm      inputs x (N, C), gamma (C), beta? (C); attrs epsilon
 *                         → [y (N, C), normalized x̂ (N, C), rstd (N, 1)]
 *   MinigptLayerNormGrad  inputs dy (N, C), normalized (N, C), rstd (N, 1), gamma (C)
 *                         → [dx (N, C), dGamma (C), dBeta (C)]
 *   MinigptGelu           inputs x → [x·Φ(x)] (exact GELU)
 *   MinigptGeluGrad       inputs dy, x → [dy·(Φ(x) + x·φ(x))]
 *   MinigptAdamW          inputs weight, grad, m, v, scale (a scalar: the clipping factor);
 *                         attrs beta1, beta2, epsilon, correction1, correction2, lr, decay
 *                         (the weight's multiplier, 1 − lr·weightDecay)
 *                         → [weight', m', v'] (PyTorch's AdamW step on one weight)
 *   MinigptSumOfSquares   inputs any number of float32 tensors → [Σ x² over all (a scalar)]
 * `@minigpt/trainer`'s AdamW runs the last two when the active backend has them.
 */
export const FUSED_KERNEL_NAMES = [
  'MinigptLayerNorm',
  'MinigptLayerNormGrad',
  'MinigptGelu',
  'MinigptGeluGrad',
  'MinigptAdamW',
  'MinigptSumOfSquares',
] as const;

/** The tfjs kernels the addon replaces or adds on the wasm backend. */
export const NATIVE_KERNEL_NAMES = [BatchMatMul, Exp, Erf, ...FUSED_KERNEL_NAMES] as const;

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

/** What the wasm backend object offers that the kernels use (its public class members). */
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
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
  if (!getKernel(BatchMatMul, 'wasm'))
    return {
      installed: false,
      reason:
        'the tfjs wasm backend is not registered (import @tensorflow/tfjs-backend-wasm first)',
      kernels: [],
    };
  replace(BatchMatMul, (original) => nativeBatchMatMul(addon, original));
  replace(Exp, (original) => nativeUnary(addon, 0, original));
  replace(Erf, (original) => nativeUnary(addon, 1, original));
  add('MinigptLayerNorm', nativeLayerNorm(addon));
  add('MinigptLayerNormGrad', nativeLayerNormGrad(addon));
  add('MinigptGelu', nativeElementwise(addon, 2));
  add('MinigptGeluGrad', nativeElementwise(addon, 3));
  add('MinigptAdamW', nativeAdamW(addon));
  add('MinigptSumOfSquares', nativeSumOfSquares(addon));
  const { threads, vectorLanes } = addon.info();
  return { installed: true, kernels: [...NATIVE_KERNEL_NAMES], threads, vectorLanes };
}

const replaced = new Map<string, KernelConfig>();

/** Swaps wasm's kernel `name` for a native one made from it (once). */
function replace(name: string, make: (original: KernelFunc) => KernelFunc): void {
  const original = getKernel(name, 'wasm');
  if (!original || (original.kernelFunc as { native?: true }).native) return;
  const kernelFunc = make(original.kernelFunc) as KernelFunc & { native?: true };
  kernelFunc.native = true;
  replaced.set(name, original);
  unregisterKernel(name, 'wasm');
  registerKernel({ ...original, kernelFunc });
}

/**
 * Exp and Erf on float32: vectorized and threaded (tfjs's wasm kernels call libm per
 * element on one thread: ~3 ns a float). exp within 2 ulp; erf by Abramowitz & Stegun
 * 7.1.26, the approximation tfjs's cpu kernel uses too (absolute error ≤ 1.5e-7).
 */
function nativeUnary(addon: NativeAddon, op: 0 | 1, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as unknown as { x: TensorInfo };
    const backend = args.backend as unknown as WasmBackend;
    if (x.dtype !== 'float32') return fallback(args);
    const out = backend.makeOutput([...x.shape], 'float32');
    const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
    addon.unary(
      heap,
      backend.dataIdMap.get(x.dataId)!.memoryOffset,
      backend.dataIdMap.get(out.dataId)!.memoryOffset,
      util.sizeFromShape(x.shape),
      op,
      -1,
    );
    return out;
  };
}

/** GELU (op 2: inputs x) and its backward (op 3: inputs dy, x → dy · GELU′(x)). */
function nativeElementwise(addon: NativeAddon, op: 2 | 3): KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as unknown as { x: TensorInfo; dy?: TensorInfo };
    const backend = args.backend as unknown as WasmBackend;
    if (x.dtype !== 'float32' || (dy && dy.dtype !== 'float32'))
      throw new Error('MinigptGelu: float32 only');
    if (op === 3 && (!dy || !util.arraysEqual(dy.shape, x.shape)))
      throw new Error('MinigptGeluGrad: dy and x must have the same shape');
    const out = backend.makeOutput([...x.shape], 'float32');
    addon.unary(
      backend.wasm.HEAPU8.buffer as ArrayBuffer,
      backend.dataIdMap.get(x.dataId)!.memoryOffset,
      backend.dataIdMap.get(out.dataId)!.memoryOffset,
      util.sizeFromShape(x.shape),
      op,
      op === 3 ? backend.dataIdMap.get(dy!.dataId)!.memoryOffset : -1,
    );
    return out;
  };
}

const added = new Set<string>();

/** Registers a kernel tfjs does not have (once). */
function add(name: string, kernelFunc: KernelFunc): void {
  if (added.has(name) || getKernel(name, 'wasm')) return;
  registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  added.add(name);
}

/** Puts tfjs's own wasm kernels back, and removes the added ones (after installNativeKernels). */
export function uninstallNativeKernels(): void {
  for (const [name, original] of replaced) {
    unregisterKernel(name, 'wasm');
    registerKernel(original);
  }
  replaced.clear();
  for (const name of added) unregisterKernel(name, 'wasm');
  added.clear();
}

function nativeLayerNorm(addon: NativeAddon): KernelFunc {
  return (args) => {
    const { x, gamma, beta } = args.inputs as unknown as Record<string, TensorInfo | undefined>;
    const epsilon = (args.attrs as { epsilon?: number } | undefined)?.epsilon ?? 1e-5;
    const backend = args.backend as unknown as WasmBackend;
    for (const t of [x, gamma, beta])
      if (t && t.dtype !== 'float32') throw new Error('MinigptLayerNorm: float32 only');
    const channels = x!.shape[x!.shape.length - 1]!;
    const rows = util.sizeFromShape(x!.shape) / channels;
    const y = backend.makeOutput([...x!.shape], 'float32');
    const normalized = backend.makeOutput([...x!.shape], 'float32');
    const rstd = backend.makeOutput([...x!.shape.slice(0, -1), 1], 'float32');
    const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    addon.layerNorm(
      backend.wasm.HEAPU8.buffer as ArrayBuffer,
      offset(x!),
      offset(gamma!),
      beta ? offset(beta) : -1,
      offset(y),
      offset(normalized),
      offset(rstd),
      rows,
      channels,
      epsilon,
    );
    return [y, normalized, rstd];
  };
}

function nativeLayerNormGrad(addon: NativeAddon): KernelFunc {
  return (args) => {
    const { dy, normalized, rstd, gamma } = args.inputs as unknown as Record<string, TensorInfo>;
    const backend = args.backend as unknown as WasmBackend;
    const channels = dy!.shape[dy!.shape.length - 1]!;
    const rows = util.sizeFromShape(dy!.shape) / channels;
    const dx = backend.makeOutput([...dy!.shape], 'float32');
    const dGamma = backend.makeOutput([channels], 'float32');
    const dBeta = backend.makeOutput([channels], 'float32');
    const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    addon.layerNormGrad(
      backend.wasm.HEAPU8.buffer as ArrayBuffer,
      offset(dy!),
      offset(normalized!),
      offset(rstd!),
      offset(gamma!),
      offset(dx),
      offset(dGamma),
      offset(dBeta),
      rows,
      channels,
    );
    return [dx, dGamma, dBeta];
  };
}

interface AdamWAttrs {
  beta1: number;
  beta2: number;
  epsilon: number;
  correction1: number;
  correction2: number;
  lr: number;
  decay: number;
}

function nativeAdamW(addon: NativeAddon): KernelFunc {
  return (args) => {
    const { weight, grad, m, v, scale } = args.inputs as unknown as Record<
      string,
      TensorInfo | undefined
    >;
    const attrs = args.attrs as unknown as AdamWAttrs;
    const backend = args.backend as unknown as WasmBackend;
    for (const [name, t] of Object.entries({ weight, grad, m, v, scale })) {
      if (!t) throw new Error(`MinigptAdamW: input ${name} is missing`);
      if (t.dtype !== 'float32') throw new Error(`MinigptAdamW: ${name} is not float32`);
    }
    for (const t of [grad!, m!, v!])
      if (!util.arraysEqual(t.shape, weight!.shape))
        throw new Error(
          `MinigptAdamW: grad, m and v must have the weight's shape [${weight!.shape}], got [${t.shape}]`,
        );
    if (util.sizeFromShape(scale!.shape) !== 1)
      throw new Error(`MinigptAdamW: scale must be a scalar, got shape [${scale!.shape}]`);
    // weight', m', v'
    const outputs = [0, 1, 2].map(() => backend.makeOutput([...weight!.shape], 'float32'));
    const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    const { beta1, beta2, epsilon, correction1, correction2, lr, decay } = attrs;
    // 1 − β computed here, in double, as the tfjs ops do before rounding it to float32 (in
    // float32 arithmetic 1 − 0.9 rounds differently).
    addon.adamw(
      backend.wasm.HEAPU8.buffer as ArrayBuffer,
      offset(weight!),
      offset(grad!),
      offset(m!),
      offset(v!),
      offset(scale!),
      offset(outputs[0]!),
      offset(outputs[1]!),
      offset(outputs[2]!),
      util.sizeFromShape(weight!.shape),
      beta1,
      1 - beta1,
      beta2,
      1 - beta2,
      correction1,
      correction2,
      epsilon,
      lr,
      decay,
    );
    return outputs;
  };
}

function nativeSumOfSquares(addon: NativeAddon): KernelFunc {
  return (args) => {
    const inputs = Object.values(args.inputs as unknown as Record<string, TensorInfo>);
    const backend = args.backend as unknown as WasmBackend;
    for (const t of inputs)
      if (t.dtype !== 'float32') throw new Error('MinigptSumOfSquares: float32 only');
    const out = backend.makeOutput([], 'float32');
    const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
    let total = 0;
    for (const t of inputs)
      total += addon.sumOfSquares(
        heap,
        backend.dataIdMap.get(t.dataId)!.memoryOffset,
        util.sizeFromShape(t.shape),
      );
    new Float32Array(heap, backend.dataIdMap.get(out.dataId)!.memoryOffset, 1)[0] = total;
    return out;
  };
}

function nativeBatchMatMul(addon: NativeAddon, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as unknown as BatchMatMulInputs & { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
    const backend = args.backend as unknown as WasmBackend;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(args);
    const aRank = a.shape.length;
    const bRank = b.shape.length;
    const inner = transposeA ? a.shape[aRank - 2]! : a.shape[aRank - 1]!;
    const innerB = transposeB ? b.shape[bRank - 1]! : b.shape[bRank - 2]!;
    const rows = transposeA ? a.shape[aRank - 1]! : a.shape[aRank - 2]!; // M
    const columns = transposeB ? b.shape[bRank - 2]! : b.shape[bRank - 1]!; // N
    if (inner !== innerB) return fallback(args); // tfjs's kernel words the error
    const batchA = util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = util.sizeFromShape(b.shape.slice(0, -2));
    const outer = broadcast_util.assertAndGetBroadcastShape(
      a.shape.slice(0, -2),
      b.shape.slice(0, -2),
    );
    const batch = util.sizeFromShape(outer);
    // One-to-many and equal batches only; other broadcasts go to tfjs's kernel.
    if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1))
      return fallback(args);
    const out = backend.makeOutput([...outer, rows, columns], 'float32');
    // makeOutput may grow the heap (a new ArrayBuffer): read the buffer after it.
    const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
    addon.matMul(
      heap,
      backend.dataIdMap.get(a.dataId)!.memoryOffset,
      backend.dataIdMap.get(b.dataId)!.memoryOffset,
      backend.dataIdMap.get(out.dataId)!.memoryOffset,
      batch,
      rows,
      columns,
      inner,
      transposeA,
      transposeB,
      batchA === 1 && batch > 1,
      batchB === 1 && batch > 1,
    );
    return out;
  };
}
