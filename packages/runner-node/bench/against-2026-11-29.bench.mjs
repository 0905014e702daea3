// Benchmark for issue 15 item 3: generation's tokens/s now against the graph and runner of
// 2026-11-29, the day the issue measured "today's" generation, in the same run — so the ratio
// needs no figure from another day.
//   - The baseline is this repository at BASELINE_COMMIT (7771d02, the last commit before the
//     issue's measurements: format-2 export, batched graph with the int8 file, runner-node
//     fetching each step's cache rows). It is rebuilt from the repository's own history:
//     `git archive` into a folder outside the work tree (kept between runs: --baseline-dir),
//     `pnpm install` from that commit's lockfile (no install scripts: neither side needs the
//     native training kernels or a GPU build), and a build of export-onnx and runner-node with
//     what they depend on.
//   - Both sides export the same random seed-size weights, each with its own exporter
//     (generate.bench's --write-export: Random(7), std 0.4); the current side also writes the
//     fused graph (export option `fused`). Before anything is timed, the two float32 graphs
//     of each side must give the same 100 greedy tokens, so the two sides run the same model.
//     (int8 tokens may differ: the weights' quantization changed since, 7-bit weights.)
//   - Each side runs in a child process of its own (two versions of @minigpt/runtime cannot
//     share one module graph). The parent asks one child at a time for one measurement:
//     configurations are interleaved within a round, and ratios are taken within a round.
// The measure is the issue's: batch 1, 100 new tokens, greedy, prompt 'ROMEO:\n' (7 tokens, so
// the run is nearly all decode steps), total new tokens over time.
// Usage: node bench/against-2026-11-29.bench.mjs [--rounds=N] [--warmup=N] [--runs=N]
//          [--baseline-dir=DIR]
import {
  cpuName,
  loadAverage,
  medianRange,
  ratioAgainstGoal,
  utcMinute,
} from '@minigpt/bench-support';
import { execFileSync, fork, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const BASELINE_COMMIT = '7771d0248c73474c58cc669ba3b6bb6b372d167d';
const PROMPT = 'ROMEO:\n';
const NEW_TOKENS = 100;

const { values: args } = parseArgs({
  options: {
    serve: { type: 'string' },
    rounds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '2' },
    runs: { type: 'string', default: '5' },
    'baseline-dir': { type: 'string', default: join(tmpdir(), 'minigpt-bench-baseline-7771d02') },
  },
});

if (args.serve) {
  // Child: load the given exports with the runner-node at `--serve` (a dist/index.js), then
  // answer { key, runs } with one measurement: `runs` generations back to back.
  const { loadModel } = await import(pathToFileURL(args.serve).href);
  const models = new Map();
  process.on('message', async (message) => {
    if (message.type === 'load') {
      for (const { key, dir, dtype } of message.models) {
        models.set(key, await loadModel(dir, { dtype }));
      }
      process.send({ type: 'loaded' });
      return;
    }
    const model = models.get(message.key);
    let newTokens = 0;
    let tokens = [];
    const begin = performance.now();
    for (let run = 0; run < message.runs; run++) {
      const generation = model.generateBatch([PROMPT], {
        maxNewTokens: NEW_TOKENS,
        temperature: 0,
      });
      await generation.texts();
      newTokens += generation.rows[0].stats.newTokens;
      tokens = [...generation.rows[0].stats.tokens];
    }
    const seconds = (performance.now() - begin) / 1000;
    process.send({ type: 'measured', tokensPerSec: newTokens / seconds, tokens });
  });
  process.send({ type: 'ready' });
} else {
  await main();
}

