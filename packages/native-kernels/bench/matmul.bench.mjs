// Benchmark: the matMuls of a `seed` train pass (32 rows × 128 tokens, C 256), tfjs's wasm
// kernel against the native one, in GFLOP/s (median and range of 5 after a warm-up); then the
// native fused attention forward and backward of that pass (tfjs has no such kernel). The header
// names the machine, the date and the load: the machines are shared and the figures move.
import { cpuName, loadAverage, medianRange, utcMinute } from '@minigpt/bench-support';
import { cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installNativeKernels, uninstallNativeKernels } from '@minigpt/native-kernels';

const started = new Date();
const loadAtStart = loadAverage();
tf.enableProdMode();
await tf.setBackend('wasm');
const shapes = [
  // [label, a shape, b shape, transposeA, transposeB]
  ['x·W_fc (4096 × 1024 × 256)', [4096, 256], [256, 1024], false, false],
  ['dy·W_fcᵀ (4096 × 256 × 1024)', [4096, 1024], [256, 1024], false, true],
  ['xᵀ·dy, weight grad (256 × 1024 × 4096)', [4096, 256], [4096, 1024], true, false],
  ['q·kᵀ, 256 heads (128 × 128 × 32)', [256, 128, 32], [256, 128, 32], false, true],
  ['p·v, 256 heads (128 × 32 × 128)', [256, 128, 128], [256, 128, 32], false, false],
];
function gflops(aShape, bShape, ta, tb) {
  const a = tf.randomNormal(aShape);
  const b = tf.randomNormal(bShape);
  const run = () => {
    // (Not tf.tidy(() => ….dataSync()): tidy walks a returned typed array element by element.)
    const product = tf.matMul(a, b, ta, tb);
    product.dataSync();
    product.dispose();
  };
  run();
  const times = [];
  for (let r = 0; r < 5; r++) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  const m = ta ? aShape.at(-1) : aShape.at(-2);
  const k = ta ? aShape.at(-2) : aShape.at(-1);
  const n = tb ? bShape.at(-2) : bShape.at(-1);
  const batch = aShape.length > 2 ? aShape[0] : 1;
  tf.dispose([a, b]);
  return times.map((ms) => (2 * batch * m * n * k) / ms / 1e6);
}
/**
 * The fused attention kernels (MinigptAttention and its backward, native only) on a `seed`
 * layer's c_attn output: 32 rows × 128 tokens, 8 heads of 32. GFLOP/s counts the products of
 * the causal half: forward q·kᵀ and p·v; backward q·kᵀ again, dy·vᵀ, ds·k, dsᵀ·q and pᵀ·dy.
 */
function attentionGflops() {
  const [batch, time, heads, headSize] = [32, 128, 8, 32];
  const width = heads * headSize;
  const qkv = tf.randomNormal([batch * time, 3 * width]);
  const dy = tf.randomNormal([batch * time, width]);
  const attrs = { batch, heads };
  const forward = () => tf.engine().runKernel('MinigptAttention', { qkv }, attrs);
  const timeOf = (run) => {
    tf.dispose(run());
    const times = [];
    for (let r = 0; r < 5; r++) {
      const start = performance.now();
      const out = run();
      times.push(performance.now() - start);
      tf.dispose(out);
    }
    return times;
  };
  const [y, lse] = forward();
  const backward = () => tf.engine().runKernel('MinigptAttentionGrad', { dy, qkv, y, lse }, attrs);
  const causalProduct = 2 * batch * heads * ((time * (time + 1)) / 2) * headSize;
  const forwardTimes = timeOf(forward);
  const backwardTimes = timeOf(backward);
  tf.dispose([qkv, dy, y, lse]);
  return {
    forward: forwardTimes.map((ms) => (2 * causalProduct) / ms / 1e6),
    backward: backwardTimes.map((ms) => (5 * causalProduct) / ms / 1e6),
  };
}

const rows = shapes.map(([label, a, b, ta, tb]) => ({ label, tfjs: gflops(a, b, ta, tb) }));
const native = installNativeKernels();
if (!native.installed) throw new Error(native.reason);
for (const [index, [, a, b, ta, tb]] of shapes.entries()) rows[index].native = gflops(a, b, ta, tb);
const attention = attentionGflops();
uninstallNativeKernels();
const gflopsRange = (values) => `${medianRange(values, 1)} GFLOP/s`;
console.log(
  `matMul benchmark — ${utcMinute(started)}, ${cpuName()}, ${cpus().length} cores, Node ${process.version}, tfjs ${tf.version.tfjs}, native: ${native.threads} threads, ${native.vectorLanes}-float SIMD; ${loadAtStart}`,
);
console.log('median (min – max) of 5 after a warm-up, output read back included\n');
console.log('| product | tfjs wasm kernel | native |');
console.log('| --- | --- | --- |');
for (const row of rows)
  console.log(`| ${row.label} | ${gflopsRange(row.tfjs)} | ${gflopsRange(row.native)} |`);
console.log(
  `| fused attention forward, 32 × 128 tokens, 8 heads of 32 (causal half) | – | ${gflopsRange(attention.forward)} |`,
);
console.log(`| fused attention backward, the same | – | ${gflopsRange(attention.backward)} |`);
console.log(`\nat the end: ${loadAverage()}`);
