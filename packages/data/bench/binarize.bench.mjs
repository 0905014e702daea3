// Benchmark: `binarize` throughput and peak memory on a large input (default 1 GiB, built by
// repeating tinyshakespeare), char tokenizer; plus char and BPE on tinyshakespeare itself.
// Each run is a child process, so its peak RSS is its own. References, each in a child process
// of its own too and measured in the same rounds:
//   - large input: a plain read of the same file in 1 MiB chunks (binarize's read size), the
//     I/O floor; binarize reads the file twice (scan, then encode);
//   - tinyshakespeare: the same tokenizer work on the text in memory, no files.
// Rounds interleave the runs, so a busy moment of the machine falls on all of them; figures are
// the median (min – max) over rounds, ratios taken within a round.
// Targets (issue #2): char ≥ 30 MB/s with peak RSS < 300 MB on 1 GB.
// Usage: pnpm bench   (MINIGPT_BENCH_BYTES=… to change the size; MINIGPT_BENCH_TEXT=… the
// source; MINIGPT_BENCH_RUNS=… the rounds, default 5)
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuName, goalVerdict, loadAverage, medianRange, utcMinute } from '@minigpt/bench-support';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const source =
  process.env.MINIGPT_BENCH_TEXT ?? join(repoRoot, '..', 'shared', 'data', 'tinyshakespeare.txt');
if (!existsSync(source)) {
  console.error(
    `benchmark text not found: ${source}\nSet MINIGPT_BENCH_TEXT to a UTF-8 text file.`,
  );
  process.exit(1);
}
const targetBytes = Number(process.env.MINIGPT_BENCH_BYTES ?? 2 ** 30);
const rounds = Number(process.env.MINIGPT_BENCH_RUNS ?? 5);
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const child = fileURLToPath(new URL('./binarize-child.mjs', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-data-'));

function run(input, tokenizer) {
  const output = execFileSync(
    process.execPath,
    [child, input, join(work, `out-${tokenizer}`), tokenizer],
    {
      encoding: 'utf8',
    },
  );
  return JSON.parse(output);
}

// The references' child: `read` reads the file in 1 MiB chunks and looks at nothing; `char` and
// `bpe` read it whole and do the tokenizer work binarize does (build or train on the train
// split, the first 90%, then encode everything) on the text in memory. Timed after the imports,
// as binarize-child is. Run from the package folder, so '@minigpt/tokenizer' resolves.
const REFERENCE_CHILD = `
import { open, readFile } from 'node:fs/promises';
import { BpeTokenizer, CharTokenizer } from '@minigpt/tokenizer';
const [kind, input] = process.argv.slice(1);
const started = performance.now();
let bytes = 0;
if (kind === 'read') {
  const handle = await open(input, 'r');
  const buffer = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
    if (bytesRead === 0) break;
    bytes += bytesRead;
  }
  await handle.close();
} else {
  const raw = await readFile(input);
  bytes = raw.length;
  const text = raw.toString('utf8');
  const tokenizer =
    kind === 'char'
      ? CharTokenizer.fromText(text)
      : BpeTokenizer.train(text.slice(0, Math.floor(text.length * 0.9)), 4096);
  tokenizer.encode(text);
}
const seconds = (performance.now() - started) / 1000;
process.stdout.write(JSON.stringify({ seconds, bytes, peakRssMB: process.resourceUsage().maxRSS / 1024 }) + '\\n');
`;

function reference(kind, input) {
  const output = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', REFERENCE_CHILD, kind, input],
    { cwd: packageDir, encoding: 'utf8' },
  );
  return JSON.parse(output);
}

/** a's time ÷ b's, round by round. */
const ratio = (a, b) =>
  medianRange(
    a.map((s, i) => s.seconds / b[i].seconds),
    2,
  );
const seconds = (samples, decimals) =>
  medianRange(
    samples.map((s) => s.seconds),
    decimals,
  );
const rss = (samples) => medianRange(samples.map((s) => s.peakRssMB));

try {
  const text = readFileSync(source);
  const big = join(work, 'big.txt');
  const stream = createWriteStream(big);
  for (let written = 0; written < targetBytes; written += text.length) {
    if (!stream.write(text)) await new Promise((drain) => stream.once('drain', drain));
  }
  await new Promise((done) => stream.end(done));

  const started = new Date();
  console.log(
    `binarize benchmark — ${utcMinute(started)}, ${cpuName()}, ` +
      `${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}; ${loadAverage()}`,
  );
  console.log(
    `median (min – max) of ${rounds} round${rounds === 1 ? '' : 's'}, each run a child process; ` +
      'the large file was just written, so it is read from the page cache',
  );
  const samples = {
    charBig: [],
    readBig: [],
    charSmall: [],
    charMemory: [],
    bpe: [],
    bpeMemory: [],
  };
  for (let round = 0; round < rounds; round++) {
    samples.charBig.push(run(big, 'char'));
    samples.readBig.push(reference('read', big));
    samples.charSmall.push(run(source, 'char'));
    samples.charMemory.push(reference('char', source));
    samples.bpe.push(run(source, 'bpe'));
    samples.bpeMemory.push(reference('bpe', source));
  }

  const gib = (samples.charBig[0].bytes / 2 ** 30).toFixed(2);
  const mbps = samples.charBig.map((s) => s.bytes / 1e6 / s.seconds);
  const peaks = samples.charBig.map((s) => s.peakRssMB);
  console.log(
    `char, ${gib} GiB: ${seconds(samples.charBig, 1)} s = ${medianRange(mbps, 1)} MB/s, ` +
      `peak RSS ${rss(samples.charBig)} MB  [target ≥ 30 MB/s: ${goalVerdict(mbps, (v) => v >= 30)}; ` +
      `< 300 MB: ${goalVerdict(peaks, (v) => v < 300)}]`,
  );
  console.log(
    `  reference: read the file in 1 MiB chunks: ${seconds(samples.readBig, 2)} s, ` +
      `peak RSS ${rss(samples.readBig)} MB; binarize ÷ read: ${ratio(samples.charBig, samples.readBig)}×`,
  );
  const smallMB = (samples.charSmall[0].bytes / 1e6).toFixed(2);
  console.log(
    `char, tinyshakespeare (${smallMB} MB): ${medianRange(samples.charSmall.map((s) => s.seconds * 1000))} ms, ` +
      `peak RSS ${rss(samples.charSmall)} MB`,
  );
  console.log(
    `  reference: CharTokenizer.fromText + encode in memory: ` +
      `${medianRange(samples.charMemory.map((s) => s.seconds * 1000))} ms; ` +
      `binarize ÷ in memory: ${ratio(samples.charSmall, samples.charMemory)}×`,
  );
  console.log(
    `bpe 4096, tinyshakespeare: ${seconds(samples.bpe, 2)} s (train on the train split + encode), ` +
      `${samples.bpe[0].tokens.toLocaleString('en-US')} tokens, peak RSS ${rss(samples.bpe)} MB`,
  );
  console.log(
    `  reference: BpeTokenizer.train on the first 90% + encode in memory: ${seconds(samples.bpeMemory, 2)} s; ` +
      `binarize ÷ in memory: ${ratio(samples.bpe, samples.bpeMemory)}×`,
  );
  console.log(`at the end: ${loadAverage()} (${cpus().length} cores)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
