// Fine-tuning GPT-2 (124M) on this machine: seconds per iteration at block 256, batch 1 and
// 4, and peak memory, as `minigpt train --init-from <gpt2 dir>` runs it (default backend:
// wasm with the native kernels in Node), beside PyTorch's same train step (same shapes, tanh
// GELU, biases, tied head, AdamW) at its best of 1 thread, 2 threads, and 1 thread with OpenBLAS on 2
// (tooling/bench-support's pytorch_threads.py), in the same run.
//
//   pnpm --filter @minigpt/trainer bench:finetune [-- --batches=1,4 --iters=3]
//
// Nothing is downloaded: the model is GPT-2's shape with random weights, written in the
// Hugging Face layout (timing does not depend on the values), the tokenizer is GPT-2's,
// rebuilt from the ranks js-tiktoken ships, and the text is ../shared/data/tinyshakespeare.txt.
// Each configuration runs in its own process, so its peak RSS is its own.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuName, utcMinute } from '@minigpt/bench-support';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '1,4' },
    iters: { type: 'string', default: '3' },
    child: { type: 'string' },
    'no-reference': { type: 'boolean', default: false },
  },
});
const BLOCK = 256;
const GPT2 = {
  vocabSize: 50257,
  blockSize: 1024,
  nLayer: 12,
  nHead: 12,
  nEmbd: 768,
  dropout: 0,
  bias: true,
  activation: 'gelu_tanh',
};

if (args.child) {
  // One configuration: `--child=<work dir>:<batch>`; prints a JSON line.
  const [work, batchText] = args.child.split(':');
  const batch = Number(batchText);
  const iters = Number(args.iters);
  const { startTraining } = await import('@minigpt/trainer/node');
  const trainer = await startTraining({
    dataDir: join(work, 'data'),
    outDir: join(work, `run-b${batch}`),
    initFrom: join(work, 'gpt2'),
    estimate: false,
    config: {
      blockSize: BLOCK,
      batchSize: batch,
      maxIters: iters + 1,
      evalInterval: iters + 1,
      evalIters: 1,
      logInterval: 1,
      checkpointInterval: iters + 1,
      learningRate: 3e-5,
      minLr: 3e-5,
      decayLr: false,
      warmupIters: 0,
    },
  });
  const steps = [];
  let start;
  let lastStepAt;
  await trainer.train((event) => {
    if (event.type === 'start') start = event;
    if (event.type === 'step') {
      const now = performance.now();
      // The first step warms up (kernels, allocations): the others are timed.
      if (event.iter > 1) steps.push((now - lastStepAt) / 1000);
      lastStepAt = now;
    }
  });
  trainer.dispose();
  process.stdout.write(
    `${JSON.stringify({
      batch,
      steps,
      backend: start.backend,
      kernels: start.nativeKernels?.kind ?? 'tfjs',
      microBatchRows: start.microBatchRows,
      parameters: start.parameters,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    })}\n`,
  );
  process.exit(0);
}

const text = join(repo, '..', 'shared', 'data', 'tinyshakespeare.txt');
if (!existsSync(text)) {
  console.error(`${text} is missing: this bench reads the shared tinyshakespeare text`);
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), 'minigpt-finetune-bench-'));
try {
  // GPT-2's shape, random weights, in the Hugging Face layout; GPT-2's tokenizer.json.
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  const { GPT } = await import('@minigpt/model');
  const { gpt2DirectoryFiles } = await import('@minigpt/model/huggingface');
  const { gpt2Files } = await import('@minigpt/gpt2-reference');
  mkdirSync(join(work, 'gpt2'));
  const model = GPT.create(GPT2, { log: null });
  for (const [name, bytes] of gpt2DirectoryFiles(GPT2, await model.weightData()))
    writeFileSync(join(work, 'gpt2', name), bytes);
  model.dispose();
  writeFileSync(join(work, 'gpt2', 'tokenizer.json'), JSON.stringify(gpt2Files().tokenizerJson));
  const { binarize, readTokenizerFiles } = await import('@minigpt/data/node');
  const { tokenizer } = await readTokenizerFiles(join(work, 'gpt2'));
  await binarize({ input: text, outDir: join(work, 'data'), tokenizer });

  const results = [];
  for (const batch of args.batches.split(',').map(Number)) {
    const child = spawnSync(
      process.execPath,
      [fileURLToPath(import.meta.url), `--child=${work}:${batch}`, `--iters=${args.iters}`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
    );
    if (child.status !== 0) throw new Error(`batch ${batch}: the training process failed`);
    results.push(JSON.parse(child.stdout.trim().split('\n').at(-1)));
  }

  // PyTorch, same shapes and optimizer, best of its thread settings (a fresh process each).
  const reference = new Map();
  if (!args['no-reference']) {
    for (const threads of ['1', '2', '1/2']) {
      let out;
      try {
        out = execFileSync(
          '/usr/bin/python3',
          [
            join(here, 'pytorch_reference.py'),
            `--threads=${threads}`,
            `--presets=${results.map((r) => `gpt2-b${r.batch}`).join(',')}`,
            `--iters=${args.iters}`,
          ],
          { encoding: 'utf8' },
        );
      } catch (error) {
        console.error(
          `PyTorch reference not run (${error.message.split('\n')[0]}); --no-reference skips it`,
        );
        process.exit(1);
      }
      for (const match of out.matchAll(
        /^gpt2-b(\d+): ([\d.]+) ms\/iter.*\(PyTorch [^,]+, (.+)\), peak RSS (\d+) MB/gm,
      )) {
        const [_, batch, ms, label, rss] = match;
        const seconds = Number(ms) / 1000;
        const best = reference.get(Number(batch));
        if (!best || seconds < best.seconds)
          reference.set(Number(batch), { seconds, threads: label, rssMb: Number(rss) });
      }
    }
  }

  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const first = results[0];
  console.log(
    `\nGPT-2 fine-tune — ${utcMinute()}, ${cpuName()}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `gpt2 shape (12 layers, 12 heads, 768 wide, vocab 50,257; ${(first.parameters / 1e6).toFixed(1)}M parameters with 256 positions), block ${BLOCK}, tanh GELU, AdamW; ${first.backend} with ${first.kernels} kernels; median of ${args.iters} iterations after one`,
  );
  console.log(
    '\n| batch | s/iter (median) | range | tokens/s | passes × rows | peak RSS | PyTorch s/iter (threads) | PyTorch peak RSS | minigpt / PyTorch speed |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const s = median(r.steps);
    const ref = reference.get(r.batch);
    console.log(
      `| ${r.batch} | ${s.toFixed(2)} | ${Math.min(...r.steps).toFixed(2)}–${Math.max(...r.steps).toFixed(2)} | ${((r.batch * BLOCK) / s).toFixed(0)} | ${r.batch / r.microBatchRows} × ${r.microBatchRows} | ${(r.maxRssBytes / 2 ** 30).toFixed(2)} GiB | ${ref ? `${ref.seconds.toFixed(2)} (${ref.threads})` : '–'} | ${ref ? `${(ref.rssMb / 1024).toFixed(2)} GiB` : '–'} | ${ref ? `${(ref.seconds / s).toFixed(2)}×` : '–'} |`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
