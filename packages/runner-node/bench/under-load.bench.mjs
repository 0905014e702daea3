// Benchmark: generation with onnxruntime-node while another process keeps one core busy.
// Seed-size model (6 layers, 256 wide, 8 heads, block 128, vocab 65 char; random weights),
// float32 (or --dtype=q8, the int8 graph), batch 1 (or --batch=N short prompts), greedy, decode
// tokens/s (new tokens after each row's first, over the time after the first, summed over
// --repeats generations).
// Sessions on the same export:
//   - default: loadModel's session options (onnxruntime's intra-op pool, one thread per core,
//     whose idle threads spin DEFAULT_SPIN_MICROSECONDS before they sleep);
//   - onnxruntime spinning: `spinning: true`, onnxruntime's own spinning, not bounded by time
//     (loadModel's default until 2026-11-30);
//   - 1 thread: intraOpThreads 1 — the reference: what one core does alone;
//   - no spinning: `spinning: false`, `session.intra_op.allow_spinning` '0' (idle pool threads
//     sleep at once).
// Each round runs every session quiet, then every session with a busy core (a child
// `node -e 'for(;;){}'` that the bench starts and stops itself), in an order that rotates from
// round to round; the check is the busy-core speed of the default session over the quiet
// 1-thread speed of the same round (goal ≥ 0.8×). Figures are medians (min–max) over rounds.
//   - with --spins=5,10,…: a session per bound, `spinning: N` (idle threads spin N µs).
// Usage: node bench/under-load.bench.mjs [--batch=N] [--dtype=fp32|q8] [--rounds=N] [--warmup=N]
//          [--repeats=N] [--new-tokens=N] [--spins=N,N,…]
// The model is generate.bench.mjs's, exported by it in a child process (the exporter is not
// loaded in the process that measures).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuName, loadAverage, medianRange, withBusyCore } from '@minigpt/bench-support';

// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '5' },
    repeats: { type: 'string', default: '2' },
    'new-tokens': { type: 'string', default: '100' },
    batch: { type: 'string', default: '1' },
    dtype: { type: 'string', default: 'fp32' },
    spins: { type: 'string', default: '' },
  },
});

const rounds = Number(args.rounds);
const warmup = Number(args.warmup);
const repeats = Number(args.repeats);
const batch = Number(args.batch);
const dtype = args.dtype;
if (dtype !== 'fp32' && dtype !== 'q8') throw new Error(`--dtype takes fp32 or q8, not ${dtype}`);
// Short prompts, so that prompt + 100 new tokens stay within block 128 (no re-prefill).
const PROMPTS = [
  'ROMEO:\n',
  'First Citizen:\nBefore we',
  'JULIET:\nO Romeo, Romeo!',
  'To be, or not to be',
  'MENENIUS:\nWhat work',
  'All:\nSpeak, speak.',
  'HAMLET:\n',
  'The quality of mercy',
];
const prompts = Array.from({ length: batch }, (_, row) => PROMPTS[row % PROMPTS.length]);
const newTokens = Number(args['new-tokens']);
const require = createRequire(import.meta.url);
const ortVersion = require('onnxruntime-node/package.json').version;
const { loadModel, DEFAULT_SPIN_MICROSECONDS } = await import('@minigpt/runner-node');

const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-under-load-'));
try {
  const exportDir = join(work, 'seed');
  const child = spawnSync(
    process.execPath,
    // generate.bench.mjs's model: the same seed-size random weights.
    [fileURLToPath(new URL('generate.bench.mjs', import.meta.url)), `--write-export=${exportDir}`],
    { stdio: 'inherit' },
  );
  if (child.status !== 0) throw new Error('building the benchmark model failed');

  const sessions = [
    { key: 'default', model: await loadModel(exportDir, { dtype }) },
    { key: 'onnxruntime spinning', model: await loadModel(exportDir, { dtype, spinning: true }) },
    { key: '1 thread', model: await loadModel(exportDir, { dtype, intraOpThreads: 1 }) },
    { key: 'no spinning', model: await loadModel(exportDir, { dtype, spinning: false }) },
  ];
  for (const bound of args.spins.split(',').filter(Boolean).map(Number))
    sessions.push({
      key: `spin ${bound} µs`,
      model: await loadModel(exportDir, { dtype, spinning: bound }),
    });

  console.log(
    `generation under load — ${cpuName()}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node ${ortVersion}, ${new Date().toISOString()}, ${loadAverage()}`,
  );
  console.log(
    `seed-size model, ${dtype === 'q8' ? 'int8 (q8)' : 'fp32'}, batch ${batch}, greedy, ${newTokens} new tokens × ${repeats} generations per figure; decode tokens/s (all rows); default spin bound ${DEFAULT_SPIN_MICROSECONDS} µs; ${rounds} rounds after ${warmup} warm-up rounds`,
  );

  /** Decode tokens/s: the tokens after each row's first, over the time after the first. */
  const decode = async (model) => {
    let tokens = 0;
    let ms = 0;
    for (let repeat = 0; repeat < repeats; repeat++) {
      const begin = performance.now();
      const generation = model.generateBatch(prompts, { maxNewTokens: newTokens, temperature: 0 });
      await generation.texts();
      for (const row of generation.rows) tokens += row.stats.newTokens - 1;
      ms += performance.now() - begin - generation.rows[0].stats.firstTokenMs;
    }
    return (tokens / ms) * 1000;
  };

  // Warm-up: onnxruntime's thread pools and memory arenas settle over the first runs.
  for (let round = 0; round < warmup; round++)
    for (const { model } of sessions) await decode(model);
  const quiet = new Map(sessions.map(({ key }) => [key, []]));
  const busy = new Map(sessions.map(({ key }) => [key, []]));
  for (let round = 0; round < rounds; round++) {
    // A different session first each round: the first run after a change of load differs.
    const order = sessions.map((_, i) => sessions[(i + round) % sessions.length]);
    for (const { key, model } of order) quiet.get(key).push(await decode(model));
    await withBusyCore(async () => {
      for (const { key, model } of order) busy.get(key).push(await decode(model));
    });
    console.log(
      `  round ${round + 1}: ${sessions.map(({ key }) => `${key} ${quiet.get(key)[round].toFixed(0)} quiet / ${busy.get(key)[round].toFixed(0)} busy`).join(', ')} tok/s — ${loadAverage()}`,
    );
  }
  console.log(
    '| session | quiet tok/s, median (min–max) | busy core tok/s | busy / quiet 1 thread (same round) |',
  );
  console.log('| --- | --- | --- | --- |');
  const reference = quiet.get('1 thread');
  const ratios = (key) => busy.get(key).map((value, round) => value / reference[round]);
  for (const { key } of sessions)
    console.log(
      `| ${key} | ${medianRange(quiet.get(key))} | ${medianRange(busy.get(key))} | ${medianRange(ratios(key), 2)}× |`,
    );
  console.log(
    `busy core: ${medianRange(busy.get('default'))} tok/s = ${medianRange(ratios('default'), 2)}× of 1-thread quiet ${medianRange(reference)} tok/s (goal ≥ 0.8×)`,
  );
  await Promise.all(sessions.map(({ model }) => model.dispose()));
} finally {
  rmSync(work, { recursive: true, force: true });
}
