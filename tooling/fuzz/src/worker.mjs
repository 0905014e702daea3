// Worker of `pnpm fuzz`: runs cases [from, to) of one target, publishing the case in flight
// and the counts in shared memory, so the parent can spot a hang, stop this thread, and
// still know every count up to it.
import { parentPort, workerData } from 'node:worker_threads';
import { makeInput, runInput } from './engine.mjs';
import { TARGETS } from './targets.mjs';

const { target: name, seed, from, to, shared } = workerData;
// [case in flight, accepted, typed, other, cases finished (next index)];
// [start time of the case in flight (0 while making an input), slowest ms]
const ints = new Int32Array(shared, 0, 5);
const times = new Float64Array(shared, 24, 2);
const target = TARGETS[name];
const context = await target.prepare();
for (let index = from; index < to; index++) {
  times[0] = 0; // making an input is not the reader's time
  const input = makeInput(target, context, seed, index);
  // The watchdog times the reader, from here.
  times[0] = performance.now() + performance.timeOrigin;
  Atomics.store(ints, 0, index);
  const result = await runInput(target, context, input);
  times[0] = 0;
  if (result.ms > times[1]) times[1] = result.ms;
  Atomics.add(ints, { accepted: 1, typed: 2, other: 3 }[result.outcome], 1);
  Atomics.store(ints, 4, index + 1);
  if (result.outcome === 'other') {
    const error = result.error;
    parentPort.postMessage({
      finding: index,
      error: `${error?.name ?? typeof error}: ${String(error?.message ?? error).slice(0, 300)}`,
      stack: String(error?.stack ?? '')
        .split('\n')
        .slice(1, 4)
        .join('\n'),
    });
  }
}
Atomics.store(ints, 0, to);
parentPort.postMessage({ done: true });
