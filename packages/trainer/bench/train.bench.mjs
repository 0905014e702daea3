// Benchmark: one training step (forward + backward + AdamW, batch sampling included) of the
// `baby` and `seed` presets on every tfjs backend available, in ms/iter and tokens/s, with
// the ratio to a reference figure (PyTorch on the same machine).
// Usage: node bench/train.bench.mjs [--presets=baby,seed] [--backends=wasm,cpu]
//          [--reference-tok-s=baby:6423,seed:2280] [--iters=N] [--native=both|on|off]
//          [--threads=N] [--rounds=N] [--busy-core [--rounds=N]]
// On wasm it runs with @minigpt/native-kernels' matMul ("wasm + native") and, with
// --native=both (the default), also on tfjs's own wasm kernels for comparison. --threads
// sets the native kernels' threads (default: the addon's, one per core).
// --busy-core is the under-load check instead of the table: on wasm + native, rounds of
// (quiet, quiet on 1 thread, one core kept busy by a child `node -e 'for(;;){}'` that the
// bench starts and stops itself), and the busy-core speed as a multiple of the quiet 1-thread
// speed of the same round.
// --rounds=N (without --busy-core) alternates PyTorch and wasm + native N times per preset
// instead of the table: round 1 runs PyTorch at each of its thread settings, later rounds at
// the one that was fastest in round 1, and each round's ratio compares the two runs next to
// each other (on a shared machine the load moves between a PyTorch run and ours, so one
// pair of runs can land ±15 % either way).
// The reference is PyTorch's same step (bench/pytorch_reference.py: same model, AdamW with the
// trainer's β2 0.99, weight decay and clipping; batches drawn outside the timed step) at its
// best of 1 thread, 2 threads, and 1 ATen thread with OpenBLAS on 2 (its default on 2 cores;
// a thread count there sets ATen's and OpenBLAS's threads alike: tooling/bench-support's
// pytorch_threads.py), run by this bench in the same run when /usr/bin/python3 (or
// MINIGPT_PYTHON) has torch, with glibc's mmap and trim thresholds raised as bench:scaling
// does (PyTorch's allocator is otherwise slowed by mapping and unmapping its buffers). Our
// step time includes drawing the batch (0.01–0.2 ms at these shapes). --reference-tok-s
// gives the figures instead, and the table then says they came from the command line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuName, loadAverage, median, withBusyCore } from '@minigpt/bench-support';
import { binarize } from '@minigpt/data/node';
import { Random } from '@minigpt/random';
import { loadNativeAddon } from '@minigpt/native-kernels';
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
    threads: { type: 'string' },
    'busy-core': { type: 'boolean' },
    rounds: { type: 'string' },
    all: { type: 'boolean' },
  },
});
const presets = (args.presets ?? 'baby,seed').split(',');
const referenceGiven = args['reference-tok-s'] !== undefined;
const reference = Object.fromEntries(
  (args['reference-tok-s'] ?? '')
    .split(',')
    .filter(Boolean)
    .map((pair) => {
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

// The native kernels' addon (the same module object the trainer installs), for --threads and
// the 1-thread runs of --busy-core.
const addon = loadNativeAddon().addon;
const defaultThreads = addon?.info().threads;
const threadsOption = args.threads === undefined ? undefined : Number(args.threads);
if (threadsOption !== undefined) {
  if (!addon) throw new Error('--threads: the native kernels are not built here');
  if (!Number.isInteger(threadsOption) || threadsOption < 1)
    throw new Error('--threads takes a positive integer');
}

const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-train-'));

/** One run of `iters` steps after the warm-up steps: the median step's ms and tokens/s. */
async function measure(preset, backend, native, threads) {
  if (addon) addon.setThreads(threads ?? defaultThreads);
  const iters = Number(args.iters ?? (preset === 'seed' ? 4 : 20));
  // A fresh trainer's first baby steps are slower (V8 and the wasm heap warm up: 12 steps after
  // 2 gave a median of 67 ms where 40 gave 49 ms, 2026-11-30): baby warms up for 10.
  const warmup = preset === 'seed' ? 2 : 10;
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
      else if (native) label = `wasm (native kernels unavailable: ${event.nativeKernels?.reason})`;
      else if (backend === 'wasm') label = 'wasm (tfjs kernels)';
    }
    if (event.type === 'step' && event.iter > warmup) times.push(event.msPerIter);
  }
  trainer.dispose();
  rmSync(join(work, `out-${preset}-${backend}-${native}`), { recursive: true, force: true });
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)];
  return { ms, tokS: (tokensPerIter / ms) * 1000, label };
}

