// Benchmark: char encode, BPE training to vocab 4,096 and BPE encode on tinyshakespeare.
// Targets (issue #2): char encode ≥ 50 MB/s; BPE train ≤ 10 s; BPE encode ≥ 2 MB/s.
// Usage: pnpm bench   (MINIGPT_BENCH_TEXT=… to use another UTF-8 text)
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer, CharTokenizer } from '@minigpt/tokenizer';

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

/** Median seconds of `runs` calls of `fn` (after one warm-up call). */
function median(runs, fn) {
  fn();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    fn();
    times.push((performance.now() - started) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

const verdict = (ok) => (ok ? 'met' : 'MISSED');
console.log(
  `tokenizer benchmark — ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${megabytes.toFixed(2)} MB text`,
);

const char = CharTokenizer.fromText(text);
const charEncode = megabytes / median(7, () => char.encode(text));
console.log(
  `char encode:        ${charEncode.toFixed(0)} MB/s  [target ≥ 50 MB/s: ${verdict(charEncode >= 50)}]`,
);
const ids = char.encode(text);
const charDecode = megabytes / median(7, () => char.decode(ids));
console.log(`char decode:        ${charDecode.toFixed(0)} MB/s`);

let bpe;
const trainSeconds = median(3, () => {
  bpe = BpeTokenizer.train(text, 4096);
});
console.log(
  `bpe train to 4096:  ${trainSeconds.toFixed(2)} s  [target ≤ 10 s: ${verdict(trainSeconds <= 10)}]`,
);
// Cold: a fresh tokenizer each run, so the piece cache starts empty.
const json = JSON.parse(JSON.stringify(bpe.toJSON()));
const coldSeconds = median(5, () => BpeTokenizer.fromJSON(json).encode(text));
const bpeCold = megabytes / coldSeconds;
console.log(
  `bpe encode (cold):  ${bpeCold.toFixed(1)} MB/s  [target ≥ 2 MB/s: ${verdict(bpeCold >= 2)}]`,
);
const warm = BpeTokenizer.fromJSON(json);
const bpeWarm = megabytes / median(5, () => warm.encode(text));
console.log(`bpe encode (warm):  ${bpeWarm.toFixed(1)} MB/s`);
const bpeIds = warm.encode(text);
console.log(
  `bpe compression:    ${(Buffer.byteLength(text) / bpeIds.length).toFixed(2)} bytes/token (${bpeIds.length.toLocaleString('en-US')} tokens)`,
);
const bpeDecode = megabytes / median(5, () => warm.decode(bpeIds));
console.log(`bpe decode:         ${bpeDecode.toFixed(0)} MB/s`);
