// Benchmark: generation with onnxruntime-node while another process keeps one core busy.
// Seed-size model (6 layers, 256 wide, 8 heads, block 128, vocab 65 char; random weights),
// float32 (or --dtype=q8, the int8 graph), batch 1 (or --batch=N short prompts), greedy, decode
// tokens/s (new tokens after each row's first, over the time after the first, summed over
// --repeats generations).
// Sessions on the same export:
//   - default: loadModel's defaults — since 2026-12-02 `intraOpThreads: 'adaptive'`, a pool of
//     a thread per core (as Linux counts cores; onnxruntime's pool elsewhere) and a one-thread
//     session, each decode step on the one measured faster (ThreadChoice);
//   - pool: `intraOpThreads: 'default'`, onnxruntime's intra-op pool alone, a thread per
//     physical core as onnxruntime counts them (on some 2-vCPU hosts 1), whose idle threads
//     spin DEFAULT_SPIN_MICROSECONDS before they sleep (the default until 2026-12-02);
//   - N threads (N = this machine's cores): `intraOpThreads: N`, a pool of every core;
//   - pool, onnxruntime spinning: `spinning: true`, onnxruntime's own spinning, not bounded by
//     time (the default until 2026-11-30);
//   - 1 thread: intraOpThreads 1 — the reference: what one core does alone;
//   - pool, no spinning: `spinning: false`, `session.intra_op.allow_spinning` '0' (idle pool
//     threads sleep at once).
// Each round runs every session quiet, then every session with a busy core (a child
// `node -e 'for(;;){}'` that the bench starts and stops itself), in an order that rotates from
// round to round; the check is the busy-core speed of the default session over the quiet
// 1-thread speed of the same round (goal ≥ 0.8×). With --settle=N (default 2) each session runs
// N untimed generations after each change of load before its timed ones: load does not come
// and go every few hundred steps, and the adaptive default follows a core getting busy at
// once but one getting free only at its next measurement, 128 or more decode steps later
// (runner-node's README, "Threads"). Quiet, it also prints the cores each
// session kept busy (the process's CPU time over wall time). Figures are medians (min–max)
// over rounds.
//   - with --spins=5,10,…: a session per bound, `spinning: N` (idle threads spin N µs).
// Usage: node bench/under-load.bench.mjs [--batch=N] [--dtype=fp32|q8] [--rounds=N] [--warmup=N]
//          [--settle=N] [--repeats=N] [--new-tokens=N] [--spins=N,N,…]
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
    settle: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '2' },
    'new-tokens': { type: 'string', default: '100' },
    batch: { type: 'string', default: '1' },
    dtype: { type: 'string', default: 'fp32' },
    spins: { type: 'string', default: '' },
  },
});

