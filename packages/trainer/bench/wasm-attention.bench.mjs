// Benchmark: training on tfjs's wasm backend with @minigpt/wasm-kernels (the kernels a browser
// page trains with, one thread), with and without the set's fused causal self-attention
// (MinigptAttention[Grad]); without, @minigpt/model runs attention as tfjs ops (split,
// reshapes, transposes, batched products on the set's SGEMM, mask, softmax). Same preset, data
// and seed; the two take turns round by round, so that load from other processes falls on
// both alike. Prints each round's median ms/iter, the medians over rounds, the ratio within
// each round (paired), and the passes a batch runs in (rowsThatFit: the fused kernels keep no
// (B, nh, T, T) tensor, so more rows fit a pass), with the machine, its load and the date.
// Usage: node bench/wasm-attention.bench.mjs [--preset=baby] [--rounds=3] [--iters=25]
//          [--data=DIR (a binarized corpus; default: a generated text)]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { binarize } from '@minigpt/data/node';
import { Random } from '@minigpt/random';
import { startTraining } from '@minigpt/trainer/node';
import {
  activeKernelSet,
  createWasmKernelSet,
  installKernelSet,
  uninstallKernelSet,
} from '@minigpt/wasm-kernels';
import { cpuName, utcMinute } from '@minigpt/bench-support';

tf.enableProdMode();
// The native addon hidden (as where it is not built): startTraining then keeps the set this
// bench installs (a set installed first stays), instead of putting the addon in its place.
process.env.MINIGPT_NATIVE = '0';
// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: {
    preset: { type: 'string', default: 'baby' },
    rounds: { type: 'string', default: '3' },
    iters: { type: 'string', default: '25' },
    data: { type: 'string' },
  },
});
const rounds = Number(args.rounds);
const iters = Number(args.iters);
const warmup = 5;
const median = (values) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];

const scratch = mkdtempSync(join(tmpdir(), 'minigpt-wasm-attention-'));
try {
  let dataDir = args.data;
  if (!dataDir) {
    // A generated text of words, enough for any preset's blocks.
    const random = new Random(5);
    const words = ['the', 'sea', 'light', 'keeper', 'storm', 'night', 'ship', 'rock', 'wave'];
    const text = Array.from({ length: 200_000 }, () => words[random.nextInt(words.length)]).join(
      ' ',
    );
    writeFileSync(join(scratch, 'text.txt'), text);
    await binarize({ input: join(scratch, 'text.txt'), outDir: join(scratch, 'data') });
    dataDir = join(scratch, 'data');
  }
  const fused = await createWasmKernelSet();
  // The same set without its optional attention (so hasFusedAttention() is false).
  const withoutAttention = new Proxy(fused, {
    get: (set, name) =>
      name === 'attention' || name === 'attentionGrad'
        ? undefined
        : typeof set[name] === 'function'
          ? set[name].bind(set)
          : set[name],
  });
  await tf.setBackend('wasm');
  const runOnce = async (set, label) => {
    uninstallKernelSet();
    installKernelSet(set);
    const outDir = mkdtempSync(join(scratch, `${label}-`));
    const trainer = await startTraining({
      dataDir,
      outDir,
      backend: 'wasm',
      nativeKernels: true,
      estimate: false,
      config: {
        preset: args.preset,
        maxIters: warmup + iters,
        evalIters: 1,
        evalInterval: 100_000,
        checkpointInterval: 100_000,
        logInterval: 100_000,
      },
    });
    if (activeKernelSet() !== set) throw new Error('the trainer replaced the kernel set');
    const times = [];
    await trainer.train((event) => {
      if (event.type === 'step' && event.iter > warmup) times.push(event.msPerIter);
    });
    const passes = trainer.config.batchSize / trainer.microBatchRows;
    trainer.dispose();
    rmSync(outDir, { recursive: true, force: true });
    return { ms: median(times), passes };
  };
  const results = { fused: [], ops: [] };
  const passes = {};
  const loadBefore = loadavg()[0];
  for (let round = 0; round < rounds; round++) {
    // Alternating order, so neither always runs first.
    const order = round % 2 === 0 ? ['fused', 'ops'] : ['ops', 'fused'];
    const line = {};
    for (const label of order) {
      const { ms, passes: count } = await runOnce(
        label === 'fused' ? fused : withoutAttention,
        label,
      );
      results[label].push(ms);
      passes[label] = count;
      line[label] = ms;
    }
    console.log(
      `round ${round + 1}: fused ${line.fused.toFixed(1)} ms/iter, tfjs ops ${line.ops.toFixed(1)} ms/iter — load ${loadavg()[0].toFixed(1)}`,
    );
  }
  uninstallKernelSet();
  const ratios = results.fused.map((ms, round) => results.ops[round] / ms);
  console.log(
    `\nwasm-kernels attention benchmark — ${utcMinute()}, ${cpuName()}, ${cpus().length} cores, Node ${process.version}, tfjs ${tf.version.tfjs}; 1-minute load ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after`,
  );
  console.log(
    `${args.preset} preset on wasm with @minigpt/wasm-kernels (1 thread); median ms/iter of ${iters} steps after ${warmup}, ${rounds} rounds\n`,
  );
  console.log('| attention | ms/iter, median (min – max) | passes a batch |');
  console.log('| --- | --- | --- |');
  for (const [label, name] of [
    ['ops', 'tfjs ops on the set'],
    ['fused', 'MinigptAttention[Grad]'],
  ])
    console.log(
      `| ${name} | ${median(results[label]).toFixed(1)} (${Math.min(...results[label]).toFixed(1)} – ${Math.max(...results[label]).toFixed(1)}) | ${passes[label]} |`,
    );
  console.log(
    `\nfused's speed-up (tfjs ops' time ÷ fused time), within a round: ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)} – ${Math.max(...ratios).toFixed(2)})×`,
  );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
