// The WebAssembly kernel set: csrc/kernels.c compiled with 128-bit SIMD, in a module of its
// own. Its memory is not tfjs's (a module cannot share tfjs's memory without being linked
// into it), so each call copies its operands in and its results out; at the sizes the GPT
// runs (a matMul of 64³ multiply-adds and up) the copies cost a few percent of the work.
import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';
import type { AttentionCall, KernelSet } from './kernel-set.js';

/** The exports of csrc/kernels.c (pointers are byte offsets into `memory`). */
interface KernelExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  matmul(
    a: number,
    b: number,
    c: number,
    batch: number,
    m: number,
    n: number,
    k: number,
    transposeA: number,
    transposeB: number,
    strideA: number,
    strideB: number,
    packedA: number,
    packedB: number,
  ): void;
  unary(input: number, output: number, count: number, op: number, scale: number): void;
  layerNorm(
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
  layerNormGrad(
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
  adamw(
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
  sumOfSquares(x: number, count: number): number;
  attentionScratch(time: number, headSize: number): number;
  attentionGradScratch(time: number, headSize: number): number;
  attention(qkv: number, y: number, lse: number, scratch: number, ...shape: AttentionCall): void;
  attentionGrad(
    dy: number,
    qkv: number,
    y: number,
    lse: number,
    dqkv: number,
    scratch: number,
    ...shape: AttentionCall
  ): void;
}

/** The module's bytes (decoded once). */
export function kernelsWasmBytes(): Uint8Array<ArrayBuffer> {
  return base64Bytes(KERNELS_WASM_BASE64);
}

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const PAGE = 65_536;
// MR of csrc/kernels.c: rows of A packed at once.
const PACK_ROWS = 6;
// NR: columns of a packed B panel.
const PACK_COLUMNS = 8;

/**
 * Compiles and instantiates the module (asynchronously: browsers refuse to compile a module
 * this size synchronously on the main thread) and wraps it as a KernelSet.
 */
export async function createWasmKernelSet(): Promise<KernelSet> {
  const module = await WebAssembly.compile(kernelsWasmBytes());
  const instance = await WebAssembly.instantiate(module);
  return new WasmKernelSet(instance.exports as unknown as KernelExports);
}

/**
 * Operands are laid out one after another from the module's heap base, 16-byte aligned, for
 * the length of one call; the memory grows to the largest call seen and stays that size.
 */
class WasmKernelSet implements KernelSet {
  // On one thread, a transposed product here is slower than tfjs transposing the operand and
  // running XNNPACK on the page's threads (baby in Chromium: 2,840 against 4,043 tokens/s).
  readonly cheapTransposes = false;
  readonly #exports: KernelExports;
  readonly #base: number;
  #floats: Float32Array;

  constructor(exports: KernelExports) {
    this.#exports = exports;
    this.#base = align(exports.__heap_base.value as number);
    this.#floats = new Float32Array(exports.memory.buffer);
  }

  /** Byte offsets of consecutive regions of `sizes` floats, the memory grown to hold them. */
  #layout(...sizes: number[]): number[] {
    const offsets: number[] = [];
    let end = this.#base;
    for (const size of sizes) {
      offsets.push(end);
      end = align(end + size * 4);
    }
    const memory = this.#exports.memory;
    if (end > memory.buffer.byteLength) {
      memory.grow(Math.ceil((end - memory.buffer.byteLength) / PAGE));
      this.#floats = new Float32Array(memory.buffer);
    }
    return offsets;
  }

  takesMatMul(batch: number, transposeA: boolean, transposeB: boolean): boolean {
    // tfjs's wasm BatchMatMul reaches this module's speed only on one plain product (through
    // XNNPACK, on its threads); batched or transposed operands take its scalar loop, 5–20×
    // slower than this module.
    return batch > 1 || transposeA || transposeB;
  }

  #copyIn(heap: ArrayBufferLike, from: number, count: number, to: number): void {
    this.#floats.set(new Float32Array(heap, from, count), to / 4);
  }

  #copyOut(from: number, count: number, heap: ArrayBufferLike, to: number): void {
    new Float32Array(heap, to, count).set(this.#floats.subarray(from / 4, from / 4 + count));
  }

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
  ): void {
    const aCount = (broadcastA ? 1 : batch) * m * k;
    const bCount = (broadcastB ? 1 : batch) * k * n;
    const cCount = batch * m * n;
    const paddedColumns = Math.ceil(n / PACK_COLUMNS) * PACK_COLUMNS;
    const [a, b, c, packedA, packedB] = this.#layout(
      aCount,
      bCount,
      cCount,
      PACK_ROWS * k,
      k * paddedColumns,
    ) as [number, number, number, number, number];
    this.#copyIn(heap, aOffset, aCount, a);
    this.#copyIn(heap, bOffset, bCount, b);
    this.#exports.matmul(
      a,
      b,
      c,
      batch,
      m,
      n,
      k,
      transposeA ? 1 : 0,
      transposeB ? 1 : 0,
      broadcastA ? 0 : m * k,
      broadcastB ? 0 : k * n,
      packedA,
      packedB,
    );
    this.#copyOut(c, cCount, heap, cOffset);
  }

  unary(
    heap: ArrayBufferLike,
    inOffset: number,
    outOffset: number,
    count: number,
    op: 0 | 1 | 2 | 3,
    scaleOffset: number,
  ): void {
    const scaled = scaleOffset >= 0;
    const [input, output, scale] = this.#layout(count, count, scaled ? count : 0) as [
      number,
      number,
      number,
    ];
    this.#copyIn(heap, inOffset, count, input);
    if (scaled) this.#copyIn(heap, scaleOffset, count, scale);
    this.#exports.unary(input, output, count, op, scaled ? scale : 0);
    this.#copyOut(output, count, heap, outOffset);
  }

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
  ): void {
    const size = rows * channels;
    const hasBeta = beta >= 0;
    const [xIn, gammaIn, betaIn, yOut, normalizedOut, rstdOut] = this.#layout(
      size,
      channels,
      hasBeta ? channels : 0,
      size,
      size,
      rows,
    ) as [number, number, number, number, number, number];
    this.#copyIn(heap, x, size, xIn);
    this.#copyIn(heap, gamma, channels, gammaIn);
    if (hasBeta) this.#copyIn(heap, beta, channels, betaIn);
    this.#exports.layerNorm(
      xIn,
      gammaIn,
      hasBeta ? betaIn : 0,
      yOut,
      normalizedOut,
      rstdOut,
      rows,
      channels,
      epsilon,
    );
    this.#copyOut(yOut, size, heap, y);
    this.#copyOut(normalizedOut, size, heap, normalized);
    this.#copyOut(rstdOut, rows, heap, rstd);
  }

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
  ): void {
    const size = rows * channels;
    const [dyIn, normalizedIn, rstdIn, gammaIn, dxOut, dGammaOut, dBetaOut] = this.#layout(
      size,
      size,
      rows,
      channels,
      size,
      channels,
      channels,
    ) as [number, number, number, number, number, number, number];
    this.#copyIn(heap, dy, size, dyIn);
    this.#copyIn(heap, normalized, size, normalizedIn);
    this.#copyIn(heap, rstd, rows, rstdIn);
    this.#copyIn(heap, gamma, channels, gammaIn);
    this.#exports.layerNormGrad(
      dyIn,
      normalizedIn,
      rstdIn,
      gammaIn,
      dxOut,
      dGammaOut,
      dBetaOut,
      rows,
      channels,
    );
    this.#copyOut(dxOut, size, heap, dx);
    this.#copyOut(dGammaOut, channels, heap, dGamma);
    this.#copyOut(dBetaOut, channels, heap, dBeta);
  }

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
  ): void {
    const [weightIn, gradIn, mIn, vIn, weightNew, mNew, vNew] = this.#layout(
      count,
      count,
      count,
      count,
      count,
      count,
      count,
    ) as [number, number, number, number, number, number, number];
    this.#copyIn(heap, weight, count, weightIn);
    this.#copyIn(heap, grad, count, gradIn);
    this.#copyIn(heap, m, count, mIn);
    this.#copyIn(heap, v, count, vIn);
    this.#exports.adamw(
      weightIn,
      gradIn,
      mIn,
      vIn,
      new Float32Array(heap, scale, 1)[0]!,
      weightNew,
      mNew,
      vNew,
      count,
      beta1,
      oneMinusBeta1,
      beta2,
      oneMinusBeta2,
      correction1,
      correction2,
      epsilon,
      lr,
      decay,
    );
    this.#copyOut(weightNew, count, heap, weightOut);
    this.#copyOut(mNew, count, heap, mOut);
    this.#copyOut(vNew, count, heap, vOut);
  }

  sumOfSquares(heap: ArrayBufferLike, x: number, count: number): number {
    const [xIn] = this.#layout(count) as [number];
    this.#copyIn(heap, x, count, xIn);
    return this.#exports.sumOfSquares(xIn, count);
  }

  attention(heap: ArrayBufferLike, qkv: number, y: number, lse: number, ...shape: AttentionCall) {
    const [batch, time, heads, headSize] = shape;
    checkAttentionTime('attention', time);
    const rows = batch * time;
    const width = heads * headSize; // C
    const [qkvIn, yOut, lseOut, scratch] = this.#layout(
      rows * 3 * width,
      rows * width,
      batch * heads * time,
      this.#exports.attentionScratch(time, headSize),
    ) as [number, number, number, number];
    this.#copyIn(heap, qkv, rows * 3 * width, qkvIn);
    this.#exports.attention(qkvIn, yOut, lseOut, scratch, ...shape);
    this.#copyOut(yOut, rows * width, heap, y);
    this.#copyOut(lseOut, batch * heads * time, heap, lse);
  }

  attentionGrad(
    heap: ArrayBufferLike,
    dy: number,
    qkv: number,
    y: number,
    lse: number,
    dqkv: number,
    ...shape: AttentionCall
  ) {
    const [batch, time, heads, headSize] = shape;
    checkAttentionTime('attentionGrad', time);
    const rows = batch * time;
    const width = heads * headSize; // C
    const [dyIn, qkvIn, yIn, lseIn, dqkvOut, scratch] = this.#layout(
      rows * width,
      rows * 3 * width,
      rows * width,
      batch * heads * time,
      rows * 3 * width,
      this.#exports.attentionGradScratch(time, headSize),
    ) as [number, number, number, number, number, number];
    this.#copyIn(heap, dy, rows * width, dyIn);
    this.#copyIn(heap, qkv, rows * 3 * width, qkvIn);
    this.#copyIn(heap, y, rows * width, yIn);
    this.#copyIn(heap, lse, batch * heads * time, lseIn);
    this.#exports.attentionGrad(dyIn, qkvIn, yIn, lseIn, dqkvOut, scratch, ...shape);
    this.#copyOut(dqkvOut, rows * 3 * width, heap, dqkv);
  }
}

/**
 * The longest sequence the attention kernels take: their scratch holds one head's (T, T)
 * scores (two in the backward), 2 × 256 MB at this T, in a memory of at most 4 GB.
 */
const ATTENTION_MAX_TIME = 8192;

function checkAttentionTime(kernel: string, time: number): void {
  if (time > ATTENTION_MAX_TIME)
    throw new Error(
      `${kernel}: T ${time} is longer than the WebAssembly kernels take (${ATTENTION_MAX_TIME}: one head's T × T scores in their memory)`,
    );
}

function align(offset: number): number {
  return Math.ceil(offset / 16) * 16;
}
