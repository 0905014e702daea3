// Registering a kernel set on tfjs's wasm backend: the tfjs side of every kernel (shapes,
// dtypes, broadcasts, outputs), shared by this package's WebAssembly kernels and
// @minigpt/native-kernels' Node addon, which differ only in where the arithmetic runs.
//
// Why the wasm backend: its tensors live in one WebAssembly.Memory, so a kernel set reads
// inputs and writes outputs through the memory's buffer at each tensor's offset, and every op
// it does not cover keeps running in tfjs's wasm on the same tensors.
import {
  BatchMatMul,
  Erf,
  Exp,
  GatherV2,
  Identity,
  Slice,
  SplitV,
  slice_util,
  broadcast_util,
  backend as activeBackend,
  getBackend,
  getKernel,
  registerKernel,
  unregisterKernel,
  util,
  type BatchMatMulAttrs,
  type BatchMatMulInputs,
  type GatherV2Attrs,
  type SliceAttrs,
  type SplitVAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

/** The shape and dropout stream of a KernelSet attention call (after its byte offsets). */
export type AttentionCall = [
  batch: number,
  time: number,
  heads: number,
  headSize: number,
  threshold: number,
  start: number,
  step: number,
  keepScale: number,
];

/**
 * The arithmetic of the kernels, on float32 operands inside `heap` (the wasm backend's
 * memory buffer) at byte offsets. @minigpt/native-kernels' addon is one; this package's
 * WebAssembly module (createWasmKernelSet) is another.
 */
export interface KernelSet {
  /**
   * Whether a transposed operand costs the set's matMul nothing (true for the native addon,
   * whose packing reads any strides at full speed). Then the BatchMatMul kernel is marked
   * `native`, and @minigpt/model hands it transposed operands instead of transposing them
   * first.
   */
  readonly cheapTransposes: boolean;
  /**
   * Whether the set runs this product (absent: every one); false leaves it to tfjs's own
   * kernel, for products tfjs runs as fast (the WebAssembly set leaves plain single products
   * to tfjs's XNNPACK, which has threads where the page has them).
   */
  takesMatMul?(batch: number, transposeA: boolean, transposeB: boolean): boolean;
  /**
   * C = op(A)·op(B) on float32 matrices inside `heap` (byte offsets), `batch` of them;
   * a broadcast operand is one matrix shared by the whole batch.
   */
  matMul(
    heap: ArrayBufferLike,
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
    heap: ArrayBufferLike,
    inOffset: number,
    outOffset: number,
    count: number,
    op: 0 | 1 | 2 | 3,
    scaleOffset: number,
  ): void;
  /** Fused LayerNorm over the last axis: y, x̂ and rstd of `rows` rows (beta −1: none). */
  layerNorm(
    heap: ArrayBufferLike,
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
    heap: ArrayBufferLike,
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
    heap: ArrayBufferLike,
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
  sumOfSquares(heap: ArrayBufferLike, x: number, count: number): number;
  /**
   * Fused causal self-attention (optional: a set without it leaves attention to tfjs ops).
   * qkv (B·T, 3C): q, k, v side by side (c_attn's output), head h at columns [h·hs,
   * (h+1)·hs) of each; y (B·T, C) = softmax(q·kᵀ/√hs + causal mask)·v per (batch row, head),
   * the heads side by side; lse (B, nh, T) each query's log-sum-exp of its scaled scores.
   * Dropout on the weights when threshold ≥ 0: weight e = ((b·nh + h)·T + i)·T + j is kept
   * when lowbias32(start + e·step mod 2³²) ≥ threshold (@minigpt/model's dropoutKeepMask
   * stream), kept weights scaled by keepScale.
   */
  attention?(
    heap: ArrayBufferLike,
    qkv: number,
    y: number,
    lse: number,
    ...shape: AttentionCall
  ): void;
  /**
   * Dropout on `count` float32s (optional: a set without it leaves dropout to
   * @minigpt/model's tfjs path): y[e] = x[e]·keepScale where element e is kept —
   * lowbias32(start + e·step mod 2³²) ≥ threshold, dropoutKeepMask's stream — else x[e]·0.
   */
  dropout?(
    heap: ArrayBufferLike,
    x: number,
    y: number,
    count: number,
    threshold: number,
    start: number,
    step: number,
    keepScale: number,
  ): void;
  /** Its backward: dqkv (B·T, 3C), laid out as qkv, from dy and the forward's qkv, y, lse. */
  attentionGrad?(
    heap: ArrayBufferLike,
    dy: number,
    qkv: number,
    y: number,
    lse: number,
    dqkv: number,
    ...shape: AttentionCall
  ): void;
}

/**
 * Kernels a kernel set adds (tfjs has none of these): a fused LayerNorm over the last axis and
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
 *
 * Two more where the set has `attention` (the native addon and the WebAssembly set do):
 * @minigpt/model's causal self-attention runs them instead of ~30 tfjs ops a layer (c_attn's
 * split, the reshapes and transposes, batched products, mask and softmax, forward and
 * backward).
 *   MinigptAttention      inputs qkv (B·T, 3C); attrs batch, heads, and dropout's threshold
 *                         (−1: none), start, step, keepScale → [y (B·T, C), lse (B, nh, T)]
 *   MinigptAttentionGrad  inputs dy (B·T, C), qkv, y, lse; same attrs → [dqkv (B·T, 3C)]
 */
export const FUSED_KERNEL_NAMES = [
  'MinigptLayerNorm',
  'MinigptLayerNormGrad',
  'MinigptGelu',
  'MinigptGeluGrad',
  'MinigptAdamW',
  'MinigptSumOfSquares',
] as const;

/** The fused attention kernels, registered where the set has `attention`. */
export const ATTENTION_KERNEL_NAMES = ['MinigptAttention', 'MinigptAttentionGrad'] as const;

/**
 * The dropout kernel, registered where the set has `dropout` (the native addon does):
 *   MinigptDropout  inputs x; attrs threshold, start, step, keepScale (dropoutStream's, and
 *                   1 / (1 − rate)) → [x where kept · keepScale, 0 elsewhere]
 * @minigpt/model's dropout runs it, forward and (on dy, with the same attrs) backward, instead
 * of drawing the mask in JavaScript.
 */
export const DROPOUT_KERNEL_NAMES = ['MinigptDropout'] as const;

/**
 * The tfjs kernels a kernel set replaces or adds on the wasm backend. Slice, SplitV and
 * GatherV2 are copies, the same for every set: tfjs's wasm backend runs them at 20–50 ns a
 * float (a `baby` step spent 15 ms of ~220 splitting c_attn's weight and gathering
 * embeddings); here they are loops over typed arrays. (Its Transpose is as fast as a loop in
 * JavaScript, so it stays.) Identity shares its input's memory instead of copying it, as
 * tfjs's cpu backend does: tf.customGrad clones every tensor a forward saves for its
 * backward through it (63 copies of (768, 128) in a `baby` step, ~2 ms of ~44).
 */
export const KERNEL_NAMES = [
  BatchMatMul,
  Exp,
  Erf,
  Slice,
  SplitV,
  GatherV2,
  Identity,
  ...FUSED_KERNEL_NAMES,
] as const;

/** What the wasm backend object offers that the kernels use (its public class members). */
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  incRef(dataId: object): void;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
}

/** Why a kernel set was not installed: installKernelSet found no wasm backend (null). */
export const NO_WASM_BACKEND =
  'the tfjs wasm backend is not registered (import @tensorflow/tfjs-backend-wasm first)';

/**
 * Replaces tfjs's wasm kernels named in KERNEL_NAMES with the set's. Call after the wasm
 * backend is registered (importing @tensorflow/tfjs-backend-wasm); tfjs's own kernels stay
 * in use for what the set does not handle (other dtypes, batch broadcasts other than
 * one-to-many). The first set installed stays until uninstallKernelSet: installing again does
 * nothing. Returns the kernels registered, or null when the wasm backend is not registered.
 */
export function installKernelSet(kernels: KernelSet): readonly string[] | null {
  if (!getKernel(BatchMatMul, 'wasm')) return null;
  active ??= kernels;
  replace(BatchMatMul, (original) => fastBatchMatMul(kernels, original), kernels.cheapTransposes);
  replace(Exp, (original) => fastUnary(kernels, 0, original));
  replace(Slice, copySlice);
  replace(SplitV, copySplitV);
  replace(GatherV2, copyGatherV2);
  replace(Identity, sharedIdentity);
  replace(Erf, (original) => fastUnary(kernels, 1, original));
  add('MinigptLayerNorm', fastLayerNorm(kernels));
  add('MinigptLayerNormGrad', fastLayerNormGrad(kernels));
  add('MinigptGelu', fastElementwise(kernels, 2));
  add('MinigptGeluGrad', fastElementwise(kernels, 3));
  add('MinigptAdamW', fastAdamW(kernels));
  add('MinigptSumOfSquares', fastSumOfSquares(kernels));
  const names: string[] = [...KERNEL_NAMES];
  if (kernels.attention && kernels.attentionGrad) {
    add('MinigptAttention', fastAttention(kernels));
    add('MinigptAttentionGrad', fastAttentionGrad(kernels));
    names.push(...ATTENTION_KERNEL_NAMES);
  }
  if (kernels.dropout) {
    add('MinigptDropout', fastDropout(kernels));
    names.push(...DROPOUT_KERNEL_NAMES);
  }
  return names;
}

const replaced = new Map<string, KernelConfig>();
let active: KernelSet | undefined;

/**
 * A float32 tensor's values where they lie in the wasm backend's heap, without the copy
 * `dataSync` makes; undefined on any other backend. The view is valid until the next tfjs
 * allocation, which may grow the heap and detach it: read it at once. (The trainer sums a
 * large model's gradients through it, 0.5 GB a pass at GPT-2's size.)
 */
export function heapFloats(tensor: {
  readonly dataId: object;
  readonly size: number;
  readonly dtype: string;
}): Float32Array | undefined {
  if (getBackend() !== 'wasm' || tensor.dtype !== 'float32') return undefined;
  const wasm = activeBackend() as unknown as WasmBackend;
  const entry = wasm.dataIdMap.get(tensor.dataId);
  return entry && new Float32Array(wasm.wasm.HEAPU8.buffer, entry.memoryOffset, tensor.size);
}

/** The kernel set registered now (the first installed since the last uninstall), if any. */
export function activeKernelSet(): KernelSet | undefined {
  return active;
}

/** Swaps wasm's kernel `name` for the set's made from it (once). */
function replace(
  name: string,
  make: (original: KernelFunc) => KernelFunc,
  cheapTransposes = false,
): void {
  const original = getKernel(name, 'wasm');
  if (!original || replaced.has(name)) return;
  const kernelFunc = make(original.kernelFunc) as KernelFunc & { native?: true };
  // `native` tells @minigpt/model that transposed matMul operands cost nothing here, so it
  // stops transposing them explicitly first.
  if (name === BatchMatMul && cheapTransposes) kernelFunc.native = true;
  replaced.set(name, original);
  unregisterKernel(name, 'wasm');
  registerKernel({ ...original, kernelFunc });
}

/**
 * Identity as one more reference to its input's memory (tfjs's cpu backend does the same;
 * wasm's copies). Safe because no kernel writes into a tensor once made: every kernel,
 * these sets' included, writes only the outputs it allocates.
 */
function sharedIdentity(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as unknown as { x: TensorInfo };
    if (x.dtype === 'string') return original(args);
    (args.backend as unknown as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

/**
 * Exp and Erf on float32: vectorized (and threaded, in the native set; tfjs's wasm kernels
 * call libm per element on one thread: ~3 ns a float). exp within 2 ulp; erf by Abramowitz & Stegun
 * 7.1.26, the approximation tfjs's cpu kernel uses too (absolute error ≤ 1.5e-7).
 */
function fastUnary(kernels: KernelSet, op: 0 | 1, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as unknown as { x: TensorInfo };
    const backend = args.backend as unknown as WasmBackend;
    if (x.dtype !== 'float32') return fallback(args);
    const out = backend.makeOutput([...x.shape], 'float32');
    const heap = backend.wasm.HEAPU8.buffer;
    kernels.unary(
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
function fastElementwise(kernels: KernelSet, op: 2 | 3): KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as unknown as { x: TensorInfo; dy?: TensorInfo };
    const backend = args.backend as unknown as WasmBackend;
    if (x.dtype !== 'float32' || (dy && dy.dtype !== 'float32'))
      throw new Error('MinigptGelu: float32 only');
    if (op === 3 && (!dy || !util.arraysEqual(dy.shape, x.shape)))
      throw new Error('MinigptGeluGrad: dy and x must have the same shape');
    const out = backend.makeOutput([...x.shape], 'float32');
    kernels.unary(
      backend.wasm.HEAPU8.buffer,
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

/** Puts tfjs's own wasm kernels back, and removes the added ones (after installKernelSet). */
export function uninstallKernelSet(): void {
  for (const [name, original] of replaced) {
    unregisterKernel(name, 'wasm');
    registerKernel(original);
  }
  replaced.clear();
  active = undefined;
  for (const name of added) unregisterKernel(name, 'wasm');
  added.clear();
}

function fastLayerNorm(kernels: KernelSet): KernelFunc {
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
    kernels.layerNorm(
      backend.wasm.HEAPU8.buffer,
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

function fastLayerNormGrad(kernels: KernelSet): KernelFunc {
  return (args) => {
    const { dy, normalized, rstd, gamma } = args.inputs as unknown as Record<string, TensorInfo>;
    const backend = args.backend as unknown as WasmBackend;
    const channels = dy!.shape[dy!.shape.length - 1]!;
    const rows = util.sizeFromShape(dy!.shape) / channels;
    const dx = backend.makeOutput([...dy!.shape], 'float32');
    const dGamma = backend.makeOutput([channels], 'float32');
    const dBeta = backend.makeOutput([channels], 'float32');
    const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    kernels.layerNormGrad(
      backend.wasm.HEAPU8.buffer,
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

/** Dropout's stream (KernelSet.attention, .dropout): threshold −1 (or absent) for none. */
interface DropoutAttrs {
  threshold?: number;
  start?: number;
  step?: number;
  keepScale?: number;
}

interface AttentionAttrs extends DropoutAttrs {
  batch: number;
  heads: number;
}

/** The dropout attrs as the set's arguments, checked (integers in [0, 2³²)). */
function dropoutArguments(
  kernel: string,
  attrs: DropoutAttrs,
): [threshold: number, start: number, step: number, keepScale: number] {
  const { threshold = -1, start = 0, step = 0, keepScale = 1 } = attrs;
  const word = (x: number) => Number.isInteger(x) && x >= 0 && x < 2 ** 32;
  if (!(threshold === -1 || word(threshold)) || !word(start) || !word(step) || !(keepScale > 0))
    throw new Error(
      `${kernel}: bad dropout attrs ${JSON.stringify({ threshold, start, step, keepScale })}`,
    );
  return [threshold, start, step, keepScale];
}

/** B, T, nh, hs of qkv (B·T, 3C), checked against the attrs; throws naming `kernel`. */
function attentionShape(kernel: string, qkv: TensorInfo | undefined, attrs: AttentionAttrs) {
  const { batch, heads } = attrs;
  if (!qkv) throw new Error(`${kernel}: input qkv is missing`);
  const [rows = 0, width = 0] = qkv.shape;
  if (
    qkv.dtype !== 'float32' ||
    qkv.shape.length !== 2 ||
    !Number.isInteger(batch) ||
    !Number.isInteger(heads) ||
    batch < 1 ||
    heads < 1 ||
    rows % batch !== 0 ||
    width % (3 * heads) !== 0
  )
    throw new Error(
      `${kernel}: qkv ${qkv.dtype} [${qkv.shape}] is not float32 (batch ${batch} · T, 3 · heads ${heads} · hs)`,
    );
  return { batch, time: rows / batch, heads, headSize: width / (3 * heads) };
}

/** Checks that `tensor` is float32 of `shape`. */
function checkAttentionInput(
  kernel: string,
  name: string,
  tensor: TensorInfo | undefined,
  shape: number[],
): void {
  if (!tensor) throw new Error(`${kernel}: input ${name} is missing`);
  if (tensor.dtype !== 'float32' || !util.arraysEqual(tensor.shape, shape))
    throw new Error(
      `${kernel}: ${name} must be float32 [${shape}], got ${tensor.dtype} [${tensor.shape}]`,
    );
}

function fastAttention(kernels: KernelSet): KernelFunc {
  return (args) => {
    const { qkv } = args.inputs as unknown as Record<string, TensorInfo | undefined>;
    const attrs = args.attrs as unknown as AttentionAttrs;
    const backend = args.backend as unknown as WasmBackend;
    const { batch, time, heads, headSize } = attentionShape('MinigptAttention', qkv, attrs);
    const dropout = dropoutArguments('MinigptAttention', attrs);
    const y = backend.makeOutput([batch * time, heads * headSize], 'float32');
    const lse = backend.makeOutput([batch, heads, time], 'float32');
    const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    kernels.attention!(
      backend.wasm.HEAPU8.buffer,
      offset(qkv!),
      offset(y),
      offset(lse),
      batch,
      time,
      heads,
      headSize,
      ...dropout,
    );
    return [y, lse];
  };
}

function fastDropout(kernels: KernelSet): KernelFunc {
  return (args) => {
    const { x } = args.inputs as unknown as Record<string, TensorInfo | undefined>;
    const backend = args.backend as unknown as WasmBackend;
    if (!x || x.dtype !== 'float32') throw new Error('MinigptDropout: x must be float32');
    const stream = dropoutArguments('MinigptDropout', args.attrs as unknown as DropoutAttrs);
    const y = backend.makeOutput([...x.shape], 'float32');
    const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    kernels.dropout!(
      backend.wasm.HEAPU8.buffer,
      offset(x),
      offset(y),
      util.sizeFromShape(x.shape),
      ...stream,
    );
    return y;
  };
}

function fastAttentionGrad(kernels: KernelSet): KernelFunc {
  return (args) => {
    const { dy, qkv, y, lse } = args.inputs as unknown as Record<string, TensorInfo | undefined>;
    const attrs = args.attrs as unknown as AttentionAttrs;
    const backend = args.backend as unknown as WasmBackend;
    const kernel = 'MinigptAttentionGrad';
    const { batch, time, heads, headSize } = attentionShape(kernel, qkv, attrs);
    checkAttentionInput(kernel, 'dy', dy, [batch * time, heads * headSize]);
    checkAttentionInput(kernel, 'y', y, [batch * time, heads * headSize]);
    checkAttentionInput(kernel, 'lse', lse, [batch, heads, time]);
    const dropout = dropoutArguments(kernel, attrs);
    const dqkv = backend.makeOutput([...qkv!.shape], 'float32');
    const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    kernels.attentionGrad!(
      backend.wasm.HEAPU8.buffer,
      offset(dy!),
      offset(qkv!),
      offset(y!),
      offset(lse!),
      offset(dqkv),
      batch,
      time,
      heads,
      headSize,
      ...dropout,
    );
    return dqkv;
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

function fastAdamW(kernels: KernelSet): KernelFunc {
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
    kernels.adamw(
      backend.wasm.HEAPU8.buffer,
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

function fastSumOfSquares(kernels: KernelSet): KernelFunc {
  return (args) => {
    const inputs = Object.values(args.inputs as unknown as Record<string, TensorInfo>);
    const backend = args.backend as unknown as WasmBackend;
    for (const t of inputs)
      if (t.dtype !== 'float32') throw new Error('MinigptSumOfSquares: float32 only');
    const out = backend.makeOutput([], 'float32');
    const heap = backend.wasm.HEAPU8.buffer;
    let total = 0;
    for (const t of inputs)
      total += kernels.sumOfSquares(
        heap,
        backend.dataIdMap.get(t.dataId)!.memoryOffset,
        util.sizeFromShape(t.shape),
      );
    new Float32Array(heap, backend.dataIdMap.get(out.dataId)!.memoryOffset, 1)[0] = total;
    return out;
  };
}

function fastBatchMatMul(kernels: KernelSet, fallback: KernelFunc): KernelFunc {
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
    if (kernels.takesMatMul && !kernels.takesMatMul(batch, transposeA, transposeB))
      return fallback(args);
    const out = backend.makeOutput([...outer, rows, columns], 'float32');
    // makeOutput may grow the heap (a new ArrayBuffer): read the buffer after it.
    const heap = backend.wasm.HEAPU8.buffer;
    kernels.matMul(
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

// ---- copies: Slice, SplitV, GatherV2 ------------------------------------------------------

/** Copies `count` elements within `view` (element offsets). */
function copyElements(
  view: Int32Array | Uint8Array,
  target: number,
  source: number,
  count: number,
): void {
  view.copyWithin(target, source, source + count);
}

/** A view of the heap in elements of `bytes` bytes (4: Int32Array, which keeps float bits). */
function heapView(backend: WasmBackend, bytes: number): Int32Array | Uint8Array {
  const heap = backend.wasm.HEAPU8;
  return bytes === 4 ? new Int32Array(heap.buffer, 0, heap.byteLength >>> 2) : heap;
}

/** Where tensor `t` starts in the heap, in elements of `bytes` bytes. */
function elementOffset(backend: WasmBackend, t: TensorInfo, bytes: number): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset / bytes;
}

/** Element size in bytes of the dtypes the copies handle (others go to tfjs's kernels). */
const COPY_BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1 };

/**
 * out = x[begin : begin + size] (per axis), as runs of the innermost sliced axes that are
 * contiguous in x, copied with one typed-array `set` each.
 */
function sliceInto(
  backend: WasmBackend,
  x: TensorInfo,
  begin: readonly number[],
  size: readonly number[],
): TensorInfo {
  const bytes = COPY_BYTES[x.dtype]!;
  const out = backend.makeOutput([...size], x.dtype as 'float32');
  const view = heapView(backend, bytes);
  const source = elementOffset(backend, x, bytes);
  const target = elementOffset(backend, out, bytes);
  const rank = x.shape.length;
  const strides = util.computeStrides(x.shape); // (rank − 1) element strides of x
  // The run: the trailing axes taken whole, plus the last axis that is cut.
  let axis = rank - 1;
  let run = 1;
  while (axis > 0 && size[axis] === x.shape[axis]) run *= size[axis--]!;
  run *= size[axis] ?? 1;
  const total = util.sizeFromShape([...size]);
  if (total === 0) return out;
  const runs = total / run;
  // Walk the outer index (axes 0..axis−1) like an odometer.
  const index = new Array<number>(axis).fill(0);
  for (let r = 0; r < runs; r++) {
    let offset = 0;
    for (let d = 0; d < axis; d++) offset += (begin[d]! + index[d]!) * strides[d]!;
    offset += rank > 0 ? begin[axis]! * (axis < rank - 1 ? strides[axis]! : 1) : 0;
    copyElements(view, target + r * run, source + offset, run);
    for (let d = axis - 1; d >= 0; d--) {
      if (++index[d]! < size[d]!) break;
      index[d] = 0;
    }
  }
  return out;
}

const copySlice =
  (fallback: KernelFunc): KernelFunc =>
  (args) => {
    const { x } = args.inputs as unknown as { x: TensorInfo };
    if (COPY_BYTES[x.dtype] === undefined) return fallback(args);
    const { begin, size } = args.attrs as unknown as SliceAttrs;
    if (x.shape.length === 0) return fallback(args);
    const [begins, sizes] = slice_util.parseSliceParams(x as never, begin, size);
    slice_util.assertParamsValid(x as never, begins!, sizes!);
    return sliceInto(args.backend as unknown as WasmBackend, x, begins!, sizes!);
  };

const copySplitV =
  (fallback: KernelFunc): KernelFunc =>
  (args) => {
    const { x } = args.inputs as unknown as { x: TensorInfo };
    if (COPY_BYTES[x.dtype] === undefined) return fallback(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as SplitVAttrs;
    if (x.shape.length === 0) return fallback(args);
    const dim = util.parseAxisParam(axis, x.shape)[0]!;
    const length = x.shape[dim]!;
    let sizes: number[];
    if (typeof numOrSizeSplits === 'number') {
      if (length % numOrSizeSplits !== 0) return fallback(args); // tfjs words the error
      sizes = new Array<number>(numOrSizeSplits).fill(length / numOrSizeSplits);
    } else {
      const rest = numOrSizeSplits.indexOf(-1);
      sizes = [...numOrSizeSplits];
      const known = sizes.reduce((sum, value) => (value === -1 ? sum : sum + value), 0);
      if (rest !== -1) sizes[rest] = length - known;
      if (sizes.reduce((sum, value) => sum + value, 0) !== length || sizes.some((v) => v < 0))
        return fallback(args);
    }
    const backend = args.backend as unknown as WasmBackend;
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((part) => {
      const size = [...x.shape];
      size[dim] = part;
      const out = sliceInto(backend, x, begin, size);
      begin[dim]! += part;
      return out;
    });
  };

const copyGatherV2 =
  (fallback: KernelFunc): KernelFunc =>
  (args) => {
    const { x, indices } = args.inputs as unknown as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as GatherV2Attrs;
    const bytes = COPY_BYTES[x.dtype];
    if (bytes === undefined || indices.dtype !== 'int32' || (batchDims ?? 0) !== 0)
      return fallback(args);
    const dim = util.parseAxisParam(axis, x.shape)[0]!;
    const backend = args.backend as unknown as WasmBackend;
    const heap = backend.wasm.HEAPU8;
    const count = util.sizeFromShape(indices.shape);
    const ids = new Int32Array(
      heap.buffer,
      backend.dataIdMap.get(indices.dataId)!.memoryOffset,
      count,
    );
    const length = x.shape[dim]!;
    // An index out of range: tfjs's kernel raises (or defines) what happens.
    for (let i = 0; i < count; i++) if (ids[i]! < 0 || ids[i]! >= length) return fallback(args);
    const outer = util.sizeFromShape(x.shape.slice(0, dim));
    const inner = util.sizeFromShape(x.shape.slice(dim + 1)) * bytes;
    const out = backend.makeOutput(
      [...x.shape.slice(0, dim), ...indices.shape, ...x.shape.slice(dim + 1)],
      x.dtype as 'float32',
    );
    // makeOutput may grow the heap: views are taken after it.
    const view = heapView(backend, bytes);
    const idsNow = new Int32Array(
      view.buffer,
      backend.dataIdMap.get(indices.dataId)!.memoryOffset,
      count,
    );
    const source = elementOffset(backend, x, bytes);
    let target = elementOffset(backend, out, bytes);
    const row = inner / bytes; // elements of one gathered slice
    for (let o = 0; o < outer; o++) {
      const base = source + o * length * row;
      for (let i = 0; i < count; i++, target += row)
        copyElements(view, target, base + idsNow[i]! * row, row);
    }
    return out;
  };
