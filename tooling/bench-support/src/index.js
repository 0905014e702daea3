// What the benches share: how they load a core (so that the training and the generation
// benches' "busy core" figures mean the same load), and how they summarise their runs.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Runs `body` while a child process (`node -e 'for(;;){}'`) keeps one core busy, and kills
 * the child after, whether `body` returns or throws. `body` starts once the child's Node
 * start-up is over (300 ms), so it meets the loop alone.
 */
export async function withBusyCore(body) {
  const busy = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => {
    busy.once('spawn', resolve);
    busy.once('error', reject);
  });
  await sleep(300);
  try {
    return await body();
  } finally {
    const exited = new Promise((resolve) => busy.once('exit', resolve));
    busy.kill('SIGKILL');
    await exited;
  }
}

/** The median of `values` (the mean of the middle two when their count is even). */
export function median(values) {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * "median (min – max)" of `values`, each written by `format` (a number of decimals, or a
 * function): how the benches report runs on a shared, noisy machine.
 */
export function medianRange(values, format = 0) {
  const write = typeof format === 'function' ? format : (value) => value.toFixed(format);
  return `${write(median(values))} (${write(Math.min(...values))} – ${write(Math.max(...values))})`;
}

/**
 * Ratios taken within rounds against a goal of at least `target`: "1.37 (0.84 – 2.05)× [goal
 * ≥ 2×: MISSED at the median, 1 of 15 rounds]", so a goal met only in some rounds says so.
 */
export function ratioAgainstGoal(ratios, target) {
  const verdict = goalVerdict(ratios, (ratio) => ratio >= target);
  return `${medianRange(ratios, 2)}× [goal ≥ ${target}×: ${verdict}]`;
}

/**
 * Whether a goal holds for the median of `values` and in how many rounds: "met at the median,
 * 4 of 5 rounds" or "MISSED at the median, 0 of 5 rounds". `isMet` tells one value.
 */
export function goalVerdict(values, isMet) {
  const met = isMet(median(values)) ? 'met' : 'MISSED';
  return `${met} at the median, ${values.filter(isMet).length} of ${values.length} rounds`;
}

/** "2026-12-02 16:02 UTC": when a bench ran, to the minute, as its header prints it. */
export function utcMinute(date = new Date()) {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "load average 1.07, 1.52, 2.64" (1, 5 and 15 minutes), for a bench's header and footer. */
export function loadAverage() {
  return `load average ${loadavg()
    .map((value) => value.toFixed(2))
    .join(', ')}`;
}

/**
 * The CPU as a bench's header names it: the model name, with the family and model numbers and
 * the widest vector set from `cpuinfo` (Linux's /proc/cpuinfo text) where it has them. Hosts
 * that share a model name ("AMD EPYC") can differ in both, and a figure moves with them.
 */
export function describeCpu(modelName, cpuinfo = '') {
  const name = modelName.trim() || 'unknown CPU';
  const field = (key) => new RegExp(`^${key}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim();
  const details = [];
  const family = field('cpu family');
  const model = field('model');
  if (family !== undefined && model !== undefined) details.push(`family ${family} model ${model}`);
  // x86 lists its features under "flags", Arm under "Features".
  const features = new Set((field('flags') ?? field('Features') ?? '').split(/\s+/));
  const vectors = features.has('avx512f')
    ? 'AVX-512'
    : features.has('avx2')
      ? 'AVX2'
      : features.has('asimd')
        ? 'NEON'
        : undefined;
  if (vectors) details.push(vectors);
  return details.length > 0 ? `${name} (${details.join(', ')})` : name;
}

/** describeCpu of this machine (its /proc/cpuinfo where there is one). */
export function cpuName() {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // Not Linux: the model name alone.
  }
  return describeCpu(cpus()[0]?.model ?? '', cpuinfo);
}