const rounds = Number(args.rounds);
const warmup = Number(args.warmup);
const settle = Number(args.settle);
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

  const pool = { dtype, intraOpThreads: 'default' };
  const cores = cpus().length;
  const sessions = [
    { key: 'default', model: await loadModel(exportDir, { dtype }) },
    { key: 'pool', model: await loadModel(exportDir, pool) },
    {
      key: `${cores} threads`,
      model: await loadModel(exportDir, { dtype, intraOpThreads: cores }),
    },
    {
      key: 'pool, onnxruntime spinning',
      model: await loadModel(exportDir, { ...pool, spinning: true }),
    },
    { key: '1 thread', model: await loadModel(exportDir, { dtype, intraOpThreads: 1 }) },
    { key: 'pool, no spinning', model: await loadModel(exportDir, { ...pool, spinning: false }) },
  ];
  for (const bound of args.spins.split(',').filter(Boolean).map(Number))
    sessions.push({
      key: `spin ${bound} µs`,
      model: await loadModel(exportDir, { ...pool, spinning: bound }),
    });

  console.log(
    `generation under load — ${cpuName()}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node ${ortVersion}, ${new Date().toISOString()}, ${loadAverage()}`,
  );
  console.log(
    `seed-size model, ${dtype === 'q8' ? 'int8 (q8)' : 'fp32'}, batch ${batch}, greedy, ${newTokens} new tokens × ${repeats} generations per figure; decode tokens/s (all rows); default spin bound ${DEFAULT_SPIN_MICROSECONDS} µs; ${rounds} rounds after ${warmup} warm-up rounds; ${settle} untimed generations per session after each change of load`,
  );

  /**
   * Decode tokens/s: the tokens after each row's first, over the time after the first; and the
   * cores the process kept busy over the whole generations (CPU time / wall time).
   */
  const decode = async (model) => {
    let tokens = 0;
    let ms = 0;
    let wallMs = 0;
    const cpuBefore = process.cpuUsage();
    for (let repeat = 0; repeat < repeats; repeat++) {
      const begin = performance.now();
      const generation = model.generateBatch(prompts, { maxNewTokens: newTokens, temperature: 0 });
      await generation.texts();
      for (const row of generation.rows) tokens += row.stats.newTokens - 1;
      const elapsed = performance.now() - begin;
      wallMs += elapsed;
      ms += elapsed - generation.rows[0].stats.firstTokenMs;
    }
    const cpu = process.cpuUsage(cpuBefore);
    return {
      tokensPerSecond: (tokens / ms) * 1000,
      cores: (cpu.user + cpu.system) / 1000 / wallMs,
    };
  };

  // Warm-up: onnxruntime's thread pools and memory arenas settle over the first runs.
  for (let round = 0; round < warmup; round++)
    for (const { model } of sessions) await decode(model);
  const quiet = new Map(sessions.map(({ key }) => [key, []]));
  const quietCores = new Map(sessions.map(({ key }) => [key, []]));
  const busy = new Map(sessions.map(({ key }) => [key, []]));
  // Each adaptive session's steps on one thread, quiet and busy.
  const narrowShare = new Map(
    sessions.map(({ key }) => [key, { quiet: { narrow: 0, all: 0 }, busy: { narrow: 0, all: 0 } }]),
  );
  const timed = async (phase, key, model) => {
    for (let run = 0; run < settle; run++)
      await model.generateBatch(prompts, { maxNewTokens: newTokens, temperature: 0 }).texts();
    const before = model.threadSteps();
    const { tokensPerSecond, cores } = await decode(model);
    if (phase === 'quiet') quietCores.get(key).push(cores);
    if (before) {
      const after = model.threadSteps();
      const share = narrowShare.get(key)[phase];
      share.narrow += after.narrow - before.narrow;
      share.all += after.narrow + after.wide - before.narrow - before.wide;
    }
    (phase === 'quiet' ? quiet : busy).get(key).push(tokensPerSecond);
  };
  for (let round = 0; round < rounds; round++) {
    // A different session first each round: the first run after a change of load differs.
    const order = sessions.map((_, i) => sessions[(i + round) % sessions.length]);
    for (const { key, model } of order) await timed('quiet', key, model);
    await withBusyCore(async () => {
      for (const { key, model } of order) await timed('busy', key, model);
    });
    console.log(
      `  round ${round + 1}: ${sessions.map(({ key }) => `${key} ${quiet.get(key)[round].toFixed(0)} quiet / ${busy.get(key)[round].toFixed(0)} busy`).join(', ')} tok/s — ${loadAverage()}`,
    );
  }
  console.log(
    '| session | quiet tok/s, median (min–max) | cores kept busy, quiet | busy core tok/s | busy / quiet 1 thread (same round) |',
  );
  console.log('| --- | --- | --- | --- | --- |');
  const reference = quiet.get('1 thread');
  const ratios = (key) => busy.get(key).map((value, round) => value / reference[round]);
  for (const { key } of sessions)
    console.log(
      `| ${key} | ${medianRange(quiet.get(key))} | ${medianRange(quietCores.get(key), 2)} | ${medianRange(busy.get(key))} | ${medianRange(ratios(key), 2)}× |`,
    );
  console.log(
    `busy core: ${medianRange(busy.get('default'))} tok/s = ${medianRange(ratios('default'), 2)}× of 1-thread quiet ${medianRange(reference)} tok/s (goal ≥ 0.8×)`,
  );
  // The measured choice against a pool of every core, round by round.
  const paired = (phase, a, b) =>
    medianRange(
      phase.get(a).map((value, round) => value / phase.get(b)[round]),
      2,
    );
  console.log(
    `default / ${cores} threads, same round: quiet ${paired(quiet, 'default', `${cores} threads`)}×, busy core ${paired(busy, 'default', `${cores} threads`)}×`,
  );
  const percent = ({ narrow, all }) => `${((100 * narrow) / all).toFixed(0)} %`;
  for (const { key, model } of sessions)
    if (model.intraOpThreads === 'adaptive') {
      const share = narrowShare.get(key);
      console.log(
        `${key}: steps on one thread ${percent(share.quiet)} quiet, ${percent(share.busy)} with a core busy`,
      );
    }
  if (sessions[0].model.intraOpThreads !== 'adaptive')
    console.log(`default: intraOpThreads ${sessions[0].model.intraOpThreads} (not adaptive here)`);
  await Promise.all(sessions.map(({ model }) => model.dispose()));
} finally {
  rmSync(work, { recursive: true, force: true });
}
