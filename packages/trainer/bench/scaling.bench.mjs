// Benchmark: how training and generation scale with the model's shape, beside PyTorch at the
// same shapes, in one run. From a base shape (the `baby` preset: 4 layers, 128 wide, block 64),
// three sweeps double one dimension over 4 points each — n_layer 2→16, n_embd 64→512, block
// 64→512 — with the head size fixed (n_head = n_embd / 32). The base is in every sweep and is
// measured once: 10 shapes. For each shape:
//   - ours, training: the default Node trainer as `minigpt train` runs it (startTraining on the
//     wasm backend with @minigpt/native-kernels), ms per step at a fixed batch, in a child
//     process that keeps one trainer per shape across rounds;
//   - PyTorch, training: the same step in bench/pytorch_reference.py (same model, AdamW and
//     clipping; --n-layer … flags) at 1 thread, 2 threads, and 1 with OpenBLAS on 2
//     (tooling/bench-support's pytorch_threads.py), a fresh process each round; its best;
//   - ours, generation: an export of the shape (random weights, written by a child process
//     with writeExport) run by @minigpt/runner-node (onnxruntime-node), greedy, batch 1;
//   - PyTorch, generation: greedy with a KV cache on the same export
//     (runner-node's bench/pytorch_generate.py) at the same settings; its best.
// Each round runs the four of them back to back, so load from other processes falls on all
// alike; a figure is the median over rounds (each round's own median step) with the range, and
// each ratio is taken within a round before its median and range.
// Batch sampling: our trainer draws the batch inside its timed step, PyTorch's script outside;
// the train child times our sampleBatch at the same shape and that median is subtracted.
// PyTorch's processes run with glibc's mmap and trim thresholds raised (MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_), so that the blocks it frees stay in its heap: with the defaults, its
// large activations (block 512: (B, nh, T, T) attention, 50 MB) are mapped and unmapped every
// step and page faults take most of the step (block 512 on the project's machine, 2026-11-30:
// 8.4 s a step instead of 0.8 s; our trainer, whose tensors live in the wasm heap, took the same
// either way). --pytorch-default-malloc measures PyTorch with glibc's defaults.
// Usage: node bench/scaling.bench.mjs [--iters=N] [--rounds=N] [--new-tokens=N] [--batch=N]
//          [--sweeps=layers,width,block] [--quick] [--no-pytorch] [--pytorch-default-malloc]
// --iters is the steps a round at the base shape; costlier shapes get fewer (at least 3).
// The report (markdown) goes to stdout at the end; progress lines go to stderr.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuName, utcMinute } from '@minigpt/bench-support';

// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: {
    child: { type: 'string' },
    shape: { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string' },
    iters: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    batch: { type: 'string' },
    'new-tokens': { type: 'string' },
    sweeps: { type: 'string', default: 'layers,width,block' },
    quick: { type: 'boolean', default: false },
    'no-pytorch': { type: 'boolean', default: false },
    'pytorch-default-malloc': { type: 'boolean', default: false },
  },
});

const self = fileURLToPath(import.meta.url);
// runner-node and export-onnx are not this package's dependencies: they are reached from
// runner-node's own directory, as runner-node itself resolves them.
const runnerNodeDir = fileURLToPath(new URL('../../runner-node/', import.meta.url));
const runnerRequire = createRequire(join(runnerNodeDir, 'package.json'));
const PYTORCH_TRAIN = fileURLToPath(new URL('pytorch_reference.py', import.meta.url));
const PYTORCH_GENERATE = join(runnerNodeDir, 'bench/pytorch_generate.py');
// A char vocabulary of 65, like tinyshakespeare's (the data and the exports use it).
const VOCAB = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PROMPT = 'ROMEO:\n';
/** Lines from a child process that carry a result start with this. */
const RESULT = '@@scaling ';

