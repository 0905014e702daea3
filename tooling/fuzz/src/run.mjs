// `pnpm fuzz`: mutation fuzzing of the readers of files from elsewhere. For each target,
// N mutated inputs (default 100,000) made from valid seed files; counts what was accepted,
// refused with a typed error, thrown as any other error, or hung for more than 2 s.
// Goal: 0 / 0 in the last two columns. Cases run in a worker thread; a hung case is stopped
// by terminating the worker, which is restarted at the next case.
// Usage: node src/run.mjs [--cases=100000] [--targets=safetensors,checkpoint,manifest,tokenizer]
//          [--seed=1] [--case=N (replay one case of one target)]
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { runCase } from './engine.mjs';
import { TARGETS } from './targets.mjs';

const { values: args } = parseArgs({
  options: {
    cases: { type: 'string' },
    targets: { type: 'string' },
    seed: { type: 'string' },
    case: { type: 'string' },
  },
});
const cases = Number(args.cases ?? 100_000);
const seed = Number(args.seed ?? 1);
const names = (args.targets ?? Object.keys(TARGETS).join(',')).split(',');
const HANG_MS = 2000;
for (const name of names) if (!TARGETS[name]) throw new Error(`unknown target ${name}`);

if (args.case !== undefined) {
  // Replay: run one case in this thread and show what happened.
  const target = TARGETS[names[0]];
  const result = await runCase(target, await target.prepare(), seed, Number(args.case));
  console.log(result.outcome, `${result.ms.toFixed(1)} ms`, result.error ?? '');
  process.exit(0);
}

console.log(
  `pnpm fuzz — ${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model} × ${cpus().length}, Node ${process.version}; ${cases.toLocaleString('en-US')} cases per target, seed ${seed}, hang = no answer in ${HANG_MS / 1000} s\n`,
);
/**
 * Runs cases [from, to) of target `name` in a worker. Resolves when they are done, or when
 * one case gets no answer in HANG_MS (the worker is terminated) or kills the worker; with
 * the counts up to there, the slowest case and the findings the worker reported.
 */
async function runRange(name, from, to) {
  // Laid out as in worker.mjs: ints [in flight, accepted, typed, other, finished], times
  // [start of the case in flight (0: none), slowest ms].
  const shared = new SharedArrayBuffer(40);
  const ints = new Int32Array(shared, 0, 5);
  const times = new Float64Array(shared, 24, 2);
  Atomics.store(ints, 0, from);
  Atomics.store(ints, 4, from);
  const findings = [];
  const worker = new Worker(new URL('./worker.mjs', import.meta.url), {
    workerData: { target: name, seed, from, to, shared },
    resourceLimits: { maxOldGenerationSizeMb: 4096 },
  });
  const ended = await new Promise((resolve) => {
    const watchdog = setInterval(() => {
      const index = Atomics.load(ints, 0);
      const inFlight = times[0] === 0 ? 0 : performance.now() + performance.timeOrigin - times[0];
      if (inFlight > HANG_MS && index < to) {
        clearInterval(watchdog);
        void worker.terminate().then(() => resolve({ hang: index }));
      }
    }, 100);
    worker.on('message', (message) => {
      if (message.finding !== undefined) findings.push(message);
      if (message.done) {
        clearInterval(watchdog);
        resolve({ done: true });
      }
    });
    worker.on('error', (error) => {
      clearInterval(watchdog);
      resolve({ crash: Atomics.load(ints, 0), error });
    });
  });
  const counts = {
    accepted: Atomics.load(ints, 1),
    typed: Atomics.load(ints, 2),
    other: Atomics.load(ints, 3),
  };
  // terminate() takes effect a moment later: the "hung" case may have finished meanwhile.
  const finished = Atomics.load(ints, 4);
  if (ended.hang !== undefined && finished > ended.hang) {
    return { resumeAt: finished, counts, slowest: times[1], findings };
  }
  return { ...ended, counts, slowest: times[1], findings };
}

const rows = [];
for (const name of names) {
  const started = performance.now();
  const totals = { accepted: 0, typed: 0, other: 0, hang: 0, retried: 0, slowest: 0 };
  const findings = [];
  const add = (result) => {
    for (const key of ['accepted', 'typed', 'other']) totals[key] += result.counts[key];
    totals.slowest = Math.max(totals.slowest, result.slowest);
    findings.push(...result.findings);
  };
  let from = 0;
  while (from < cases) {
    const result = await runRange(name, from, cases);
    add(result);
    if (result.done) break;
    if (result.resumeAt !== undefined) {
      from = result.resumeAt;
      continue;
    }
    const index = result.hang ?? result.crash;
    if (result.hang !== undefined) {
      // A shared 2-core machine can stall a thread for seconds: replay the case alone in a
      // fresh worker; only a case that hangs again is a hang.
      const retry = await runRange(name, index, index + 1);
      add(retry);
      if (retry.hang !== undefined) {
        totals.hang++;
        findings.push({
          finding: index,
          error: `no answer in ${HANG_MS / 1000} s, twice (hang)`,
          stack: '',
        });
      } else if (retry.crash !== undefined) {
        totals.other++;
        findings.push({ finding: index, error: `worker died: ${retry.error?.message}`, stack: '' });
      } else totals.retried++;
    } else {
      totals.other++;
      findings.push({ finding: index, error: `worker died: ${result.error?.message}`, stack: '' });
    }
    from = index + 1;
  }
  const seconds = (performance.now() - started) / 1000;
  rows.push({ name, ...totals, seconds });
  console.log(
    `${name}: ${totals.accepted} accepted, ${totals.typed} typed errors, ${totals.other} other errors, ${totals.hang} hangs ` +
      `(${totals.retried} cases stalled past ${HANG_MS / 1000} s once and answered when replayed alone) in ${seconds.toFixed(0)} s`,
  );
  for (const finding of findings.slice(0, 5)) {
    console.log(`  ${name} case ${finding.finding}: ${finding.error}\n${finding.stack}`);
    console.log(
      `  replay: node tooling/fuzz/src/run.mjs --targets=${name} --seed=${seed} --case=${finding.finding}`,
    );
  }
}

const format = (n) => n.toLocaleString('en-US');
console.log(
  '| reader | cases | accepted | typed error | other error | hang > 2 s | slowest case | cases/s |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const row of rows) {
  console.log(
    `| ${TARGETS[row.name].what} | ${format(cases)} | ${format(row.accepted)} | ${format(row.typed)} | ${format(row.other)} | ${format(row.hang)} | ${row.slowest.toFixed(0)} ms | ${format(Math.round(cases / row.seconds))} |`,
  );
}
const bad = rows.reduce((n, row) => n + row.other + row.hang, 0);
console.log(
  bad === 0 ? '\nall readers: 0 other errors, 0 hangs' : `\n${bad} findings (other errors + hangs)`,
);
if (bad > 0) process.exitCode = 1;
