// Benchmark: writing and reading a seed-size checkpoint (6 layers, 256 wide, vocab 65:
// 57 MB with the optimizer) through this package — temp folder, fsync of every file,
// rename; and the strict reader with every check — against plain writeFile of the same
// bytes, measured in the same run.
// Usage: node bench/save.bench.mjs [--runs=5]
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkpointName, encodeCheckpoint } from '@minigpt/checkpoint';
import { newRunId, readCheckpointDir, writeCheckpointDir } from '@minigpt/checkpoint/node';
import { GPT_PRESETS } from '@minigpt/model/config';
import { weightShapes } from '@minigpt/model/weights';

const { values: args } = parseArgs({ options: { runs: { type: 'string' } } });
const runs = Number(args.runs ?? 5);
const model = { ...GPT_PRESETS.seed, vocabSize: 65 };
const weights = new Map(
  [...weightShapes(model)].map(([name, shape]) => [
    name,
    { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) },
  ]),
);
const moments = new Map(
  [...weights].map(([name, w]) => [name, { m: w.data.slice(), v: w.data.slice() }]),
);
const files = encodeCheckpoint({
  config: { model, train: { preset: 'seed' } },
  state: {
    iteration: 1,
    bestValLoss: null,
    random: [1, 2, 3, 4],
    backend: 'wasm',
    savedAt: new Date().toISOString(),
    dataSha256: 'ab'.repeat(32),
  },
  tokenizer: {
    type: 'char',
    version: 1,
    vocab: Array.from({ length: 65 }, (_, i) => String.fromCharCode(40 + i)),
  },
  weights,
  optimizer: { step: 1, moments },
});
const megabytes = [...files.values()].reduce((sum, bytes) => sum + bytes.length, 0) / 1e6;

const root = mkdtempSync(join(tmpdir(), 'minigpt-bench-checkpoint-'));
const times = { atomic: [], plain: [], read: [] };
try {
  const runId = newRunId();
  for (let i = 1; i <= runs; i++) {
    let started = performance.now();
    await writeCheckpointDir(join(root, 'atomic'), checkpointName(i), files, runId);
    times.atomic.push(performance.now() - started);
    const plainDir = join(root, 'plain', String(i));
    mkdirSync(plainDir, { recursive: true });
    started = performance.now();
    for (const [file, bytes] of files) await writeFile(join(plainDir, file), bytes);
    times.plain.push(performance.now() - started);
    started = performance.now();
    await readCheckpointDir(join(root, 'atomic', checkpointName(i)), { optimizer: true });
    times.read.push(performance.now() - started);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
const range = (values) => `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)} ms`;
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log(
  `${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model} × ${cpus().length}, Node ${process.version}; seed checkpoint ${megabytes.toFixed(1)} MB, ${runs} runs`,
);
console.log(`| what | time | vs plain writeFile (medians) |`);
console.log(`|---|---|---|`);
console.log(`| plain writeFile of the five files (reference) | ${range(times.plain)} | 1.0× |`);
console.log(
  `| writeCheckpointDir (temp folder, fsync each file, rename) | ${range(times.atomic)} | ${(median(times.atomic) / median(times.plain)).toFixed(1)}× |`,
);
console.log(
  `| readCheckpointDir with the optimizer (every check) | ${range(times.read)} | ${(median(times.read) / median(times.plain)).toFixed(1)}× |`,
);
