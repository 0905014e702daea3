// Benchmark: generation with onnxruntime-node on CPU, seed-size model (6 layers, 256 wide,
// vocab 65, block 128; random weights — speed does not depend on them), batch 1, 500 new
// tokens: tokens/s and time to first token, median of 5 runs. Target (issue #4): ≥ 2,000
// tokens/s on the 2-core machine. Usage: node bench/generate.bench.mjs [--threads=N]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { exportModel } from '@minigpt/export-onnx';
import { GPT, resolveGPTConfig } from '@minigpt/model';
import { loadModel } from '@minigpt/runner-node';
import { CharTokenizer } from '@minigpt/tokenizer';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
tf.enableProdMode();
await tf.setBackend('cpu');
const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-generate-'));
try {
  const tokenizer = CharTokenizer.fromText(
    "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
  );
  const config = resolveGPTConfig({ vocabSize: tokenizer.vocabSize }, 'seed');
  const model = GPT.create(config, { log: null });
  const { onnx, manifest } = exportModel(config, await model.weightData(), 'char');
  writeFileSync(join(work, 'model.onnx'), onnx);
  writeFileSync(join(work, 'minigpt.json'), JSON.stringify(manifest));
  writeFileSync(join(work, 'vocab.json'), JSON.stringify(tokenizer.toJSON()));
  const threads = args.threads ? Number(args.threads) : undefined;
  const loaded = await loadModel(work, threads ? { intraOpThreads: threads } : {});
  console.log(
    `generate benchmark — ${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node, ${threads ?? 1} thread(s)`,
  );
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  for (const [label, options] of [
    ['default refill (blockSize/2)', {}],
    ['exact sliding window (refill = blockSize)', { refill: config.blockSize }],
  ]) {
    const rates = [];
    const firsts = [];
    await loaded.generate('\n', { maxNewTokens: 50, seed: 0, ...options }).text(); // warm-up
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
