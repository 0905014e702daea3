// Why a decode step costs what it does, float32 against int8, batch 1 against 16, and the two
// ways of keeping the cache on the CPU, on the seed-size export generate.bench.mjs builds
// (random weights): the published graph with present written into preallocated ping-pong
// buffers ('write-present'), and the graph as runner-node loads it, each step's rows declared
// in present's place and written into the cache in place ('rows-in-place', cacheRowsModel).
// Four measurements (and a part 2b):
//   1. onnxruntime's profiler (SessionOptions.enableProfiling): per-operator kernel time per
//      step, the sum of the kernels against the whole model_run and against session.run as
//      JS sees it, through @minigpt/runtime's decoder. 8-token prefill, 20 warm-up steps, then
//      --steps measured (T = 1).
//   2. One decode step (T = 1, a cache of 100) fetching logits and the whole present cache
//      (preallocated, as runner-node) against fetching the logits only: the difference is what
//      returning the cache through onnxruntime-node costs (the graph computes present either way).
//      2b. On the rows-in-place graph, fetching the step's rows as one output per cache input
//      against packed into one (CACHE_ROWS_OUTPUT, as the decoder fetches them).
//   3. generateBatch over @minigpt/runtime's decoder with each of the two: tokens/s at batch
//      1, 4 and 16, 100 new tokens, greedy, interleaved rounds, and the µs per step spent
//      outside session.run; and 'rows-in-place' with the published graph's past-attention Ifs
//      kept, against cacheRowsModel's inlined ones.
//   4. One decode step at cache lengths 0, 32, 64, 96, batch 1 against 16, on the rows-in-place
//      graph: what attention over the cache adds to a step as the cache grows, and batch 16's
//      tokens/s over batch 1's at each length.
// The profiler's own bookkeeping inflates (1); (2), (3) and (4) run without it. Each is a median
// (min – max) over rounds where it says so.
// Usage: node bench/decode-profile.mjs [--steps=N] [--rounds=N] [--threads=N]
import {
  CACHE_ROWS_OUTPUT,
  GROWTH_SLOTS,
  cacheNames,
  cacheRowsModel,
  createOnnxDecoder,
  generateBatch,
  parseManifest,
} from '@minigpt/runtime';
import { cpuName, loadAverage, median, medianRange, utcMinute } from '@minigpt/bench-support';
import { tokenizerFromJSON } from '@minigpt/tokenizer';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '5' },
    threads: { type: 'string' },
  },
});
const steps = Number(args.steps);
const rounds = Number(args.rounds);
const WARM_UP = 20;
const PREFILL = 8;
if (PREFILL + WARM_UP + steps > 128)
  throw new Error('--steps: at most 100 (the cache must fit block 128)');
const sessionOptions = {
  graphOptimizationLevel: 'all',
  ...(args.threads ? { intraOpNumThreads: Number(args.threads) } : {}),
};
const ortVersion = createRequire(import.meta.url)('onnxruntime-node/package.json').version;

