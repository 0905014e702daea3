// Benchmark: generation with onnxruntime-node on CPU, seed-size model (6 layers, 256 wide,
// vocab 65, block 128; random weights — speed does not depend on them), batch 1, 500 new
// tokens: tokens/s and time to first token, median of 5 runs after 2 warm-up runs. Target
// (issue #4): ≥ 2,000 tokens/s on the 2-core machine.
// Usage: node bench/generate.bench.mjs [--threads=N]
// The model is built and exported in a child process, so TensorFlow.js is not loaded in the
// process that measures (as in an app that only runs exported models).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: { 'write-export': { type: 'string' }, threads: { type: 'string' } },
});

if (args['write-export']) {
  const tf = await import('@tensorflow/tfjs');
  const { exportModel } = await import('@minigpt/export-onnx');
  const { GPT, resolveGPTConfig } = await import('@minigpt/model');
  const { CharTokenizer } = await import('@minigpt/tokenizer');
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const dir = args['write-export'];
  const tokenizer = CharTokenizer.fromText(
    "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
  );
  const config = resolveGPTConfig({ vocabSize: tokenizer.vocabSize }, 'seed');
  const model = GPT.create(config, { log: null });
  const { onnx, manifest } = exportModel(config, await model.weightData(), 'char');
  writeFileSync(join(dir, 'model.onnx'), onnx);
  writeFileSync(join(dir, 'minigpt.json'), JSON.stringify(manifest));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(tokenizer.toJSON()));
  process.exit(0);
}

const { loadModel } = await import('@minigpt/runner-node');
const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-generate-'));
try {
  const child = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), `--write-export=${work}`],
    { stdio: 'inherit' },
  );
  if (child.status !== 0) throw new Error('building the benchmark model failed');
  const threads = args.threads ? Number(args.threads) : undefined;
  const loaded = await loadModel(work, threads ? { intraOpThreads: threads } : {});
  console.log(
    `generate benchmark — ${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node, ${threads ?? 'default'} intra-op threads`,
  );
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  for (const [label, options] of [
    ['default refill (blockSize/2)', {}],
    ['exact sliding window (refill = blockSize)', { refill: 128 }],
  ]) {
    // Warm-up: onnxruntime's thread pool and memory arena settle over the first runs.
    for (let i = 0; i < 2; i++)
      await loaded.generate('\n', { maxNewTokens: 500, seed: 99, ...options }).text();
    const rates = [];
    const firsts = [];
    for (let run = 0; run < 5; run++) {
      const generation = loaded.generate('\n', {
        maxNewTokens: 500,
        seed: run,
        temperature: 1,
        ...options,
      });
      await generation.text();
      rates.push(generation.stats.tokensPerSec);
      firsts.push(generation.stats.firstTokenMs);
    }
    const rate = median(rates);
    console.log(
      `${label}: ${rate.toFixed(0)} tokens/s, first token ${median(firsts).toFixed(1)} ms  [target ≥ 2,000 tokens/s: ${rate >= 2000 ? 'met' : 'MISSED'}]`,
    );
  }
  await loaded.dispose();
} finally {
  rmSync(work, { recursive: true, force: true });
}
