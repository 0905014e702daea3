// Benchmark: `binarize` throughput and peak memory on a large input (default 1 GiB, built by
// repeating tinyshakespeare), char tokenizer; plus BPE on tinyshakespeare itself.
// Targets (issue #2): char ≥ 30 MB/s with peak RSS < 300 MB on 1 GB.
// Usage: pnpm bench   (MINIGPT_BENCH_BYTES=… to change the size; MINIGPT_BENCH_TEXT=… the source)
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

try {
  const text = readFileSync(source);
  const big = join(work, 'big.txt');
  const stream = createWriteStream(big);
  for (let written = 0; written < targetBytes; written += text.length) {
    if (!stream.write(text)) await new Promise((drain) => stream.once('drain', drain));
  }
  await new Promise((done) => stream.end(done));

  console.log(
    `binarize benchmark — ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`,
  );
  const charBig = run(big, 'char');
  const mbps = charBig.bytes / 1e6 / charBig.seconds;
  console.log(
    `char, ${(charBig.bytes / 2 ** 30).toFixed(2)} GiB: ${charBig.seconds.toFixed(1)} s = ${mbps.toFixed(1)} MB/s, ` +
      `peak RSS ${charBig.peakRssMB.toFixed(0)} MB  [target ≥ 30 MB/s: ${mbps >= 30 ? 'met' : 'MISSED'}; ` +
      `< 300 MB: ${charBig.peakRssMB < 300 ? 'met' : 'MISSED'}]`,
  );
  const charSmall = run(source, 'char');
  console.log(
    `char, tinyshakespeare (${(charSmall.bytes / 1e6).toFixed(2)} MB): ${(charSmall.seconds * 1000).toFixed(0)} ms, peak RSS ${charSmall.peakRssMB.toFixed(0)} MB`,
  );
  const bpeSmall = run(source, 'bpe');
  console.log(
    `bpe 4096, tinyshakespeare: ${bpeSmall.seconds.toFixed(2)} s (train on the train split + encode), ` +
      `${bpeSmall.tokens.toLocaleString('en-US')} tokens, peak RSS ${bpeSmall.peakRssMB.toFixed(0)} MB`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