/** "L4-H4-C128-T64" ↔ { nLayer, nHead, nEmbd, blockSize }. */
const shapeKey = (s) => `L${s.nLayer}-H${s.nHead}-C${s.nEmbd}-T${s.blockSize}`;
function parseShape(key) {
  const match = /^L(\d+)-H(\d+)-C(\d+)-T(\d+)$/.exec(key ?? '');
  if (!match) throw new Error(`--shape: expected L<layers>-H<heads>-C<width>-T<block>, got ${key}`);
  const [nLayer, nHead, nEmbd, blockSize] = match.slice(1).map(Number);
  return { nLayer, nHead, nEmbd, blockSize };
}

if (args.child === 'train') await trainChild();
else if (args.child !== undefined) throw new Error(`unknown --child=${args.child}`);
else await main();

/**
 * Child: one trainer at `--shape`, `--warmup` steps, then a round of `--iters` steps for each
 * line read on stdin; each round's step times go to stdout.
 */
async function trainChild() {
  const send = (message) => process.stdout.write(RESULT + JSON.stringify(message) + '\n');
  const tf = await import('@tensorflow/tfjs');
  tf.enableProdMode(); // no tfjs console banner
  const { startTraining } = await import('@minigpt/trainer/node');
  const { openPreparedData } = await import('@minigpt/data/node');
  const { Random } = await import('@minigpt/random');
  const shape = parseShape(args.shape);
  const batch = Number(args.batch);
  const iters = Number(args.iters);
  const rounds = Number(args.rounds);
  const warmup = Number(args.warmup);

  // What our step spends drawing its batch (PyTorch's script draws outside its timer): the
  // same call on the same data at the same (B, T), timed apart.
  const data = await openPreparedData(args.data);
  const random = new Random(3);
  const samplingMs = [];
  for (let i = 0; i < 40; i++) {
    const begin = performance.now();
    data.train.sampleBatch(random, batch, shape.blockSize);
    if (i >= 10) samplingMs.push(performance.now() - begin); // the first calls compile it
  }
  data.train.close();
  data.val.close();

  const trainer = await startTraining({
    dataDir: args.data,
    outDir: args.out,
    backend: 'wasm',
    config: {
      preset: 'baby',
      ...shape,
      batchSize: batch,
      maxIters: warmup + rounds * iters,
      evalIters: 1,
      evalInterval: 1_000_000,
      checkpointInterval: 1_000_000,
      logInterval: 1_000_000,
    },
  });
  const events = trainer.run();
  let start;
  const nextStepMs = async () => {
    for (;;) {
      const { value, done } = await events.next();
      if (done) throw new Error('the training run ended before its last round');
      if (value.type === 'start') start = value;
      if (value.type === 'step') return value.msPerIter;
    }
  };
  for (let i = 0; i < warmup; i++) await nextStepMs(); // the start event comes first
  const native = start.nativeKernels;
  send({
    type: 'ready',
    backend: native?.installed
      ? `wasm + ${native.kind ?? 'native'} kernels (${native.threads} threads)`
      : `wasm (${native?.reason ?? 'no native kernels'})`,
    microBatchRows: start.microBatchRows,
    samplingMs: median(samplingMs),
  });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'round') continue;
    const times = [];
    for (let i = 0; i < iters; i++) times.push(await nextStepMs());
    send({ type: 'round', times });
  }
  // The parent closed stdin: its rounds are done (the run's end is not needed).
  trainer.dispose();
  process.exit(0);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** A trainer child: `ready()` once it has warmed up, then `round()` as often as asked. */
function startTrainChild(childArgs) {
  const child = spawn(process.execPath, [self, '--child=train', ...childArgs], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting = [];
  const received = [];
  let failure;
  const settle = () => {
    while (waiting.length && (received.length || failure)) {
      const { resolve, reject } = waiting.shift();
      if (received.length) resolve(received.shift());
      else reject(failure);
    }
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith(RESULT)) received.push(JSON.parse(line.slice(RESULT.length)));
    else process.stderr.write(line + '\n'); // not ours: keep stdout for the report
    settle();
  });
  child.on('exit', (code, signal) => {
    failure = new Error(`the training process (${childArgs.join(' ')}) exited: ${signal ?? code}`);
    settle();
  });
  const next = () =>
    new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      settle();
    });
  return {
    ready: next,
    round: () => {
      child.stdin.write('round\n');
      return next();
    },
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) resolve();
        else child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}

