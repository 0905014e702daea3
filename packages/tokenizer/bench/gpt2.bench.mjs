// Benchmark: GPT-2's tokenizer (loaded from its tokenizer.json with bpeFromHuggingFace)
// encoding tinyshakespeare and a varied text (prose, code, emoji, CJK, random Unicode), next
// to js-tiktoken's GPT-2 in the same run. The files are rebuilt from js-tiktoken's ranks
// (@minigpt/gpt2-reference, in tooling/), so nothing is downloaded. Target (issue #14): ≥ 5 MB/s.
// Usage: pnpm --filter @minigpt/tokenizer bench, or after a build of the package:
//        node --expose-gc packages/tokenizer/bench/gpt2.bench.mjs
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bpeFromHuggingFace } from '@minigpt/tokenizer';
import { Tiktoken } from 'js-tiktoken/lite';
import { GPT2_RANKS, gpt2Files, variedText } from '@minigpt/gpt2-reference';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const shakespearePath = join(repoRoot, '..', 'shared', 'data', 'tinyshakespeare.txt');
if (!existsSync(shakespearePath)) {
  console.error(
    `benchmark text not found: ${shakespearePath}\n` +
      'This benchmark reads tinyshakespeare from ../shared/data/ beside the repository root.',
  );
  process.exit(1);
}
const RUNS = 7;

const texts = [
  ['tinyshakespeare', readFileSync(shakespearePath, 'utf8')],
  ['varied text', variedText(1_100_000)],
];

/**
 * Seconds of each of `RUNS` calls of `run(prepare())`, only `run` timed, after one warm-up.
 * With --expose-gc, garbage from before (a tokenizer loaded in `prepare`) is collected first.
 */
function timings(prepare, run) {
  run(prepare());
  const seconds = [];
  for (let i = 0; i < RUNS; i++) {
    const input = prepare();
    globalThis.gc?.();
    const started = performance.now();
    run(input);
    seconds.push((performance.now() - started) / 1000);
  }
  return seconds;
}

/** "median MB/s (min–max)" of the timings of one pass over `megabytes`. */
function rate(megabytes, seconds) {
  const speeds = seconds.map((s) => megabytes / s).sort((a, b) => a - b);
  const median = speeds[Math.floor(speeds.length / 2)];
  return `${median.toFixed(1).padStart(5)} MB/s (${speeds[0].toFixed(1)}–${speeds.at(-1).toFixed(1)})`;
}

const files = gpt2Files();
const loadStarted = performance.now();
const warm = bpeFromHuggingFace(files.tokenizerJson);
const loadSeconds = (performance.now() - loadStarted) / 1000;
const reference = new Tiktoken(GPT2_RANKS);

console.log(
  `GPT-2 tokenizer encode — ${cpus()[0]?.model ?? 'unknown CPU'} (${availableParallelism()} cores), ` +
    `Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; median of ${RUNS} runs (range)`,
);
console.log(`load tokenizer.json: ${loadSeconds.toFixed(2)} s`);
for (const [name, text] of texts) {
  const megabytes = Buffer.byteLength(text) / 1e6;
  const options = { allowedSpecial: 'all' };
  const ours = warm.encode(text, options);
  const theirs = reference.encode(text, 'all');
  const same = ours.length === theirs.length && ours.every((id, i) => id === theirs[i]);
  if (!same) {
    console.error(`${name}: our ids differ from js-tiktoken's; fix that before timing`);
    process.exit(1);
  }
  // Cold: a fresh tokenizer each run (loading untimed), so the piece cache starts empty.
  const cold = timings(
    () => bpeFromHuggingFace(files.tokenizerJson),
    (tokenizer) => tokenizer.encode(text, options),
  );
  const warmRuns = timings(
    () => warm,
    (tokenizer) => tokenizer.encode(text, options),
  );
  const tiktoken = timings(
    () => reference,
    (encoder) => encoder.encode(text, 'all'),
  );
  console.log(
    `${name} (${megabytes.toFixed(2)} MB, ${theirs.length.toLocaleString('en-US')} tokens):`,
  );
  console.log(`  minigpt, cold cache:  ${rate(megabytes, cold)}  [target ≥ 5 MB/s]`);
  console.log(`  minigpt, warm cache:  ${rate(megabytes, warmRuns)}`);
  console.log(`  js-tiktoken 1.0.21:   ${rate(megabytes, tiktoken)}`);
}