const range = (values, digits = 0) => {
  const low = Math.min(...values).toFixed(digits);
  const high = Math.max(...values).toFixed(digits);
  return low === high ? low : `${low}–${high}`;
};

const PYTORCH_SETTINGS = ['1', '2', '1/2'];
const PYTORCH_SETTING_NAMES = { 1: '1 thread', 2: '2 threads', '1/2': '1 thread, OpenBLAS 2' };
/**
 * bench/pytorch_reference.py at the given thread settings: its printed lines, and tokens/s per
 * preset (the best of the settings) and per setting; or the reason it did not run.
 */
function runPyTorch(presetNames, settings) {
  const python = process.env.MINIGPT_PYTHON ?? '/usr/bin/python3';
  const script = fileURLToPath(new URL('pytorch_reference.py', import.meta.url));
  const env = {
    ...process.env,
    MALLOC_MMAP_THRESHOLD_: '1000000000000',
    MALLOC_TRIM_THRESHOLD_: '1000000000000',
  };
  const lines = [];
  const best = {};
  const bySetting = {};
  for (const setting of settings) {
    const run = spawnSync(
      python,
      [script, '--threads', setting, '--presets', presetNames.join(',')],
      { encoding: 'utf8', env },
    );
    if (run.status !== 0)
      return { failed: (run.stderr || String(run.error)).trim().split('\n').pop() };
    for (const line of run.stdout.trim().split('\n')) {
      if (!line.startsWith('--reference-tok-s=')) {
        lines.push(line);
        continue;
      }
      for (const pair of line.slice('--reference-tok-s='.length).split(',')) {
        const [preset, value] = pair.split(':');
        bySetting[preset] = { ...bySetting[preset], [setting]: Number(value) };
        best[preset] = Math.max(best[preset] ?? 0, Number(value));
      }
    }
  }
  return { lines, best, bySetting };
}

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
    `train-step benchmark — ${cpuName()}, ${cpus().length} cores, Node ${process.version}, ${new Date().toISOString()}, ${loadAverage()}`,
  );
  if (args['busy-core']) {
    // The under-load check: wasm + native only (the kernels whose threads are in question).
    if (!addon) throw new Error('--busy-core: the native kernels are not built here');
    const rounds = Number(args.rounds ?? 3);
    const threads = threadsOption ?? defaultThreads;
    for (const preset of presets) {
      const quiet = [];
      const quietOne = [];
      const busy = [];
      console.log(`${preset}, ${rounds} rounds:`);
      for (let round = 0; round < rounds; round++) {
        quiet.push(await measure(preset, 'wasm', true, threads));
        quietOne.push(await measure(preset, 'wasm', true, 1));
        busy.push(await withBusyCore(() => measure(preset, 'wasm', true, threads)));
        console.log(
          `  round ${round + 1}: quiet ${quiet[round].tokS.toFixed(0)}, quiet 1 thread ${quietOne[round].tokS.toFixed(0)}, busy core ${busy[round].tokS.toFixed(0)} tok/s — ${loadAverage()}`,
        );
      }
      const tokS = (runs) => runs.map((run) => run.tokS);
      const ratios = busy.map((run, round) => run.tokS / quietOne[round].tokS);
      console.log(
        `${preset}: quiet ${range(tokS(quiet))} tok/s (${range(quiet.map((run) => run.ms))} ms/iter, ${threads} threads); quiet 1 thread ${range(tokS(quietOne))} tok/s`,
      );
      console.log(
        `busy core: ${range(tokS(busy))} tok/s = ${range(ratios, 2)}× of 1-thread quiet ${range(tokS(quietOne))} tok/s (goal ≥ 0.8×)`,
      );
    }
  } else if (args.rounds !== undefined) {
    // PyTorch and wasm + native alternately, a ratio per round.
    if (referenceGiven) throw new Error('--rounds measures PyTorch itself: drop --reference-tok-s');
    const rounds = Number(args.rounds);
    if (!Number.isInteger(rounds) || rounds < 1)
      throw new Error('--rounds takes a positive integer');
    for (const preset of presets) {
      let settings = PYTORCH_SETTINGS;
      const ratios = [];
      const ours = [];
      const theirs = [];
      console.log(`${preset}, ${rounds} rounds (PyTorch, then wasm + native):`);
      for (let round = 0; round < rounds; round++) {
        const pytorch = runPyTorch([preset], settings);
        if (pytorch.failed) throw new Error(`PyTorch reference not run: ${pytorch.failed}`);
        const perSetting = pytorch.bySetting[preset];
        const [fastest] = Object.entries(perSetting).sort((a, b) => b[1] - a[1])[0];
        settings = [fastest];
        const { ms, tokS } = await measure(preset, 'wasm', true, threadsOption);
        const ratio = tokS / pytorch.best[preset];
        ratios.push(ratio);
        ours.push(ms);
        theirs.push((tokS * ms) / pytorch.best[preset]); // the same tokens per step
        console.log(
          `  round ${round + 1}: PyTorch ${Object.entries(perSetting)
            .map(([setting, value]) => `${value} tok/s (${PYTORCH_SETTING_NAMES[setting]})`)
            .join(
              ', ',
            )}; wasm + native ${tokS.toFixed(0)} tok/s, ${ms.toFixed(0)} ms/iter → ${ratio.toFixed(2)}× — ${loadAverage()}`,
        );
      }
      console.log(
        `${preset}: wasm + native ${range(ours)} ms/iter, PyTorch's best ${range(theirs)} ms/iter; ratio median ${median(ratios).toFixed(2)}× (${range(ratios, 2)}) over ${rounds} rounds`,
      );
    }
  } else {
    let referenceSource = 'given with --reference-tok-s';
    if (!referenceGiven) {
      // PyTorch in this run, the best of its thread settings per preset (one process).
      const pytorch = runPyTorch(presets, [PYTORCH_SETTINGS.join(',')]);
      if (pytorch.failed) {
        console.log(
          `PyTorch reference not run (${pytorch.failed}): no ratios; pass --reference-tok-s`,
        );
      } else {
        for (const line of pytorch.lines) console.log(`PyTorch ${line}`);
        Object.assign(reference, pytorch.best);
        referenceSource =
          'PyTorch in this run, best of 1 thread, 2 threads, and 1 thread with OpenBLAS on 2';
      }
    }
    console.log(`reference: ${referenceSource}; ${loadAverage()}`);
    console.log('| preset | backend | ms/iter | tokens/s | vs reference | peak RSS |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    const nativeModes = { both: [true, false], on: [true], off: [false] }[args.native ?? 'both'];
    const runs = backends.flatMap((backend) =>
      backend === 'wasm'
        ? nativeModes.map((native) => ({ backend, native }))
        : [{ backend, native: false }],
    );
    for (const preset of presets) {
      for (const { backend, native } of runs) {
        if (backend === 'cpu' && preset === 'seed' && args.all === undefined) {
          console.log(`| ${preset} | cpu | skipped (minutes per step; --all to run) | | | |`);
          continue;
        }
        const { ms, tokS, label } = await measure(preset, backend, native, threadsOption);
        const ratio = reference[preset]
          ? `${(tokS / reference[preset]).toFixed(2)}× (${reference[preset]} tok/s)`
          : '—';
        // The process's peak so far (presets run smallest first, so a row's is its own).
        const peak = `${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)} GiB`;
        console.log(
          `| ${preset} | ${label} | ${ms.toFixed(0)} | ${tokS.toFixed(0)} | ${ratio} | ${peak} |`,
        );
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