async function main() {
  const python = process.env.MINIGPT_PYTHON ?? '/usr/bin/python3';
  const withPytorch = !args['no-pytorch'];
  const pytorchMalloc = args['pytorch-default-malloc']
    ? {}
    : {
        MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? String(1e12),
        MALLOC_TRIM_THRESHOLD_: process.env.MALLOC_TRIM_THRESHOLD_ ?? String(1e12),
      };
  const pytorchEnv = { ...process.env, ...pytorchMalloc };
  let torchVersion;
  if (withPytorch) {
    const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], {
      encoding: 'utf8',
    });
    if (probe.status !== 0) {
      const why =
        (probe.stderr ?? '').trim().split('\n').pop() || String(probe.error ?? probe.status);
      console.error(
        `bench:scaling: ${python} cannot import torch (${why}); install python3-torch, set MINIGPT_PYTHON to a Python that has it, or pass --no-pytorch`,
      );
      process.exit(1);
    }
    torchVersion = probe.stdout.trim();
  }

  const { resolveGPTConfig, countParameters } = await import('@minigpt/model/config');
  const quick = args.quick;
  const rounds = Number(args.rounds ?? (quick ? 1 : 5));
  const baseIters = Number(args.iters ?? (quick ? 2 : 10));
  const warmup = quick ? 1 : 2;
  const newTokens = Number(args['new-tokens'] ?? (quick ? 8 : 50));
  const base = resolveGPTConfig({ vocabSize: VOCAB.length }, 'baby');
  const batch = Number(args.batch ?? 12); // the `baby` preset's batch
  const headSize = base.nEmbd / base.nHead;
  for (const [name, value] of Object.entries({ rounds, iters: baseIters, batch, newTokens })) {
    if (!Number.isInteger(value) || value < 1) {
      console.error(`bench:scaling: --${name} takes a positive integer`);
      process.exit(1);
    }
  }

  // The sweeps: one dimension doubled over 4 points, the others at the base's.
  const at = (overrides) => {
    const shape = {
      nLayer: base.nLayer,
      nEmbd: base.nEmbd,
      blockSize: base.blockSize,
      ...overrides,
    };
    return { ...shape, nHead: shape.nEmbd / headSize };
  };
  const SWEEPS = {
    layers: {
      title: `n_layer (width ${base.nEmbd}, block ${base.blockSize})`,
      shapes: [0.5, 1, 2, 4].map((f) => at({ nLayer: base.nLayer * f })),
      label: (s) => `**${s.nLayer} layers**`,
    },
    width: {
      title: `n_embd (${base.nLayer} layers, block ${base.blockSize}; n_head = n_embd / ${headSize})`,
      shapes: [0.5, 1, 2, 4].map((f) => at({ nEmbd: base.nEmbd * f })),
      label: (s) => `**${s.nEmbd} wide** (${s.nHead} heads)`,
    },
    block: {
      title: `block size (${base.nLayer} layers, width ${base.nEmbd})`,
      shapes: [1, 2, 4, 8].map((f) => at({ blockSize: base.blockSize * f })),
      label: (s) => `**block ${s.blockSize}**`,
    },
  };
  const sweeps = args.sweeps.split(',');
  for (const name of sweeps) {
    if (!(name in SWEEPS)) {
      console.error(`bench:scaling: unknown sweep "${name}"; sweeps: ${Object.keys(SWEEPS)}`);
      process.exit(1);
    }
  }
  const shapes = [
    ...new Map(sweeps.flatMap((n) => SWEEPS[n].shapes).map((s) => [shapeKey(s), s])).values(),
  ];
  const smallestBlock = Math.min(...shapes.map((s) => s.blockSize));
  if (PROMPT.length + newTokens > smallestBlock) {
    console.error(
      `bench:scaling: --new-tokens is at most ${smallestBlock - PROMPT.length} (block ${smallestBlock} − a prompt of ${PROMPT.length})`,
    );
    process.exit(1);
  }

  // Steps a round: --iters at the base shape, fewer for a costlier step (at least 3; --quick: 2).
  // Cost ≈ tokens × (matMul FLOPs per token + attention's, which grows with the block).
  const stepCost = (s) =>
    batch *
    s.blockSize *
    (6 * (12 * s.nLayer * s.nEmbd ** 2 + VOCAB.length * s.nEmbd) +
      12 * s.nLayer * s.blockSize * s.nEmbd);
  const itersFor = (s) =>
    Math.min(
      baseIters,
      Math.max(Math.min(3, baseIters), Math.round((baseIters * 4 * stepCost(base)) / stepCost(s))),
    );

  const ortVersion = runnerRequire('onnxruntime-node/package.json').version;
  const tfjsVersion = createRequire(import.meta.url)('@tensorflow/tfjs/package.json').version;
  const { loadModel } = await import(join(runnerNodeDir, 'dist/index.js'));
  const { binarize } = await import('@minigpt/data/node');
  const { Random } = await import('@minigpt/random');

  const started = new Date();
  const loadAtStart = loadavg();
  const load = () =>
    loadavg()
      .map((x) => x.toFixed(1))
      .join(' ');
  const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-scaling-'));
  const results = new Map();
  let trainBackend;
  let samplingMax = 0;
  try {
    // Random text over the vocabulary (speed does not depend on it).
    const random = new Random(1);
    writeFileSync(
      join(work, 'input.txt'),
      Array.from({ length: 400_000 }, () => VOCAB[random.nextInt(VOCAB.length)]).join(''),
    );
    await binarize({ input: join(work, 'input.txt'), outDir: join(work, 'data') });

    for (const [index, shape] of shapes.entries()) {
      const key = shapeKey(shape);
      const iters = itersFor(shape);
      const tag = `[${index + 1}/${shapes.length} ${key}]`;
      console.error(`${tag} ${iters} steps × ${rounds} rounds; exporting — load ${load()}`);
      const exportDir = join(work, `export-${key}`);
      mkdirSync(exportDir);
      const exported = spawnSync(
        process.execPath,
        // runner-node's generate bench writes the export (random weights of std 0.4, so greedy
        // tokens vary and comparing ours with PyTorch's says something; model.safetensors
        // for PyTorch), here at this shape from the baby preset.
        [
          join(runnerNodeDir, 'bench/generate.bench.mjs'),
          `--write-export=${exportDir}`,
          '--preset=baby',
          `--config=${JSON.stringify(parseShape(key))}`,
        ],
        { stdio: 'inherit' },
      );
      if (exported.status !== 0) throw new Error(`${key}: writing the export failed`);
      const model = await loadModel(exportDir);
      const promptIds = [...model.tokenizer.encode(PROMPT)];
      const generateOurs = async () => {
        const begin = performance.now();
        const generation = model.generate(PROMPT, { maxNewTokens: newTokens, temperature: 0 });
        await generation.text();
        const seconds = (performance.now() - begin) / 1000;
        return { tokensPerSec: generation.stats.newTokens / seconds, ids: generation.stats.tokens };
      };
      await generateOurs(); // onnxruntime's first run allocates its arenas

      const trainer = startTrainChild([
        `--shape=${key}`,
        `--data=${join(work, 'data')}`,
        `--out=${join(work, `run-${key}`)}`,
        `--batch=${batch}`,
        `--iters=${iters}`,
        `--rounds=${rounds}`,
        `--warmup=${warmup}`,
      ]);
      const ready = await trainer.ready();
      trainBackend = ready.backend;
      samplingMax = Math.max(samplingMax, ready.samplingMs);
      const result = {
        shape,
        iters,
        parameters: countParameters({ ...base, ...shape }),
        microBatchRows: ready.microBatchRows,
        ours: [],
        pytorch: {},
        oursGen: [],
        pytorchGen: {},
        sameIds: [],
      };
      for (let round = 0; round < rounds; round++) {
        const { times } = await trainer.round();
        result.ours.push(median(times.map((ms) => ms - ready.samplingMs)));
        let pytorchNote = '';
        if (withPytorch) {
          const reference = spawnSync(
            python,
            [
              PYTORCH_TRAIN,
              '--threads=1,2,1/2',
              `--iters=${iters}`,
              `--n-layer=${shape.nLayer}`,
              `--n-head=${shape.nHead}`,
              `--n-embd=${shape.nEmbd}`,
              `--block-size=${shape.blockSize}`,
              `--batch-size=${batch}`,
              `--vocab-size=${VOCAB.length}`,
            ],
            { encoding: 'utf8', env: pytorchEnv },
          );
          if (reference.status !== 0)
            throw new Error(`${key}: pytorch_reference.py failed:\n${reference.stderr}`);
          for (const [, ms, threads] of reference.stdout.matchAll(
            /^custom: ([\d.]+) ms\/iter.*\(PyTorch [^,]+, (.+)\), peak RSS/gm,
          ))
            (result.pytorch[threads] ??= []).push(Number(ms));
          pytorchNote = `, PyTorch ${Object.entries(result.pytorch)
            .map(([threads, values]) => `${values.at(-1).toFixed(0)} ms (${threads})`)
            .join(' ')}`;
        }
        const ours = await generateOurs();
        result.oursGen.push(ours.tokensPerSec);
        let generateNote = '';
        if (withPytorch) {
          const reference = spawnSync(
            python,
            [
              PYTORCH_GENERATE,
              exportDir,
              JSON.stringify(promptIds),
              String(newTokens),
              '1',
              '1',
              '1,2,1/2',
            ],
            { encoding: 'utf8', env: pytorchEnv },
          );
          if (reference.status !== 0)
            throw new Error(`${key}: pytorch_generate.py failed:\n${reference.stderr}`);
          const out = JSON.parse(reference.stdout);
          for (const [threads, values] of Object.entries(out.tokensPerSec))
            (result.pytorchGen[threads] ??= []).push(...values);
          result.sameIds.push(
            out.ids.length === ours.ids.length && out.ids.every((id, i) => id === ours.ids[i]),
          );
          generateNote = `, PyTorch ${Object.entries(out.tokensPerSec)
            .map(([threads, values]) => `${values[0].toFixed(0)} (${threads})`)
            .join(' ')}`;
        }
        console.error(
          `${tag} round ${round + 1}/${rounds}: train ${result.ours.at(-1).toFixed(1)} ms${pytorchNote}; generate ${ours.tokensPerSec.toFixed(0)} tok/s${generateNote} — load ${load()}`,
        );
      }
      await trainer.close();
      await model.dispose();
      rmSync(join(work, `run-${key}`), { recursive: true, force: true });
      results.set(key, result);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  // The report.
  /** Thousands separated; one decimal below 100 (a ms figure of a small shape). */
  const format = (value, digits) =>
    value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const summary = (values, digits = median(values) < 100 ? 1 : 0) => {
    const low = format(Math.min(...values), digits);
    const high = format(Math.max(...values), digits);
    return `${format(median(values), digits)} (${low === high ? low : `${low}–${high}`})`;
  };
  const count = (n) => n.toLocaleString('en-US');
  /** The thread count whose median is best, by `better(a, b)` on medians. */
  const bestOf = (byThreads, better) =>
    Object.entries(byThreads).reduce(
      (best, entry) =>
        best === undefined || better(median(entry[1]), median(best[1])) ? entry : best,
      undefined,
    );
  const plural = (n, noun) => `${n} ${noun}${Number(n) === 1 ? '' : 's'}`;
  const machine = `${cpuName()}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
  const lines = [
    `# Scaling benchmark — ${utcMinute(started)}, ${machine}`,
    '',
    `Node ${process.version}; training: @tensorflow/tfjs ${tfjsVersion}, ${trainBackend}; generation: onnxruntime-node ${ortVersion} (runner-node, fp32, its default intra-op threads: one per core)${withPytorch ? `; PyTorch ${torchVersion} (${python}), best of 1 thread, 2 threads, and 1 thread with OpenBLAS on 2` : '; PyTorch not run (--no-pytorch)'}.`,
    `Load average at the start ${loadAtStart.map((x) => x.toFixed(1)).join(' ')}, at the end ${load()} (${cpus().length} cores: above ${cpus().length}, other work was running).`,
    '',
    `Base: the \`baby\` preset (${base.nLayer} layers, ${base.nEmbd} wide, ${base.nHead} heads, block ${base.blockSize}); every shape keeps the head size at ${headSize} (n_head = n_embd / ${headSize}); vocab ${VOCAB.length} (char), no biases, no dropout, exact GELU, random tokens and weights.`,
    `Training: batch ${batch}, one step = forward + backward + clipping + AdamW, ms per step; ${plural(rounds, 'round')} of N steps (column "steps") after ${plural(warmup, 'warm-up step')}; a figure is the median over rounds of each round's median step (range: min–max over rounds). Our batch sampling, timed apart (≤ ${samplingMax.toFixed(3)} ms), is subtracted: PyTorch's script draws its batch outside its timer.${withPytorch ? ' PyTorch: a fresh process each round, 2 warm-up steps at each thread setting.' : ''}`,
    `Generation: greedy, batch 1, the prompt ${JSON.stringify(PROMPT)} (${PROMPT.length} tokens) then ${newTokens} new tokens, timed from the call to the last token (prefill included)${withPytorch ? '; PyTorch with a KV cache on the same export (model.safetensors), 1 warm-up generation a round' : ''}.`,
  ];
  if (withPytorch) {
    lines.push(
      `Ratios are taken within each round (PyTorch's at its best thread count), then median (min–max); above 1, ours is faster.`,
    );
  }
  const settings = Object.entries(pytorchMalloc).map(([name, value]) => `${name}=${value}`);
  if (withPytorch && settings.length) {
    lines.push(
      `PyTorch's processes run with ${settings.join(' ')}: glibc then keeps the blocks PyTorch frees in its heap, where with its defaults it maps and unmaps the large activations every step and page faults take most of a long-block step (--pytorch-default-malloc measures that).`,
    );
  } else if (withPytorch) {
    lines.push(
      "PyTorch's processes run with glibc's default malloc thresholds (--pytorch-default-malloc): its large activations are mapped and unmapped every step.",
    );
  }
  for (const name of sweeps) {
    const sweep = SWEEPS[name];
    lines.push('', `## ${sweep.title}`, '');
    lines.push(
      '| shape | params | steps | ours ms/step | ours tokens/s | PyTorch ms/step, best threads | PyTorch ms / ours | ours gen tokens/s | PyTorch gen tokens/s, best threads | ours / PyTorch gen |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    const differ = [];
    for (const shape of sweep.shapes) {
      const r = results.get(shapeKey(shape));
      const tokensPerStep = batch * shape.blockSize;
      const passes = batch / r.microBatchRows;
      const cells = [
        sweep.label(shape),
        `${(r.parameters / 1e6).toFixed(2)} M`,
        `${r.iters} × ${rounds}${passes > 1 ? ` (${passes} passes of ${r.microBatchRows} rows)` : ''}`,
        summary(r.ours),
        count(Math.round((tokensPerStep / median(r.ours)) * 1000)),
      ];
      const trainBest = bestOf(r.pytorch, (a, b) => a < b);
      const genBest = bestOf(r.pytorchGen, (a, b) => a > b);
      if (trainBest) {
        const [threads, values] = trainBest;
        cells.push(
          `${summary(values)} at ${threads}`,
          `${summary(
            values.map((ms, round) => ms / r.ours[round]),
            2,
          )}×`,
        );
      } else cells.push('—', '—');
      cells.push(summary(r.oursGen, 0));
      if (genBest) {
        const [threads, values] = genBest;
        cells.push(
          `${summary(values, 0)} at ${threads}`,
          `${summary(
            r.oursGen.map((rate, round) => rate / values[round]),
            2,
          )}×`,
        );
      } else cells.push('—', '—');
      lines.push(`| ${cells.join(' | ')} |`);
      if (r.sameIds.some((same) => !same)) differ.push(shapeKey(shape));
    }
    if (withPytorch) {
      lines.push(
        '',
        differ.length
          ? `Greedy tokens: ours and PyTorch's differ at ${differ.join(', ')} (near-ties in float32 can flip a pick).`
          : `Greedy tokens: ours and PyTorch's identical at every shape of this sweep.`,
      );
    }
  }
  console.log(lines.join('\n'));
}
