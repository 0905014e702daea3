// Benchmark: char encode, BPE training to vocab 4,096 and BPE encode on tinyshakespeare, with
// the platform's UTF-8 encoder (TextEncoder.encode) on the same text as a floor, measured in the
// same rounds. Targets (issue #2): char encode ≥ 50 MB/s; BPE train ≤ 10 s; BPE encode ≥ 2 MB/s.
// Each figure is the median (min – max) over rounds; ratios are taken within a round.
// Usage: pnpm bench   (MINIGPT_BENCH_TEXT=… to use another UTF-8 text), or after a build:
//        node packages/tokenizer/bench/tokenizer.bench.mjs [--rounds=N]
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BpeTokenizer, CharTokenizer } from '@minigpt/tokenizer';
import { cpuName, goalVerdict, loadAverage, medianRange, utcMinute } from '@minigpt/bench-support';

// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const rounds = Number(args.rounds);

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const source =
  process.env.MINIGPT_BENCH_TEXT ?? join(repoRoot, '..', 'shared', 'data', 'tinyshakespeare.txt');
if (!existsSync(source)) {
  console.error(
    `benchmark text not found: ${source}\nSet MINIGPT_BENCH_TEXT to a UTF-8 text file.`,
  );
  process.exit(1);
}
const text = readFileSync(source, 'utf8');
const megabytes = Buffer.byteLength(text) / 1e6;

/**
 * Seconds of each call of each of `fns`, one call of each per round for `rounds` rounds (after
 * one warm-up call each): interleaved, so a busy moment of the machine falls on all of them.
 */
function timings(...fns) {
  for (const fn of fns) fn();
  const seconds = fns.map(() => []);
  for (let round = 0; round < rounds; round++) {
    fns.forEach((fn, i) => {
      const started = performance.now();
      fn();
      seconds[i].push((performance.now() - started) / 1000);
    });
  }
  return seconds;
}

/** MB/s of each timed pass over the text. */
const speeds = (seconds) => seconds.map((s) => megabytes / s);
/** Time ÷ the reference's time, round by round: how many times slower than the floor. */
const against = (seconds, reference) => seconds.map((s, i) => s / reference[i]);

const started = new Date();
console.log(
  `tokenizer benchmark — ${utcMinute(started)}, ${cpuName()}, ` +
    `${cpus().length} cores, Node ${process.version}, ${megabytes.toFixed(2)} MB text; ${loadAverage()}`,
);
console.log(
  `median (min – max) of ${rounds} round${rounds === 1 ? '' : 's'}; reference: TextEncoder.encode (the platform's UTF-8 ` +
    'encoder) on the same text, in the same rounds as the encodes',
);

const char = CharTokenizer.fromText(text);
const bpe = BpeTokenizer.train(text, 4096);
// Cold: a fresh tokenizer each run, so the piece cache starts empty.
const json = JSON.parse(JSON.stringify(bpe.toJSON()));
const warm = BpeTokenizer.fromJSON(json);
const encoder = new TextEncoder();
const [utf8, charEncode, bpeCold, bpeWarm] = timings(
  () => encoder.encode(text),
  () => char.encode(text),
  () => BpeTokenizer.fromJSON(json).encode(text),
  () => warm.encode(text),
);
console.log(`reference: TextEncoder.encode: ${medianRange(speeds(utf8))} MB/s`);
console.log(
  `char encode:        ${medianRange(speeds(charEncode))} MB/s  ` +
    `[target ≥ 50 MB/s: ${goalVerdict(speeds(charEncode), (v) => v >= 50)}]; ` +
    `time ÷ TextEncoder's ${medianRange(against(charEncode, utf8))}×`,
);
const ids = char.encode(text);
const [charDecode] = timings(() => char.decode(ids));
console.log(`char decode:        ${medianRange(speeds(charDecode))} MB/s`);

const [train] = timings(() => BpeTokenizer.train(text, 4096));
console.log(
  `bpe train to 4096:  ${medianRange(train, 2)} s  [target ≤ 10 s: ${goalVerdict(train, (s) => s <= 10)}]`,
);
console.log(
  `bpe encode (cold):  ${medianRange(speeds(bpeCold), 1)} MB/s  ` +
    `[target ≥ 2 MB/s: ${goalVerdict(speeds(bpeCold), (v) => v >= 2)}]; ` +
    `time ÷ TextEncoder's ${medianRange(against(bpeCold, utf8))}×`,
);
console.log(
  `bpe encode (warm):  ${medianRange(speeds(bpeWarm), 1)} MB/s; ` +
    `time ÷ TextEncoder's ${medianRange(against(bpeWarm, utf8))}×`,
);
const bpeIds = warm.encode(text);
console.log(
  `bpe compression:    ${(Buffer.byteLength(text) / bpeIds.length).toFixed(2)} bytes/token (${bpeIds.length.toLocaleString('en-US')} tokens)`,
);
const [bpeDecode] = timings(() => warm.decode(bpeIds));
console.log(`bpe decode:         ${medianRange(speeds(bpeDecode))} MB/s`);
console.log(`at the end: ${loadAverage()} (${cpus().length} cores)`);