async function main() {
  const here = dirname(fileURLToPath(import.meta.url));
  const repoRoot = execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: here })
    .toString()
    .trim();
  const baselineRoot = args['baseline-dir'];
  buildBaseline(repoRoot, baselineRoot);

  const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-against-baseline-'));
  const children = [];
  try {
    const dirs = {
      baseline: join(work, 'baseline'),
      standard: join(work, 'standard'),
      fused: join(work, 'fused'),
    };
    const writers = [
      [join(baselineRoot, 'packages/runner-node/bench/generate.bench.mjs'), dirs.baseline, []],
      [join(here, 'generate.bench.mjs'), dirs.standard, []],
      [join(here, 'generate.bench.mjs'), dirs.fused, ['--fused']],
    ];
    for (const [script, dir, extra] of writers) {
      mkdirSync(dir);
      const child = spawnSync(process.execPath, [script, `--write-export=${dir}`, ...extra], {
        cwd: dirname(dirname(script)),
        stdio: 'inherit',
      });
      if (child.status !== 0) throw new Error(`writing the export ${dir} failed`);
    }

    const serve = async (runnerIndex, models) => {
      const child = fork(fileURLToPath(import.meta.url), [`--serve=${runnerIndex}`], {
        cwd: dirname(dirname(runnerIndex)),
        stdio: 'inherit',
      });
      children.push(child);
      const replies = [];
      const waiters = [];
      child.on('message', (message) => {
        const waiter = waiters.shift();
        if (waiter) waiter(message);
        else replies.push(message);
      });
      // A child that dies (its error is on stderr) answers every wait, now or later, with 'exit'.
      let exited;
      child.on('exit', (code) => {
        exited = { type: 'exit', code };
        for (const waiter of waiters.splice(0)) waiter(exited);
      });
      const next = () =>
        new Promise((resolve) => {
          const reply = replies.shift() ?? exited;
          if (reply) resolve(reply);
          else waiters.push(resolve);
        });
      const expect = async (type) => {
        const reply = await next();
        if (reply.type !== type) {
          throw new Error(`bench child ${runnerIndex}: expected '${type}', got '${reply.type}'`);
        }
        return reply;
      };
      await expect('ready');
      child.send({ type: 'load', models });
      await expect('loaded');
      return async (key, runs) => {
        child.send({ type: 'measure', key, runs });
        return expect('measured');
      };
    };
    const baselineSide = await serve(join(baselineRoot, 'packages/runner-node/dist/index.js'), [
      { key: 'fp32', dir: dirs.baseline, dtype: 'fp32' },
      { key: 'q8', dir: dirs.baseline, dtype: 'q8' },
    ]);
    const currentSide = await serve(join(here, '..', 'dist', 'index.js'), [
      { key: 'standard fp32', dir: dirs.standard, dtype: 'fp32' },
      { key: 'standard q8', dir: dirs.standard, dtype: 'q8' },
      { key: 'fused fp32', dir: dirs.fused, dtype: 'fp32' },
      { key: 'fused q8', dir: dirs.fused, dtype: 'q8' },
    ]);

    const configurations = [
      { key: 'baseline fp32', label: '2026-11-29 (7771d02), fp32', side: baselineSide, as: 'fp32' },
      { key: 'baseline q8', label: '2026-11-29 (7771d02), int8', side: baselineSide, as: 'q8' },
      { key: 'standard fp32', label: 'now, standard graph, fp32', side: currentSide },
      { key: 'standard q8', label: 'now, standard graph, int8', side: currentSide },
      { key: 'fused fp32', label: 'now, fused graph, fp32', side: currentSide },
      { key: 'fused q8', label: 'now, fused graph, int8', side: currentSide },
    ];
    const measure = (c, runs) => c.side(c.as ?? c.key, runs);

    // The two sides must run the same model: the float32 graphs' greedy tokens agree.
    const reference = (await measure(configurations[0], 1)).tokens;
    for (const key of ['standard fp32', 'fused fp32']) {
      const { tokens } = await measure(
        configurations.find((c) => c.key === key),
        1,
      );
      const same = tokens.length === reference.length && tokens.every((t, i) => t === reference[i]);
      if (!same) {
        throw new Error(
          `${key} does not give the baseline's greedy tokens (${tokens.slice(0, 12)} … against ${reference.slice(0, 12)} …): the two sides do not run the same model`,
        );
      }
    }

    const rounds = Number(args.rounds);
    const warmup = Number(args.warmup);
    const runs = Number(args.runs);
    const started = new Date();
    console.log(
      `against 2026-11-29 — ${utcMinute(started)}, ${cpuName()}, ${cpus().length} cores, Node ${process.version}; ${loadAverage()}`,
    );
    console.log(
      `seed-size model (6 layers, 256 wide, 8 heads, block 128, vocab 65, random weights), batch 1, ${NEW_TOKENS} new tokens greedy; ${rounds} rounds of ${runs} generations per configuration after ${warmup} warm-up rounds, interleaved; float32 greedy tokens of both sides checked equal (${reference.length} tokens)`,
    );
    for (let round = 0; round < warmup; round++) {
      for (const c of configurations) await measure(c, runs);
    }
    const rates = new Map(configurations.map((c) => [c.key, []]));
    for (let round = 0; round < rounds; round++) {
      // Rotate the order each round, so no configuration always runs right after another.
      for (let i = 0; i < configurations.length; i++) {
        const c = configurations[(i + round) % configurations.length];
        rates.get(c.key).push((await measure(c, runs)).tokensPerSec);
      }
    }
    const finished = new Date();

    console.log('');
    console.log('| configuration, batch 1 | tokens/s, median (min – max) |');
    console.log('| ---------------------- | ---------------------------- |');
    for (const c of configurations)
      console.log(`| ${c.label} | ${medianRange(rates.get(c.key))} |`);
    const ratio = (over, under) => rates.get(over).map((rate, i) => rate / rates.get(under)[i]);
    const bestFp32 = rates
      .get('standard fp32')
      .map((rate, i) => Math.max(rate, rates.get('fused fp32')[i]) / rates.get('baseline fp32')[i]);
    console.log('');
    console.log('Ratios within a round, median (min – max):');
    console.log(
      `  now standard / 2026-11-29, fp32: ${medianRange(ratio('standard fp32', 'baseline fp32'), 2)}×`,
    );
    console.log(
      `  now fused / 2026-11-29, fp32: ${medianRange(ratio('fused fp32', 'baseline fp32'), 2)}×`,
    );
    console.log(
      `  now, the faster graph of the round / 2026-11-29, fp32: ${ratioAgainstGoal(bestFp32, 2)}`,
    );
    console.log(
      `  now standard / 2026-11-29, int8: ${medianRange(ratio('standard q8', 'baseline q8'), 2)}×`,
    );
    console.log(
      `  now fused / 2026-11-29, int8: ${medianRange(ratio('fused q8', 'baseline q8'), 2)}×`,
    );
    console.log(
      `  now standard int8 / 2026-11-29 fp32 (the default export then): ${medianRange(ratio('standard q8', 'baseline fp32'), 2)}×`,
    );
    console.log(
      `finished ${finished.toISOString().slice(11, 16)} UTC (${((finished - started) / 60000).toFixed(1)} min); ${loadAverage()}`,
    );
  } finally {
    for (const child of children) child.kill();
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The baseline's packages, built once into `root` (a marker file says the build finished, so
 * an interrupted build is redone rather than used).
 */
