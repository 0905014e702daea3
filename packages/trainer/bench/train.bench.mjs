// Benchmark: one training step (forward + backward + AdamW, batch sampling included) of the
// `baby` and `seed` presets on every tfjs backend available, in ms/iter and tokens/s, with
// the ratio to a reference figure (PyTorch on the same machine).
// Usage: node bench/train.bench.mjs [--presets=baby,seed] [--backends=wasm,cpu]
//          [--reference-tok-s=baby:6423,seed:2280] [--iters=N] [--native=both|on|off]
// On wasm it runs with @minigpt/native-kernels' matMul ("wasm + native") and, with
// --native=both (the default), also on tfjs's own wasm kernels for comparison.
// The default reference figures are PyTorch 1.13 + OpenBLAS, 2 threads, measured on this
// workplace's machine (shared/design/ANCHORS.md).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { binarize } from '@minigpt/data/node';
import { Random } from '@minigpt/random';
import * as tf from '@tensorflow/tfjs';
import { NODE_CANDIDATES, startTraining } from '@minigpt/trainer/node';

tf.enableProdMode(); // no tfjs console banner in the figures
// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: {
    presets: { type: 'string' },
    'reference-tok-s': { type: 'string' },
    backends: { type: 'string' },
    native: { type: 'string' },
    iters: { type: 'string' },
    all: { type: 'boolean' },
  },
});
const presets = (args.presets ?? 'baby,seed').split(',');
const reference = Object.fromEntries(
  (args['reference-tok-s'] ?? 'baby:6423,seed:2280').split(',').map((pair) => {
    const [preset, value] = pair.split(':');
    return [preset, Number(value)];
  }),
);

// Which backends load here (tfjs-node only where it is installed).
const available = [];
for (const candidate of NODE_CANDIDATES) {
  try {
    // Named backends are measured even where 'auto' would pass them over (a software GPU).
    await candidate.load({ requested: Boolean(args.backends) });
    available.push(candidate.name);
  } catch {
    // not installed
  }
}
const backends = args.backends
  ? args.backends.split(',')
  : available.filter((name) => name !== 'tensorflow-gpu' || available.includes('tensorflow-gpu'));

const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-train-'));
try {
  // A char dataset with vocab 65, like tinyshakespeare's, from random text (speed only).
  const alphabet = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const random = new Random(1);
  writeFileSync(
    join(work, 'input.txt'),
    Array.from({ length: 400_000 }, () => alphabet[random.nextInt(alphabet.length)]).join(''),
  );
  await binarize({ input: join(work, 'input.txt'), outDir: join(work, 'data') });
  console.log(
    `train-step benchmark — ${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} cores, Node ${process.version}`,
  );
  console.log('| preset | backend | ms/iter | tokens/s | vs reference |');
  console.log('| --- | --- | --- | --- | --- |');
  const nativeModes = { both: [true, false], on: [true], off: [false] }[args.native ?? 'both'];
  const runs = backends.flatMap((backend) =>
    backend === 'wasm'
      ? nativeModes.map((native) => ({ backend, native }))
      : [{ backend, native: false }],
  );
  for (const preset of presets) {
    for (const { backend, native } of runs) {
      if (backend === 'cpu' && preset === 'seed' && args.all === undefined) {
        console.log(`| ${preset} | cpu | skipped (minutes per step; --all to run) | | |`);
        continue;
      }
      const iters = Number(args.iters ?? (preset === 'seed' ? 4 : 12));
      const warmup = 2;
      const trainer = await startTraining({
        dataDir: join(work, 'data'),
        outDir: join(work, `out-${preset}-${backend}-${native}`),
        backend,
        nativeKernels: native,
        config: {
          preset,
          maxIters: iters + warmup,
          evalIters: 1,
          evalInterval: 100000,
          checkpointInterval: 100000,
          logInterval: 100000,
        },
      });
      const times = [];
      let tokensPerIter = 0;
      let label = backend;
      for await (const event of trainer.run()) {
        if (event.type === 'start') {
          tokensPerIter = event.config.batchSize * event.config.blockSize;
          if (event.nativeKernels?.installed)
            label = `wasm + native (${event.nativeKernels.threads} threads)`;
          else if (native)
            label = `wasm (native kernels unavailable: ${event.nativeKernels?.reason})`;
          else if (backend === 'wasm') label = 'wasm (tfjs kernels)';
        }
        if (event.type === 'step' && event.iter > warmup) times.push(event.msPerIter);
      }
      trainer.dispose();
      times.sort((a, b) => a - b);
      const ms = times[Math.floor(times.length / 2)];
      const tokS = (tokensPerIter / ms) * 1000;
      const ratio = reference[preset]
        ? `${(tokS / reference[preset]).toFixed(2)}× (${reference[preset]} tok/s)`
        : '—';
      console.log(`| ${preset} | ${label} | ${ms.toFixed(0)} | ${tokS.toFixed(0)} | ${ratio} |`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
