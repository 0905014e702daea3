// Quality benchmark (issue #3): the `baby` preset for 2000 iterations on tinyshakespeare
// with nanoGPT's CPU settings (lr 1e-3, warmup 100, min lr 1e-4, batch 12, block 64);
// target val loss ≤ 1.95. Takes ~10 minutes on 2 cores (wasm). Usage:
//   node bench/quality.bench.mjs [--backend=wasm] [--maxIters=2000]
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { binarize } from '@minigpt/data/node';
import * as tf from '@tensorflow/tfjs';
import { startTraining } from '@minigpt/trainer/node';
import { cpuName, utcMinute } from '@minigpt/bench-support';

tf.enableProdMode(); // no tfjs console banner in the figures
// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: { backend: { type: 'string' }, maxIters: { type: 'string' }, keep: { type: 'boolean' } },
});
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const source =
  process.env.MINIGPT_BENCH_TEXT ?? join(repoRoot, '..', 'shared', 'data', 'tinyshakespeare.txt');
if (!existsSync(source))
  throw new Error(`benchmark text not found: ${source} (set MINIGPT_BENCH_TEXT)`);
const work = mkdtempSync(join(tmpdir(), 'minigpt-quality-'));
const keep = args.keep !== undefined;
try {
  await binarize({ input: source, outDir: join(work, 'data') });
  const maxIters = Number(args.maxIters ?? 2000);
  const trainer = await startTraining({
    dataDir: join(work, 'data'),
    outDir: join(work, 'out'),
    backend: args.backend ?? 'auto',
    config: {
      preset: 'baby',
      maxIters,
      evalInterval: 250,
      evalIters: 20,
      logInterval: 100,
      checkpointInterval: maxIters,
    },
  });
  let last;
  const tokS = [];
  for await (const event of trainer.run()) {
    if (event.type === 'start')
      console.log(
        // The date and the machine, so that a figure quoted from this run can say when and where.
        `quality benchmark — ${utcMinute()}, ${cpuName()}, ${cpus().length} cores, Node ${process.version}, backend ${event.backend}, ${event.parameters} params`,
      );
    if (event.type === 'step') tokS.push(event.tokensPerSec);
    if (event.type === 'eval') {
      last = event;
      console.log(
        `iter ${event.iter}: train ${event.trainLoss.toFixed(4)}, val ${event.valLoss.toFixed(4)}`,
      );
    }
    if (event.type === 'done') {
      tokS.sort((a, b) => a - b);
      console.log(
        `done in ${(event.seconds / 60).toFixed(1)} min, median ${tokS[Math.floor(tokS.length / 2)].toFixed(0)} tok/s`,
      );
    }
  }
  console.log(
    `final val loss ${last.valLoss.toFixed(4)} [target ≤ 1.95: ${last.valLoss <= 1.95 ? 'met' : 'MISSED'}]`,
  );
  if (keep) console.log(`kept ${work}`);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
