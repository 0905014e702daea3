// Benchmark: the matMuls of a `baby` train step (batch 12 × 64 tokens, 4 heads, 128 wide) on
// tfjs's wasm backend, with tfjs's own kernels and with @minigpt/wasm-kernels installed, in
// one process and interleaved round by round. Prints ms per product (median and range over the
// rounds), GFLOP/s (of the medians) and the ratio (taken within each round, then its median and
// range), with the machine, the date and the load. Then one layer's causal
// self-attention, forward and backward from c_attn's (B·T, 3C) output: as @minigpt/model runs
// it with tfjs ops (split, reshapes, transposes, products, mask, softmax) on tfjs's kernels
// and on these, and as it runs it where the set has the fused MinigptAttention kernels.
// Usage: node bench/kernels.bench.mjs [--rounds=7] [--reps=10]
import { cpuName, loadAverage, median, medianRange, utcMinute } from '@minigpt/bench-support';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { causalAttention, fusedCausalAttention, hasFusedAttention } from '@minigpt/model';
import { installWasmKernels, uninstallWasmKernels } from '@minigpt/wasm-kernels';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string' }, reps: { type: 'string' } },
});
const rounds = Number(args.rounds ?? 7);
const reps = Number(args.reps ?? 10);
const started = new Date();
const loadAtStart = loadAverage();
tf.enableProdMode();
await tf.setBackend('wasm');

// [label, a shape, b shape, transposeA, transposeB]
const cases = [
  ['attention q·kᵀ (12·4 × 64×32·32×64)', [12, 4, 64, 32], [12, 4, 64, 32], false, true],
  ['attention p·v (12·4 × 64×64·64×32)', [12, 4, 64, 64], [12, 4, 64, 32], false, false],
  ['attention pᵀ·dy (backward)', [12, 4, 64, 64], [12, 4, 64, 32], true, false],
  ['MLP up, forward (768×128·128×512)', [768, 128], [128, 512], false, false],
  ['MLP up, dW (768×128ᵀ·768×512)', [768, 128], [768, 512], true, false],
  ['MLP up, dX (768×512·128×512ᵀ)', [768, 512], [128, 512], false, true],
];

const flops = ([, a, b, transposeA]) => {
  const batch = a.slice(0, -2).reduce((x, y) => x * y, 1);
  const m = transposeA ? a.at(-1) : a.at(-2);
  const k = transposeA ? a.at(-2) : a.at(-1);
  const n = b.at(-1) === k ? b.at(-2) : b.at(-1);
  return 2 * batch * m * n * k;
};
const operands = cases.map(([, a, b]) => [tf.randomNormal(a), tf.randomNormal(b)]);
const time = (index) => {
  const [, , , transposeA, transposeB] = cases[index];
  const [a, b] = operands[index];
  tf.tidy(() => tf.matMul(a, b, transposeA, transposeB)); // warm-up (and V8's tier-up)
  const start = performance.now();
  for (let rep = 0; rep < reps; rep++) tf.tidy(() => tf.matMul(a, b, transposeA, transposeB));
  return (performance.now() - start) / reps;
};

// One `baby` layer's attention: qkv (12·64, 3·128) → y (12·64, 128), and the gradient of
// Σ y·dy with respect to qkv.
const [batch, blockSize, heads, width] = [12, 64, 4, 128];
const qkv = tf.randomNormal([batch * blockSize, 3 * width]);
const dy = tf.randomNormal([batch * blockSize, width]);
const opsAttention = (x) => {
  const heads4 = (part) =>
    tf.transpose(tf.reshape(part, [batch, blockSize, heads, width / heads]), [0, 2, 1, 3]);
  const [q, k, v] = tf.split(x, 3, 1).map(heads4); // (B, nh, T, hs) each
  const y = causalAttention(q, k, v); // (B, nh, T, hs)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [batch * blockSize, width]);
};
const fusedAttention = (x) => fusedCausalAttention(x, batch, heads);
const timeAttention = (attend) => {
  // Read back, so the work is done; not returned (tidy would walk the typed array's entries).
  const step = () =>
    tf.tidy(() => {
      tf.grad((x) => tf.sum(tf.mul(attend(x), dy)))(qkv).dataSync();
    });
  step(); // warm-up
  const start = performance.now();
  for (let rep = 0; rep < reps; rep++) step();
  return (performance.now() - start) / reps;
};
const attention = { tfjs: [], ops: [], fused: [] };

const results = cases.map(() => ({ tfjs: [], wasm: [] }));
for (let round = 0; round < rounds; round++) {
  uninstallWasmKernels();
  cases.forEach((_, index) => results[index].tfjs.push(time(index)));
  attention.tfjs.push(timeAttention(opsAttention));
  await installWasmKernels();
  if (!hasFusedAttention()) throw new Error('the kernel set did not register MinigptAttention');
  cases.forEach((_, index) => results[index].wasm.push(time(index)));
  attention.ops.push(timeAttention(opsAttention));
  attention.fused.push(timeAttention(fusedAttention));
}
// Ratios within a round (paired), so load that falls on one round falls on both sides.
const ratios = (slower, faster) => slower.map((value, round) => value / faster[round]);
console.log(
  `wasm-kernels benchmark — ${utcMinute(started)}, ${cpuName()}, ${cpus().length} cores, Node ${process.version}, tfjs ${tf.version.tfjs}; ${loadAtStart}`,
);
console.log(
  `${rounds} rounds of ${reps} products each: median (min – max) over the rounds; GFLOP/s of the medians; speed-ups within a round\n`,
);
console.log(
  '| product | tfjs wasm ms | wasm-kernels ms | tfjs GFLOP/s | wasm-kernels GFLOP/s | speed-up |',
);
console.log('| --- | --- | --- | --- | --- | --- |');
cases.forEach((entry, index) => {
  const { tfjs, wasm } = results[index];
  const gflop = flops(entry) / 1e9;
  console.log(
    `| ${entry[0]} | ${medianRange(tfjs, 2)} | ${medianRange(wasm, 2)} | ${(gflop / (median(tfjs) / 1000)).toFixed(1)} | ${(gflop / (median(wasm) / 1000)).toFixed(1)} | ${medianRange(ratios(tfjs, wasm), 1)}× |`,
  );
});
console.log(
  `\none layer's causal self-attention, forward + backward (B ${batch}, T ${blockSize}, ${heads} heads of ${width / heads}), ms:\n`,
);
console.log(
  '| tfjs ops, tfjs kernels | tfjs ops, these kernels | MinigptAttention[Grad] | ops time ÷ fused time, within a round |',
);
console.log('| --- | --- | --- | --- |');
console.log(
  `| ${medianRange(attention.tfjs, 2)} | ${medianRange(attention.ops, 2)} | ${medianRange(attention.fused, 2)} | ${medianRange(ratios(attention.ops, attention.fused), 1)}× |`,
);
console.log(`\nat the end: ${loadAverage()}`);