function buildBaseline(repoRoot, root) {
  const marker = join(root, '.minigpt-baseline-built');
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === BASELINE_COMMIT) return;
  const known = spawnSync('git', ['cat-file', '-e', `${BASELINE_COMMIT}^{commit}`], {
    cwd: repoRoot,
  });
  if (known.status !== 0) {
    throw new Error(
      `this clone lacks commit ${BASELINE_COMMIT} (a shallow clone?): run \`git fetch --unshallow\` and try again`,
    );
  }
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  console.log(`building the 2026-11-29 baseline (${BASELINE_COMMIT.slice(0, 7)}) in ${root} …`);
  const archive = spawnSync('git', ['archive', '--format=tar', BASELINE_COMMIT], {
    cwd: repoRoot,
    maxBuffer: 1 << 30,
  });
  if (archive.status !== 0) throw new Error(`git archive failed: ${archive.stderr}`);
  const tar = spawnSync('tar', ['-x', '-C', root], { input: archive.stdout });
  if (tar.status !== 0) throw new Error(`unpacking the baseline failed: ${tar.stderr}`);
  const { packageManager } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const env = {
    ...process.env,
    CI: 'true',
    ONNXRUNTIME_NODE_INSTALL: 'skip',
    TURBO_TELEMETRY_DISABLED: '1',
    DO_NOT_TRACK: '1',
  };
  const step = (command, commandArgs) => {
    const result = spawnSync(command, commandArgs, { cwd: root, env, stdio: 'inherit' });
    if (result.status !== 0) {
      throw new Error(`building the baseline: \`${command} ${commandArgs.join(' ')}\` failed`);
    }
  };
  step('npx', [
    '--yes',
    packageManager,
    'install',
    '--frozen-lockfile',
    '--prefer-offline',
    '--ignore-scripts',
  ]);
  step('npx', [
    '--yes',
    packageManager,
    'exec',
    'turbo',
    'run',
    'build',
    '--filter=@minigpt/runner-node...',
    '--filter=@minigpt/export-onnx...',
    '--output-logs=errors-only',
  ]);
  writeFileSync(marker, `${BASELINE_COMMIT}\n`);
}
