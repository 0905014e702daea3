// Child process of the id-scan benchmark: opens one split in 'file' mode (which scans every id)
// and reports the time and peak RSS, so the figure shows the scan does not hold the file.
import { readFileSync } from 'node:fs';
import { openTokenDataset } from '@minigpt/data/node';

/**
 * Peak RSS in MB. Linux's VmHWM belongs to this process image; getrusage's maxRSS survives
 * exec, so a child of a parent holding gigabytes would report the parent's peak.
 */
function peakRssMB() {
  try {
    const kB = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kB) return Number(kB) / 1024;
  } catch {
    // not Linux: fall back to getrusage
  }
  return process.resourceUsage().maxRSS / 1024; // kilobytes
}

const [dir] = process.argv.slice(2);
const started = performance.now();
const dataset = await openTokenDataset(dir, 'train', { mode: 'file' });
const seconds = (performance.now() - started) / 1000;
dataset.close();
process.stdout.write(JSON.stringify({ seconds, peakRssMB: peakRssMB() }) + '\n');
