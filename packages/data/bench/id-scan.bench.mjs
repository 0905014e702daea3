// Benchmark: what checking every token id against vocabSize adds to `openTokenDataset`, on a
// generated 1 GB split (uint16, 500M tokens; then uint32, 250M tokens), against references
// measured in the same run: readFile of the file, and a plain `for` loop sum over its ids.
// Wall and CPU time both: CPU time stays meaningful when other work shares the cores. The file
// was just written, so it is read from the page cache; a cold disk adds its read time to the
// references and the file-mode scan alike. Usage: pnpm bench (MINIGPT_BENCH_SCAN_BYTES=… to
// change the size, MINIGPT_BENCH_RUNS=… the runs per figure, default 3).
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTokenDataset } from '@minigpt/data/node';
// The scan alone, from this package's own build (not a public export).
import { findBadTokenId } from '../dist/id-check.js';
import { FILE_SCAN_CHUNK_BYTES } from '../dist/node/file-id-check.js';

const targetBytes = Number(process.env.MINIGPT_BENCH_SCAN_BYTES ?? 1e9);
const runs = Number(process.env.MINIGPT_BENCH_RUNS ?? 3);
const child = fileURLToPath(new URL('./id-scan-child.mjs', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-id-scan-'));

/** Writes a split of pseudo-random ids below vocabSize, 16 MiB at a time, and its meta.json. */
function writeSplit(dir, dtype, vocabSize) {
  const width = dtype === 'uint16' ? 2 : 4;
  const tokens = Math.floor(targetBytes / width);
  const chunk = new (dtype === 'uint16' ? Uint16Array : Uint32Array)((16 * 2 ** 20) / width);
  let state = 12345;
  for (let i = 0; i < chunk.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    chunk[i] = state % vocabSize;
  }
  const bytes = Buffer.from(chunk.buffer);
  const fd = openSync(join(dir, 'train.bin'), 'w');
  try {
    for (let written = 0; written < tokens * width;) {
      const length = Math.min(bytes.length, tokens * width - written);
      written += writeSync(fd, bytes, 0, length);
    }
  } finally {
    closeSync(fd);
  }
  writeFileSync(join(dir, 'val.bin'), bytes.subarray(0, 1000 * width));
  writeFileSync(
    join(dir, 'meta.json'),
    JSON.stringify({
      format: 'minigpt-data',
      formatVersion: 1,
      dtype,
      vocabSize,
      tokenizer: 'bpe',
      trainTokens: tokens,
      valTokens: 1000,
      trainCharacters: tokens * 4,
      valCharacters: 4000,
      valFraction: 0.1,
      newlines: 'universal',
      source: { file: 'generated.txt', bytes: tokens * 4, sha256: '0'.repeat(64) },
    }),
  );
  return tokens;
}

/** A plain `for` loop over every token: what a naive pass over the ids costs. */
function plainSum(tokens) {
  let sum = 0;
  const length = tokens.length; // hoisted, as in the scan (unhoisted, the first call ran slower)
  for (let i = 0; i < length; i++) sum += tokens[i];
  return sum;
}

/** Reads one value per 4 KiB page: the first user access to each page, and nothing else. */
function touchPages(tokens) {
  let sum = 0;
  const step = 4096 / tokens.BYTES_PER_ELEMENT;
  for (let i = 0; i < tokens.length; i += step) sum += tokens[i];
  return sum;
}

/** Reads the file in the scan's chunk size without looking at the ids: the I/O part alone. */
async function chunkedRead(path) {
  const handle = await open(path, 'r');
  const buffer = Buffer.allocUnsafeSlow(FILE_SCAN_CHUNK_BYTES);
  try {
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, total);
      if (bytesRead === 0) return total;
      total += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/** Wall and CPU seconds of `action`; CPU counts every thread of this process (readFile's too). */
async function measure(action) {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await action();
  const used = process.cpuUsage(cpu);
  return { wall: (performance.now() - started) / 1000, cpu: (used.user + used.system) / 1e6 };
}

const sorted = (values) => [...values].sort((a, b) => a - b);
const median = (values) => sorted(values)[Math.floor(values.length / 2)];
const span = (values) => {
  const [low, high] = [sorted(values)[0], sorted(values).at(-1)];
  return `${low.toFixed(2)}–${high.toFixed(2)} (${median(values).toFixed(2)})`;
};
const figures = (samples) =>
  `wall ${span(samples.map((s) => s.wall))} s, CPU ${span(samples.map((s) => s.cpu))} s`;
/** a / b on the medians, wall and CPU. */
const ratio = (a, b) => {
  const of = (key) => (median(a.map((s) => s[key])) / median(b.map((s) => s[key]))).toFixed(2);
  return `${of('wall')}× wall, ${of('cpu')}× CPU`;
};

/**
 * One dtype. `openMemory`: also time `open` in 'memory' mode with and without the check, which
 * costs two more readFiles a run; the uint32 case leaves it out to keep the whole benchmark
 * within about two minutes (the checked open is readFile + first touch + scan either way).
 */
async function bench(dtype, vocabSize, { openMemory }) {
  const dir = join(work, dtype);
  mkdirSync(dir);
  const tokens = writeSplit(dir, dtype, vocabSize);
  const path = join(dir, 'train.bin');
  const gb = (tokens * (dtype === 'uint16' ? 2 : 4)) / 1e9;
  // Peak memory of a 'file' mode open, in a process of its own (before this one fills memory).
  const peak = JSON.parse(execFileSync(process.execPath, [child, dir], { encoding: 'utf8' }));
  const samples = {
    readFile: [],
    touch: [],
    scan: [],
    sum: [],
    openUnchecked: [],
    openMemory: [],
    chunkedRead: [],
    openFile: [],
  };
  // Rounds interleave the measurements, so a busy moment of the machine hits all of them.
  for (let run = 0; run < runs; run++) {
    let bytes;
    samples.readFile.push(await measure(async () => (bytes = await readFile(path))));
    // readFile gives a large file its own ArrayBuffer at offset 0: a view needs no copy.
    const array =
      dtype === 'uint16'
        ? new Uint16Array(bytes.buffer, bytes.byteOffset, tokens)
        : new Uint32Array(bytes.buffer, bytes.byteOffset, tokens);
    // The first read of each page of a fresh buffer can cost far more than the read itself
    // (on some VMs, microseconds a page); whoever reads the ids first pays it once, so it is
    // measured on its own and the scan and the loop below run on touched pages.
    samples.touch.push(await measure(() => touchPages(array)));
    samples.scan.push(
      await measure(() => {
        if (findBadTokenId(array, vocabSize) !== undefined) throw new Error('bad id generated');
      }),
    );
    samples.sum.push(await measure(() => plainSum(array)));
    bytes = undefined; // let the next gigabyte reuse this one's memory
    if (openMemory) {
      samples.openUnchecked.push(
        await measure(() => openTokenDataset(dir, 'train', { mode: 'memory', checkIds: false })),
      );
      samples.openMemory.push(
        await measure(() => openTokenDataset(dir, 'train', { mode: 'memory' })),
      );
    }
    samples.chunkedRead.push(await measure(() => chunkedRead(path)));
    samples.openFile.push(
      await measure(async () => (await openTokenDataset(dir, 'train', { mode: 'file' })).close()),
    );
  }
  const cpuPerToken = (median(samples.scan.map((s) => s.cpu)) / tokens) * 1e9;

  console.log(
    `\n${dtype}, ${gb.toFixed(2)} GB (${(tokens / 1e6).toFixed(0)}M tokens, vocabSize ${vocabSize}), ${runs} runs, min–max (median):`,
  );
  console.log(`  reference: readFile                ${figures(samples.readFile)}`);
  console.log(`  first touch of the read pages      ${figures(samples.touch)}`);
  console.log(`  memory scan (findBadTokenId)       ${figures(samples.scan)}`);
  console.log(`  reference: plain for-loop sum      ${figures(samples.sum)}`);
  console.log(
    `    scan / readFile: ${ratio(samples.scan, samples.readFile)}; scan / for loop: ${ratio(samples.scan, samples.sum)}; ` +
      `${cpuPerToken.toFixed(2)} ns/token CPU`,
  );
  if (openMemory) {
    console.log(`  open 'memory', checkIds: false     ${figures(samples.openUnchecked)}`);
    console.log(`  open 'memory' (read, touch, scan)  ${figures(samples.openMemory)}`);
    console.log(
      `    checked / unchecked: ${ratio(samples.openMemory, samples.openUnchecked)}; ` +
        `checked / readFile: ${ratio(samples.openMemory, samples.readFile)}`,
    );
  }
  console.log(`  reference: read in 16 MiB chunks   ${figures(samples.chunkedRead)}`);
  console.log(`  open 'file' (chunked scan)         ${figures(samples.openFile)}`);
  console.log(
    `    open / chunked read: ${ratio(samples.openFile, samples.chunkedRead)}; open / readFile: ${ratio(samples.openFile, samples.readFile)}; ` +
      `peak RSS of a process doing only this open: ${peak.peakRssMB.toFixed(0)} MB`,
  );
  rmSync(dir, { recursive: true, force: true });
}

try {
  console.log(
    `id-scan benchmark — ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ` +
      `${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${new Date().toISOString()}`,
  );
  console.log(
    `load average ${loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')} (other work shares the cores); the file is in the page cache (just written); ` +
      'figures are min–max over the runs',
  );
  await bench('uint16', 50304, { openMemory: true });
  await bench('uint32', 100277, { openMemory: false });
} finally {
  rmSync(work, { recursive: true, force: true });
}
