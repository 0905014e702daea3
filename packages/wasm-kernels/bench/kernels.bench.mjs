// Benchmark: the matMuls of a `baby` train step (batch 12 × 64 tokens, 4 heads, 128 wide) on
// tfjs's wasm backend, with tfjs's own kernels and with @minigpt/wasm-kernels installed, in
// one process and interleaved round by round. Prints ms per product (median of the rounds),
// GFLOP/s and the ratio, with the machine and the date.
// Usage: node bench/kernels.bench.mjs [--rounds=7] [--reps=10]
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels, uninstallWasmKernels } from '@minigpt/wasm-kernels';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string' }, reps: { type: 'string' } },
});
const rounds = Number(args.rounds ?? 7);
const reps = Number(args.reps ?? 10);
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

const median = (values) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];
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

const results = cases.map(() => ({ tfjs: [], wasm: [] }));
for (let round = 0; round < rounds; round++) {
  uninstallWasmKernels();
  cases.forEach((_, index) => results[index].tfjs.push(time(index)));
  await installWasmKernels();
  cases.forEach((_, index) => results[index].wasm.push(time(index)));
}
console.log(
  `wasm-kernels benchmark — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} cores, Node ${process.version}, tfjs ${tf.version.tfjs}; load average ${loadavg()[0].toFixed(1)}`,
);
console.log(`median of ${rounds} rounds of ${reps} products each\n`);
console.log(
  '| product | tfjs wasm ms | wasm-kernels ms | tfjs GFLOP/s | wasm-kernels GFLOP/s | speed-up |',
);
console.log('| --- | --- | --- | --- | --- | --- |');
cases.forEach((entry, index) => {
  const tfjs = median(results[index].tfjs);
  const wasm = median(results[index].wasm);
  const gflop = flops(entry) / 1e9;
  console.log(
    `| ${entry[0]} | ${tfjs.toFixed(2)} | ${wasm.toFixed(2)} | ${(gflop / (tfjs / 1000)).toFixed(1)} | ${(gflop / (wasm / 1000)).toFixed(1)} | ${(tfjs / wasm).toFixed(1)}× |`,
  );
});
