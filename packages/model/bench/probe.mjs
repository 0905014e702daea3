import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { GPT, resolveGPTConfig } from '@minigpt/model';
import { Random } from '@minigpt/random';
const backend = process.argv[2] ?? 'wasm';
await tf.setBackend(backend);
await tf.ready();
const preset = process.argv[3] ?? 'baby';
const B = preset === 'baby' ? 12 : 64;
const config = resolveGPTConfig({ vocabSize: 65 }, preset);
const model = GPT.create(config);
const T = config.blockSize;
const random = new Random(1);
const opt = tf.train.adam(1e-3);
const mk = () => {
  const x = new Int32Array(B * T);
  for (let i = 0; i < x.length; i++) x[i] = random.nextInt(65);
  return x;
};
const times = [];
for (let it = 0; it < 8; it++) {
  const x = tf.tensor2d(mk(), [B, T], 'int32');
  const y = tf.tensor2d(mk(), [B, T], 'int32');
  const t0 = performance.now();
  const loss = opt.minimize(
    () => model.loss(x, y, { training: true, random }),
    true,
    model.trainableVariables,
  );
  const l = loss.dataSync()[0];
  times.push(performance.now() - t0);
  loss.dispose();
  x.dispose();
  y.dispose();
  console.log(it, l.toFixed(4), times.at(-1).toFixed(0), 'ms', tf.memory().numTensors);
}
const ms = times.slice(2).sort((a, b) => a - b)[3];
console.log(
  `${backend} ${preset}: ${ms.toFixed(0)} ms/iter, ${(((B * T) / ms) * 1000).toFixed(0)} tok/s`,
);
if (process.argv[4] === 'profile') {
  const x = tf.tensor2d(mk(), [B, T], 'int32');
  const y = tf.tensor2d(mk(), [B, T], 'int32');
  const prof = await tf.profile(() => {
    const l = opt.minimize(
      () => model.loss(x, y, { training: true, random }),
      true,
      model.trainableVariables,
    );
    return l;
  });
  const byKernel = {};
  for (const k of prof.kernels) {
    byKernel[k.name] = (byKernel[k.name] ?? 0) + k.kernelTimeMs;
  }
  console.log(
    Object.entries(byKernel)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join('\n'),
  );
}