const work = mkdtempSync(join(tmpdir(), 'minigpt-decode-profile-'));
try {
  const exportDir = join(work, 'seed');
  mkdirSync(exportDir);
  const builder = fileURLToPath(new URL('./generate.bench.mjs', import.meta.url));
  const child = spawnSync(process.execPath, [builder, `--write-export=${exportDir}`], {
    stdio: 'inherit',
  });
  if (child.status !== 0) throw new Error('building the benchmark model failed');
  const manifest = parseManifest(
    JSON.parse(readFileSync(join(exportDir, 'minigpt.json'), 'utf8')),
    'minigpt.json',
  );
  const tokenizer = tokenizerFromJSON(
    JSON.parse(readFileSync(join(exportDir, manifest.files.vocab), 'utf8')),
    manifest.files.vocab,
  );
  const { nHead, nEmbd } = manifest.model;
  const headSize = nEmbd / nHead;
  const names = cacheNames(manifest); // per cache input: input, output (present), added (rows)
  const files = { fp32: manifest.files.model, int8: manifest.files.modelQuantized };

  console.log(
    `decode profile — ${utcMinute()}, ${cpuName()}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node ${ortVersion}, ${args.threads ?? 'default'} intra-op threads; ${loadAverage()}`,
  );

  /** Feeds for T new tokens per row after a cache of `past` (all slots real). */
  const baseFeeds = (batch, t, past) => ({
    input_ids: new ort.Tensor('int64', new BigInt64Array(batch * t).fill(2n), [batch, t]), // (B, T)
    attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * (past + t)).fill(1n), [
      batch,
      past + t,
    ]), // (B, P+T)
    position_ids: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: batch * t }, (_, i) => BigInt(past + (i % t))),
      [batch, t],
    ), // (B, T)
    // Exports leave out num_logits_to_keep (at T = 1 the logits are one row either way).
    ...(manifest.inputs.numLogitsToKeep
      ? { [manifest.inputs.numLogitsToKeep]: new ort.Tensor('int64', BigInt64Array.of(1n), []) } // ()
      : {}),
  });
  /** ms per `session.run` over 30 runs of the same feeds (parts 2, 2b and 4). */
  const msPerStep = async (session, feeds, fetches) => {
    const begin = performance.now();
    for (let i = 0; i < 30; i++) await session.run(feeds, fetches);
    return (performance.now() - begin) / 30;
  };
  /** A (B, nh, length, hs) view of the start of `buffer`. */
  const view = (buffer, batch, length) =>
    new ort.Tensor('float32', buffer.subarray(0, batch * nHead * length * headSize), [
      batch,
      nHead,
      length,
      headSize,
    ]);
  /** Feeds for one decode step (T = 1) over a zeroed cache of `capacity` slots (parts 2b, 4). */
  const zeroCacheFeeds = (batch, capacity) => {
    const feeds = baseFeeds(batch, 1, capacity);
    for (const name of names)
      feeds[name.input] = view(
        new Float32Array(batch * nHead * capacity * headSize),
        batch,
        capacity,
      );
    return feeds;
  };

  // The two graphs of each file: as published, with present written into preallocated
  // ping-pong buffers ('write-present'), and as runner-node loads it, the rows declared in
  // present's place ('rows-in-place': cacheRowsModel).
  const graphBytes = {};
  for (const dtype of ['fp32', 'int8']) {
    const published = readFileSync(join(exportDir, files[dtype]));
    graphBytes[`${dtype} write-present`] = published;
    graphBytes[`${dtype} rows-in-place`] = cacheRowsModel(published, manifest);
    // cacheRowsModel's edit without its inlining of the past-attention Ifs, for part 3.
    graphBytes[`${dtype} rows-in-place, Ifs kept`] = cacheRowsModel(published, manifest, {
      inlinePastAttention: false,
    });
  }
  /** The decoder's binding; `clock`, where given, sums the runs and their time (part 3). */
  const bindingOf = (session, clock) => ({
    int64: (data, dims) => new ort.Tensor('int64', data, dims),
    float32: (data, dims) => new ort.Tensor('float32', data, dims),
    run: async (feeds, fetches) => {
      if (!clock) return session.run(feeds, fetches);
      const begin = performance.now();
      try {
        return await session.run(feeds, fetches);
      } finally {
        clock.runs++;
        clock.ms += performance.now() - begin;
      }
    },
  });
  /** One step of T tokens per row after `past` cached ones, every slot real. */
  const stepInput = (batch, t, past) => ({
    batch,
    ids: new Array(batch * t).fill(2), // (B, T)
    mask: new Array(batch * (past + t)).fill(1), // (B, P+T)
    positions: Array.from({ length: batch * t }, (_, i) => past + (i % t)), // (B, T)
  });

  // 1. The profiler.
  const profile = async (dtype, strategy, batch) => {
    const prefix = join(work, `profile-${dtype}-${strategy}-b${batch}`);
    const session = await ort.InferenceSession.create(graphBytes[`${dtype} ${strategy}`], {
      ...sessionOptions,
      enableProfiling: true,
      profileFilePrefix: prefix,
    });
    const decoder = createOnnxDecoder(bindingOf(session), manifest, strategy);
    let { state } = await decoder.forward(stepInput(batch, PREFILL, 0), null);
    const step = async (past) => {
      const next = await decoder.forward(stepInput(batch, 1, past), state);
      decoder.release(state);
      state = next.state;
    };
    for (let s = 0; s < WARM_UP; s++) await step(PREFILL + s);
    const begin = performance.now();
    for (let s = WARM_UP; s < WARM_UP + steps; s++) await step(PREFILL + s);
    const wallUs = ((performance.now() - begin) * 1000) / steps;
    decoder.release(state);
    session.endProfiling();
    await session.release();
    const file = readdirSync(work).find((f) =>
      f.startsWith(`profile-${dtype}-${strategy}-b${batch}`),
    );
    const events = JSON.parse(readFileSync(join(work, file), 'utf8'));
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
    const measured = runs.slice(1 + WARM_UP); // after the prefill and the warm-up steps
    const kernels = events.filter(
      (e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= measured[0].ts,
    );
    const byOp = new Map();
    for (const e of kernels) byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur);
    return {
      wallUs,
      runUs: measured.reduce((sum, e) => sum + e.dur, 0) / steps,
      kernelUs: kernels.reduce((sum, e) => sum + e.dur, 0) / steps,
      kernelsPerStep: kernels.length / steps,
      byOp,
    };
  };
  console.log('');
  console.log(
    `1. onnxruntime profiler, ${steps} decode steps (T = 1, cache ${PREFILL + WARM_UP} → ${PREFILL + WARM_UP + steps}), µs per step; profiling inflates every figure`,
  );
  const variants = [
    ['fp32', 'write-present'],
    ['fp32', 'rows-in-place'],
    ['int8', 'write-present'],
    ['int8', 'rows-in-place'],
  ];
  for (const batch of [1, 4, 16]) {
    // Which runs first alternates with the batch size, so no variant always follows another.
    const order = batch === 4 ? [...variants].reverse() : variants;
    const result = new Map();
    for (const [dtype, strategy] of order)
      result.set(`${dtype} ${strategy}`, await profile(dtype, strategy, batch));
    const columns = variants.map((variant) => result.get(variant.join(' ')));
    console.log('');
    console.log(
      `| batch ${batch} | ${variants.map((variant) => variant.join(', ')).join(' | ')} |`,
    );
    console.log(`| --- |${' --- |'.repeat(variants.length)}`);
    const row = (label, cell) => console.log(`| ${label} | ${columns.map(cell).join(' | ')} |`);
    row('session.run as JS sees it', (r) => r.wallUs.toFixed(0));
    row('model_run (profiler)', (r) => r.runUs.toFixed(0));
    row('sum of kernels', (r) => r.kernelUs.toFixed(0));
    row('kernels per step', (r) => r.kernelsPerStep.toFixed(0));
    const ops = [...new Set(columns.flatMap((r) => [...r.byOp.keys()]))]
      .map((op) => [op, Math.max(...columns.map((r) => r.byOp.get(op) ?? 0))])
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([op]) => op);
    for (const op of ops)
      row(`  ${op}`, (r) => (r.byOp.has(op) ? (r.byOp.get(op) / steps).toFixed(0) : '–'));
  }

  // 2. Returning the cache through onnxruntime-node.
  console.log('');
  console.log(
    `2. one decode step (T = 1, cache 100), ms, median (min – max) of ${rounds} rounds of 30 steps each`,
  );
  console.log('');
  console.log('| graph | batch | logits + present (preallocated) | logits only | ratio |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const dtype of ['fp32', 'int8']) {
    const session = await ort.InferenceSession.create(
      join(exportDir, files[dtype]),
      sessionOptions,
    );
    for (const batch of [1, 16]) {
      const past = 100;
      const feeds = baseFeeds(batch, 1, past);
      const present = { logits: null };
      for (const name of names) {
        feeds[name.input] = view(new Float32Array(batch * nHead * past * headSize), batch, past);
        present[name.output] = view(
          new Float32Array(batch * nHead * (past + 1) * headSize),
          batch,
          past + 1,
        );
      }
      const time = (fetches) => msPerStep(session, feeds, fetches);
      await time(present);
      await time(['logits']);
      const withCache = [];
      const logitsOnly = [];
      for (let round = 0; round < rounds; round++) {
        withCache.push(await time(present));
        logitsOnly.push(await time(['logits']));
      }
      const ratios = withCache.map((ms, i) => ms / logitsOnly[i]);
      console.log(
        `| ${dtype} | ${batch} | ${medianRange(withCache, 2)} | ${medianRange(logitsOnly, 2)} | ${median(ratios).toFixed(2)}× |`,
      );
    }
    await session.release();
  }

  // 2b. Fetching the step's rows: one output per cache input, or packed into one
  // (CACHE_ROWS_OUTPUT, what the 'rows-in-place' decoder fetches). Same session, same feeds.
  console.log('');
  console.log(
    `2b. the rows-in-place graph, one decode step (T = 1, cache capacity 96), ms, median (min – max) of ${rounds} rounds of 30 steps each`,
  );
  console.log('');
  console.log(
    `| graph | batch | logits + rows, ${names.length} outputs | logits + rows packed, 1 output | packed / ${names.length} outputs (paired) |`,
  );
  console.log('| --- | --- | --- | --- | --- |');
  for (const dtype of ['fp32', 'int8']) {
    const session = await ort.InferenceSession.create(
      graphBytes[`${dtype} rows-in-place`],
      sessionOptions,
    );
    for (const batch of [1, 16]) {
      const capacity = 96;
      const feeds = zeroCacheFeeds(batch, capacity);
      const separate = ['logits', ...names.map((name) => name.added)];
      const packed = ['logits', CACHE_ROWS_OUTPUT];
      const time = (fetches) => msPerStep(session, feeds, fetches);
      await time(separate);
      await time(packed);
      const separateMs = [];
      const packedMs = [];
      for (let round = 0; round < rounds; round++) {
        // Which goes first alternates, so neither always follows the other.
        if (round % 2 === 0) {
          separateMs.push(await time(separate));
          packedMs.push(await time(packed));
        } else {
          packedMs.push(await time(packed));
          separateMs.push(await time(separate));
        }
      }
      console.log(
        `| ${dtype} | ${batch} | ${medianRange(separateMs, 3)} | ${medianRange(packedMs, 3)} | ${medianRange(
          packedMs.map((ms, i) => ms / separateMs[i]),
          2,
        )}× |`,
      );
    }
    await session.release();
  }

  // 3. The cache strategy under generateBatch; and rows-in-place with the published graph's
  // past-attention Ifs kept, against cacheRowsModel's inlined ones.
  const decoders = [];
  const sessions = [];
  const generateVariants = [
    ...variants,
    ['fp32', 'rows-in-place, Ifs kept'],
    ['int8', 'rows-in-place, Ifs kept'],
  ];
  for (const [dtype, strategy] of generateVariants) {
    const session = await ort.InferenceSession.create(
      graphBytes[`${dtype} ${strategy}`],
      sessionOptions,
    );
    sessions.push(session);
    const clock = { runs: 0, ms: 0 };
    decoders.push({
      dtype,
      strategy,
      clock,
      decoder: createOnnxDecoder(bindingOf(session, clock), manifest, strategy.split(',')[0]),
    });
  }
  const prompts = Array.from({ length: 16 }, (_, i) => `ROMEO:\n${'a'.repeat(i)}`); // 7–22 characters
  /** Tokens/s, and µs per step spent outside session.run (the decoder, sampling, the loop). */
  const generateOnce = async (decoder, clock, batch) => {
    Object.assign(clock, { runs: 0, ms: 0 });
    const begin = performance.now();
    await generateBatch(decoder, tokenizer, prompts.slice(0, batch), {
      maxNewTokens: 100,
      temperature: 0,
    }).texts();
    const ms = performance.now() - begin;
    return { rate: (batch * 100) / (ms / 1000), outsideUs: ((ms - clock.ms) * 1000) / clock.runs };
  };
  const results = new Map();
  const outside = new Map();
  for (let round = -2; round < rounds; round++) {
    // Odd rounds run the variants in reverse, so no variant always follows another.
    for (const { dtype, strategy, decoder, clock } of round % 2
      ? [...decoders].reverse()
      : decoders) {
      for (const batch of [1, 4, 16]) {
        const { rate, outsideUs } = await generateOnce(decoder, clock, batch);
        if (round < 0) continue; // warm-up
        const key = `${dtype} ${strategy} ${batch}`;
        results.set(key, [...(results.get(key) ?? []), rate]);
        outside.set(key, [...(outside.get(key) ?? []), outsideUs]);
      }
    }
  }
  console.log('');
  console.log(
    `3. generateBatch, 100 new tokens per row, greedy: total tokens/s, median (min – max) of ${rounds} rounds`,
  );
  console.log('');
  console.log(
    '| graph | cache strategy | batch 1 | batch 4 | batch 16 | batch 16 / batch 1 (paired) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const { dtype, strategy } of decoders) {
    const rates = (batch) => results.get(`${dtype} ${strategy} ${batch}`);
    const ratio = rates(16).map((rate, i) => rate / rates(1)[i]);
    console.log(
      `| ${dtype} | ${strategy} | ${medianRange(rates(1), 0)} | ${medianRange(rates(4), 0)} | ${medianRange(rates(16), 0)} | ${medianRange(ratio, 2)}× |`,
    );
  }
  console.log('');
  console.log(
    "outside onnxruntime: µs per step (a generation's time less its session.run calls, over its steps), median (min – max); what batching pays in JavaScript",
  );
  console.log('');
  console.log('| graph | cache strategy | batch 1 | batch 4 | batch 16 |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const { dtype, strategy } of decoders) {
    const micros = (batch) => medianRange(outside.get(`${dtype} ${strategy} ${batch}`), 0);
    console.log(`| ${dtype} | ${strategy} | ${micros(1)} | ${micros(4)} | ${micros(16)} |`);
  }
  console.log('');
  for (const dtype of ['fp32', 'int8'])
    for (const batch of [1, 4, 16]) {
      const inlined = results.get(`${dtype} rows-in-place ${batch}`);
      const kept = results.get(`${dtype} rows-in-place, Ifs kept ${batch}`);
      const ratio = inlined.map((rate, round) => rate / kept[round]);
      console.log(
        `${dtype}, batch ${batch}: Ifs inlined / kept ${medianRange(ratio, 2)}× (same round, paired)`,
      );
    }
  await Promise.all(sessions.map((session) => session.release()));

  // 4. One decode step against the cache's length, batch 1 and 16: how much of batch 16's step
  // is attention over the cache (its growth with the length) and how much is not (its time at
  // an empty cache: the weight products and the rest). Batch 16's tokens/s over batch 1's at
  // each length is 16 × (batch 1's step) / (batch 16's step), paired within a round.
  // The capacities a 'rows-in-place' cache takes on the way to block 128: whole GROWTH_SLOTS.
  const capacities = [0, 1, 2, 3].map((growths) => growths * GROWTH_SLOTS);
  console.log('');
  console.log(
    `4. one decode step (T = 1) against the cache's length, rows-in-place graph, ms, median (min – max) of ${rounds} rounds of 30 steps each; batch 16's tokens/s over batch 1's, paired`,
  );
  console.log('');
  console.log(`| graph | batch | ${capacities.map((slots) => `cache ${slots}`).join(' | ')} |`);
  console.log(`| --- | --- | ${capacities.map(() => '---').join(' | ')} |`);
  for (const dtype of ['fp32', 'int8']) {
    const session = await ort.InferenceSession.create(
      graphBytes[`${dtype} rows-in-place`],
      sessionOptions,
    );
    const fetches = ['logits', CACHE_ROWS_OUTPUT];
    const configurations = [];
    for (const batch of [1, 16])
      for (const capacity of capacities)
        configurations.push({ batch, capacity, feeds: zeroCacheFeeds(batch, capacity), ms: [] });
    for (let round = -1; round < rounds; round++)
      for (const configuration of round % 2 ? [...configurations].reverse() : configurations) {
        const ms = await msPerStep(session, configuration.feeds, fetches);
        if (round >= 0) configuration.ms.push(ms);
      }
    const at = (batch, capacity) =>
      configurations.find((c) => c.batch === batch && c.capacity === capacity).ms;
    for (const batch of [1, 16])
      console.log(
        `| ${dtype} | ${batch} | ${capacities.map((capacity) => medianRange(at(batch, capacity), 3)).join(' | ')} |`,
      );
    console.log(
      `| ${dtype} | 16 / 1, tokens/s | ${capacities
        .map(
          (capacity) =>
            `${medianRange(
              at(1, capacity).map((ms, round) => (16 * ms) / at(16, capacity)[round]),
              2,
            )}×`,
        )
        .join(' | ')} |`,
    );
    await session.release();
  }
  console.log('');
  console.log(
    `at the end: ${loadAverage()} (${cpus().length} cores; above ${cpus().length} other work was running)`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
