// Benchmark: does the graph's optional `num_logits_to_keep` input (exportModel option
// numLogitsToKeep) pay? Without it the LM head runs on all T positions — (T, C)·(C, V) and a
// (1, T, V) logits output; with it set to 1 only on the last one, which is all a runner needs to
// pick the next token (0 = all positions, as without the input). Measured with onnxruntime-node
// directly on the float32 graph of a seed-size model (6 layers, 256 wide, 8 heads, block 128;
// random weights) at vocab 65 (char), 4096 and 50257 (BPE-sized):
//   - prefill: T = 128 tokens, empty cache (past (1, nh, 0, hs));
//   - decode: T = 1 token after a cache of 127 (past (1, nh, 127, hs)).
// Three runs alternate within each repetition (so load from other processes falls on all alike):
// the graph without the input (as exports have it), and the graph with it at 0 and at 1. Medians
// (and min – max) of the times, and the median of the paired ratios.
// Usage: node bench/logits-to-keep.bench.mjs [--repeats=N] [--vocab=65,4096,50257] [--threads=N]
import { cpuName, loadAverage, median, medianRange, utcMinute } from '@minigpt/bench-support';
import { exportModel } from '@minigpt/export-onnx';
import { resolveGPTConfig } from '@minigpt/model/config';
import { weightShapes } from '@minigpt/model/weights';
import { Random } from '@minigpt/random';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const { values: args } = parseArgs({
  options: {
    repeats: { type: 'string', default: '25' },
    vocab: { type: 'string', default: '65,4096,50257' },
    threads: { type: 'string' },
  },
});
const repeats = Number(args.repeats);
const vocabSizes = args.vocab.split(',').map(Number);
const threads = args.threads ? Number(args.threads) : undefined;
const ortVersion = createRequire(import.meta.url)('onnxruntime-node/package.json').version;

console.log(
  `num_logits_to_keep benchmark — ${utcMinute()}, ${cpuName()}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node ${ortVersion}, ${threads ?? 'default'} intra-op threads; ${loadAverage()}`,
);
console.log(
  `seed-size float32 graph (6 layers, 256 wide, 8 heads, block 128, random weights); ${repeats} repetitions after 3 warm-up ones, the three runs in turn`,
);
console.log('');
console.log(
  '| vocab | step | without the input (all positions), ms | with it, keep 0 (all), ms | with it, keep 1, ms | without / keep 1 (paired) |',
);
console.log('| --- | --- | --- | --- | --- | --- |');

for (const vocabSize of vocabSizes) {
  const config = resolveGPTConfig({ vocabSize, dropout: 0 }, 'seed');
  const { nLayer, nHead, nEmbd, blockSize } = config;
  const headSize = nEmbd / nHead;
  const random = new Random(vocabSize);
  const weights = new Map();
  for (const [name, shape] of weightShapes(config)) {
    const data = new Float32Array(shape.reduce((size, dim) => size * dim, 1));
    const isNorm = /(^|\.)ln_(1|2|f)\.weight$/.test(name);
    for (let i = 0; i < data.length; i++) data[i] = isNorm ? 1 : 0.02 * random.nextNormal();
    weights.set(name, { shape, data });
  }
  const sessionOptions = {
    graphOptimizationLevel: 'all',
    ...(threads ? { intraOpNumThreads: threads } : {}),
  };
  const plain = await ort.InferenceSession.create(
    exportModel(config, weights, 'char').onnx,
    sessionOptions,
  );
  const withKeep = await ort.InferenceSession.create(
    exportModel(config, weights, 'char', { numLogitsToKeep: true }).onnx,
    sessionOptions,
  );

  /** Feeds for T new tokens after a cache of `past` (random cache values, random ids). */
  const feedsFor = (t, past) => {
    const total = past + t;
    const ids = BigInt64Array.from({ length: t }, () => BigInt(random.nextInt(vocabSize)));
    const feeds = {
      input_ids: new ort.Tensor('int64', ids, [1, t]), // (1, T)
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]), // (1, P+T)
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: t }, (_, i) => BigInt(past + i)),
        [1, t],
      ), // (1, T)
    };
    for (let layer = 0; layer < nLayer; layer++) {
      for (const kind of ['key', 'value']) {
        const data = Float32Array.from({ length: nHead * past * headSize }, () =>
          random.nextNormal(),
        );
        feeds[`past_key_values.${layer}.${kind}`] = new ort.Tensor('float32', data, [
          1,
          nHead,
          past,
          headSize,
        ]); // (1, nh, P, hs)
      }
    }
    return feeds;
  };
  const keep = (k) => new ort.Tensor('int64', BigInt64Array.of(BigInt(k)), []); // scalar

  for (const [step, t, past] of [
    [`prefill T=${blockSize}`, blockSize, 0],
    [`decode T=1, past ${blockSize - 1}`, 1, blockSize - 1],
  ]) {
    const feeds = feedsFor(t, past);
    /** k undefined: the graph without the input; else the graph with it, set to k. */
    const timed = async (k) => {
      const begin = performance.now();
      const out =
        k === undefined
          ? await plain.run(feeds)
          : await withKeep.run({ ...feeds, num_logits_to_keep: keep(k) });
      const ms = performance.now() - begin;
      const expected = k ? k : t;
      if (out.logits.dims[1] !== expected)
        throw new Error(`keep ${k}: logits ${out.logits.dims} (expected ${expected} positions)`);
      return ms;
    };
    const variants = [undefined, 0, 1];
    const times = variants.map(() => []);
    for (let i = -3; i < repeats; i++) {
      // Rotate which goes first, so none always follows another.
      for (let j = 0; j < variants.length; j++) {
        const index = (i + 3 + j) % variants.length;
        const ms = await timed(variants[index]);
        if (i >= 0) times[index].push(ms); // the first 3 are warm-up
      }
    }
    const ratios = times[0].map((ms, i) => ms / times[2][i]);
    console.log(
      `| ${vocabSize} | ${step} | ${medianRange(times[0], 2)} | ${medianRange(times[1], 2)} | ${medianRange(times[2], 2)} | ${median(ratios).toFixed(2)}× |`,
    );
  }
  await Promise.all([plain.release(), withKeep.release()]);
}
console.log('');
console.log(
  `at the end: ${loadAverage()} (${cpus().length} cores; above ${cpus().length} other work was running)`,
);
