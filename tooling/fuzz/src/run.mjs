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
const rows = [];
for (const name of names) {
  const started = performance.now();
  const totals = { accepted: 0, typed: 0, other: 0, hang: 0, slowest: 0 };
  const findings = [];
  let from = 0;
  while (from < cases) {
    const shared = new SharedArrayBuffer(32);
    const ints = new Int32Array(shared, 0, 4);
    const times = new Float64Array(shared, 16, 2);
    Atomics.store(ints, 0, from);
    times[0] = performance.now() + performance.timeOrigin;
    const worker = new Worker(new URL('./worker.mjs', import.meta.url), {
      workerData: { target: name, seed, from, to: cases, shared },
      resourceLimits: { maxOldGenerationSizeMb: 4096 },
    });
    const ended = await new Promise((resolve) => {
      const watchdog = setInterval(() => {
        // A case counts from when the worker publishes it; 0 while it makes the next input.
        const index = Atomics.load(ints, 0);
        const inFlight = times[0] === 0 ? 0 : performance.now() + performance.timeOrigin - times[0];
        if (inFlight > HANG_MS && index < cases) {
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
    totals.accepted += Atomics.load(ints, 1);
    totals.typed += Atomics.load(ints, 2);
    totals.other += Atomics.load(ints, 3);
    totals.slowest = Math.max(totals.slowest, times[1]);
    if (ended.done) break;
    const index = ended.hang ?? ended.crash;
    if (ended.hang !== undefined) {
      totals.hang++;
      findings.push({
        finding: index,
        error: `no answer in ${HANG_MS / 1000} s (hang)`,
        stack: '',
      });
    } else {
      totals.other++;
      findings.push({ finding: index, error: `worker died: ${ended.error?.message}`, stack: '' });
    }
    from = index + 1;
  }
  const seconds = (performance.now() - started) / 1000;
  rows.push({ name, ...totals, seconds });
  console.log(
    `${name}: ${totals.accepted} accepted, ${totals.typed} typed errors, ${totals.other} other errors, ${totals.hang} hangs in ${seconds.toFixed(0)} s`,
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
