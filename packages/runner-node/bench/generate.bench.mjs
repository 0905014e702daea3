// Benchmark: generation with onnxruntime-node on CPU, seed-size model (6 layers, 256 wide,
// 8 heads, block 128, vocab 65 char; random weights — speed does not depend on them).
//   - total new tokens/s over all rows at batch 1, 4 and 16 (generateBatch, 100 new tokens
//     per row, greedy), float32 and int8 (loadModel dtype 'q8');
//   - the reference, in the same process and run: transformers.js (@huggingface/transformers)
//     on the same export directory, same prompt, greedy, the same number of new tokens, batch 1,
//     fp32 and q8;
//   - batch 1, 500 new tokens (temperature 1) with the default refill and with the exact sliding
//     window (refill = blockSize): the figures of issue #4;
//   - the fused graph (export option `fused`: onnxruntime's com.microsoft operators) of the same
//     weights, fp32 and int8, batch 1 and 16, beside the standard graph;
//   - PyTorch's greedy generation with a KV cache on the same weights (bench/pytorch_generate.py,
//     Debian's python3-torch; MINIGPT_PYTHON overrides the interpreter) at 1 thread, 2 threads,
//     and 1 ATen thread with OpenBLAS on 2 (tooling/bench-support's pytorch_threads.py),
//     after the interleaved rounds, in the same run; its greedy ids are checked against ours;
//   - transformers.js's int8 ids fed through the published int8 graph and through runner-node's
//     form of it side by side: where and why int8 greedy tokens can part (compareGraphForms).
//   - what a decode step reads, in bytes: weights (each graph file) and cache (K and V over the
//     slots the runtime feeds) at batch 1 and 16 — why batching gains less in int8.
// Configurations run interleaved, one each per round, so that load from other processes falls
// on all of them alike; each is reported as the median and the range (min – max) over rounds,
// and ratios are taken within a round (paired) before their median and range.
// Usage: node bench/generate.bench.mjs [--rounds=N] [--warmup=N] [--threads=N] [--new-tokens=N]
//          [--no-pytorch]
// The model is built and exported in a child process, so TensorFlow.js and the exporter are not
// loaded in the process that measures (as in an app that only runs exported models).
import {
  cpuName,
  loadAverage,
  median,
  medianRange,
  ratioAgainstGoal,
  utcMinute,
} from '@minigpt/bench-support';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: {
    'write-export': { type: 'string' },
    threads: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    'new-tokens': { type: 'string', default: '100' },
    fused: { type: 'boolean', default: false },
    preset: { type: 'string', default: 'seed' },
    config: { type: 'string', default: '{}' },
    'no-pytorch': { type: 'boolean', default: false },
  },
});

const VOCAB = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const EXPORT_NAME = 'seed';

if (args['write-export']) {
  // Child process: random seed-size weights → export directory with the int8 graph too.
  const { writeExport } = await import('@minigpt/export-onnx/node');
  const { resolveGPTConfig } = await import('@minigpt/model/config');
  const { weightShapes } = await import('@minigpt/model/weights');
  const { Random } = await import('@minigpt/random');
  const { CharTokenizer } = await import('@minigpt/tokenizer');
  const tokenizer = CharTokenizer.fromText(VOCAB);
  // The seed preset by default; --preset and --config (GPTConfig keys as JSON) let other
  // benches (gpu.bench, under-load.bench, the trainer's scaling.bench) export other shapes.
  const config = resolveGPTConfig(
    { ...JSON.parse(args.config), vocabSize: tokenizer.vocabSize, dropout: 0 },
    args.preset,
  );
  // Entries of std 0.4 (LayerNorm scales 1): nanoGPT's 0.02 gives near-uniform logits, so greedy
  // decoding would repeat one id and the check that both implementations pick the same tokens
  // would say nothing.
  const random = new Random(7);
  const weights = new Map();
  for (const [name, shape] of weightShapes(config)) {
    const data = new Float32Array(shape.reduce((size, dim) => size * dim, 1));
    const isNorm = /(^|\.)ln_(1|2|f)\.weight$/.test(name);
    for (let i = 0; i < data.length; i++) data[i] = isNorm ? 1 : 0.4 * random.nextNormal();
    weights.set(name, { shape, data });
  }
  // The standard graph with model.safetensors (PyTorch's reference reads it), or the fused one.
  await writeExport(
    { config, weights, tokenizer: tokenizer.toJSON() },
    {
      outDir: args['write-export'],
      quantize: 'int8',
      ...(args.fused ? { fused: true } : { safetensors: true }),
    },
  );
  process.exit(0);
}

const rounds = Number(args.rounds);
const warmup = Number(args.warmup);
const newTokens = Number(args['new-tokens']);
const threads = args.threads ? Number(args.threads) : undefined;
// Short prompts (≤ 28 characters), so prompt + 100 new tokens stay within block 128 and no
// configuration re-prefills: batch 1 uses the first, batch N the first N.
const PROMPTS = [
  'ROMEO:\n',
  'First Citizen:\nBefore we',
  'JULIET:\nO Romeo, Romeo!',
  'KING RICHARD III:\nNow is',
  'To be, or not to be',
  'MENENIUS:\nWhat work',
  'All:\nSpeak, speak.',
  'HAMLET:\n',
  'Second Citizen:\nOne word',
  'LADY MACBETH:\nOut, damned',
  'The quality of mercy',
  'O, what a rogue',
  'CORIOLANUS:\nWhat',
  'Friends, Romans,',
  'Now is the winter',
  'GLOUCESTER:\nI',
];

const require = createRequire(import.meta.url);
const ortVersion = require('onnxruntime-node/package.json').version;
const { loadModel } = await import('@minigpt/runner-node');
const { cacheCapacity } = await import('@minigpt/runtime');
const { env, AutoModelForCausalLM, AutoTokenizer } = await import('@huggingface/transformers');
const hfVersion = env.version;

const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-generate-'));
try {
  const exportDir = join(work, EXPORT_NAME);
  const fusedDir = join(work, `${EXPORT_NAME}-fused`);
  for (const [dir, extra] of [
    [exportDir, []],
    [fusedDir, ['--fused']],
  ]) {
    mkdirSync(dir);
    const child = spawnSync(
      process.execPath,
      [fileURLToPath(import.meta.url), `--write-export=${dir}`, ...extra],
      { stdio: 'inherit' },
    );
    if (child.status !== 0) throw new Error('building the benchmark model failed');
  }

  const loadOptions = threads ? { intraOpThreads: threads } : {};
  const ours = {
    fp32: await loadModel(exportDir, { ...loadOptions, dtype: 'fp32' }),
    q8: await loadModel(exportDir, { ...loadOptions, dtype: 'q8' }),
  };
  const fused = {
    fp32: await loadModel(fusedDir, { ...loadOptions, dtype: 'fp32' }),
    q8: await loadModel(fusedDir, { ...loadOptions, dtype: 'q8' }),
  };
  env.allowRemoteModels = false;
  env.localModelPath = work;
  const hfTokenizer = await AutoTokenizer.from_pretrained(EXPORT_NAME);
  const hfSessionOptions = threads ? { session_options: { intraOpNumThreads: threads } } : {};
  const theirs = {
    fp32: await AutoModelForCausalLM.from_pretrained(EXPORT_NAME, {
      device: 'cpu',
      dtype: 'fp32',
      ...hfSessionOptions,
    }),
    q8: await AutoModelForCausalLM.from_pretrained(EXPORT_NAME, {
      device: 'cpu',
      dtype: 'q8',
      ...hfSessionOptions,
    }),
  };

  /**
   * What one decode step reads, in bytes: the weights (the graph file, nearly all of it
   * weights) and the cache — K and V of every row in every layer, over the past slots the
   * runtime feeds (its capacity, @minigpt/runtime's cacheCapacity), as a mean over
   * a generation's decode steps. At batch 1 the weights dominate; at batch 16 the cache can,
   * and int8 shrinks only the weights.
   */
  const printBytesPerStep = () => {
    const { nLayer, nEmbd, blockSize } = ours.fp32.manifest.model;
    const cacheBytes = (batch) => {
      const prompts = PROMPTS.slice(0, batch);
      const prefill = Math.max(...prompts.map((p) => ours.fp32.tokenizer.encode(p).length));
      let sum = 0;
      // Decode step j (1 … newTokens − 1) has prefill + j − 1 tokens cached.
      for (let step = 1; step < newTokens; step++) {
        const slots = cacheCapacity(prefill + step - 1, blockSize);
        sum += batch * nLayer * 2 * slots * nEmbd * 4; // K and V, (B, nh, slots, hs) float32
      }
      return sum / (newTokens - 1);
    };
    const mb = (bytes) => (bytes / 1e6).toFixed(1);
    console.log('');
    console.log(
      `bytes a decode step reads (weights: the graph file; cache: K and V over the slots fed, mean over ${newTokens - 1} decode steps):`,
    );
    const [one, sixteen] = [cacheBytes(1), cacheBytes(16)];
    for (const [dtype, file] of [
      ['fp32', 'onnx/model.onnx'],
      ['q8', 'onnx/model_quantized.onnx'],
    ]) {
      const weights = statSync(join(exportDir, file)).size;
      console.log(
        `  ${dtype}: weights ${mb(weights)} MB; cache ${mb(one)} MB at batch 1, ${mb(sixteen)} MB at batch 16 — batch 16 reads ${((weights + sixteen) / (weights + one)).toFixed(2)}× the bytes of batch 1 for 16× the tokens`,
      );
    }
  };

  const started = new Date();
  console.log(
    `generate benchmark — ${utcMinute(started)}, ${cpuName()}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node ${ortVersion}, transformers.js ${hfVersion}, ${threads ?? 'default'} intra-op threads; ${loadAverage()}`,
  );
  console.log(
    `seed-size model (6 layers, 256 wide, 8 heads, block 128, vocab 65, random weights); ${rounds} rounds after ${warmup} warm-up rounds, configurations interleaved within each round`,
  );

  /** Ours: total new tokens/s over all rows, and row 0's first-token time and tokens. */
  const runOurs = async (model, batch, options) => {
    const prompts = PROMPTS.slice(0, batch);
    const begin = performance.now();
    const generation = model.generateBatch(prompts, options);
    await generation.texts();
    const seconds = (performance.now() - begin) / 1000;
    const total = generation.rows.reduce((sum, row) => sum + row.stats.newTokens, 0);
    return {
      tokensPerSec: total / seconds,
      firstTokenMs: generation.rows[0].stats.firstTokenMs,
      tokens: [...generation.rows[0].stats.tokens],
    };
  };
  /** transformers.js: greedy, exactly `newTokens` new tokens (min = max), batch 1. */
  const runTheirs = async (model) => {
    const inputs = hfTokenizer(PROMPTS[0]);
    const promptLength = inputs.input_ids.dims[1];
    const begin = performance.now();
    const output = await model.generate({
      ...inputs,
      max_new_tokens: newTokens,
      min_new_tokens: newTokens,
      do_sample: false,
    });
    const seconds = (performance.now() - begin) / 1000;
    const ids = output.tolist()[0].map(Number).slice(promptLength);
    return { tokensPerSec: ids.length / seconds, tokens: ids };
  };

  /**
   * Where runner-node's greedy tokens and transformers.js's can part on the same file. runner-node
   * runs the graph with the cache's rows written in place and its empty slots masked
   * (cacheRowsModel); transformers.js runs the graph as published, concatenating present. The
   * two sum attention over different slot counts, so their float32 results differ in the last
   * bits; int8 quantizes each activation to 1 of 255 steps, which can turn such a difference
   * into a whole step. This feeds transformers.js's q8 ids through the published q8 graph (the
   * runtime's 'write-present' decoder, as transformers.js runs it) and through runner-node's
   * session side by side, and prints how many of those ids the published graph picks itself,
   * how far the two forms' logits are apart (and the float32 graph's from the int8 one, for
   * scale), and the top-two margin where runner-node's pick first differs.
   */
  async function compareGraphForms(hfIds) {
    const ort = require('onnxruntime-node');
    const { createOnnxDecoder } = await import('@minigpt/runtime');
    const published = async (dtype) => {
      const { manifest } = ours[dtype];
      const file = dtype === 'q8' ? manifest.files.modelQuantized : manifest.files.model;
      const session = await ort.InferenceSession.create(join(exportDir, file), {
        graphOptimizationLevel: 'all',
        ...(threads ? { intraOpNumThreads: threads } : {}),
      });
      const binding = {
        int64: (data, dims) => new ort.Tensor('int64', data, dims),
        float32: (data, dims) => new ort.Tensor('float32', data, dims),
        run: (feeds, fetches) => session.run(feeds, fetches),
      };
      return { session, decoder: createOnnxDecoder(binding, manifest, 'write-present') };
    };
    const publishedQ8 = await published('q8');
    const publishedFp32 = await published('fp32');
    const decoders = [ours.q8.session, publishedQ8.decoder, publishedFp32.decoder];
    const states = decoders.map(() => null);
    const argmax = (logits) => logits.indexOf(Math.max(...logits));
    const maxDifference = (a, b) => a.reduce((max, x, i) => Math.max(max, Math.abs(x - b[i])), 0);
    let ids = [...ours.q8.tokenizer.encode(PROMPTS[0])];
    let past = 0;
    let publishedAgrees = 0;
    let formsApart = 0;
    let quantizationApart = 0;
    let firstSplit;
    for (let step = 0; step < hfIds.length; step++) {
      const input = {
        batch: 1,
        ids,
        mask: new Array(past + ids.length).fill(1),
        positions: ids.map((_, i) => past + i),
      };
      const logits = [];
      for (let k = 0; k < decoders.length; k++) {
        const { logits: rowLogits, state } = await decoders[k].forward(input, states[k]);
        if (states[k]) decoders[k].release(states[k]);
        states[k] = state;
        logits.push(Array.from(rowLogits));
      }
      past += ids.length;
      const [inPlace, asPublished, float32] = logits;
      if (argmax(asPublished) === hfIds[step]) publishedAgrees++;
      formsApart = Math.max(formsApart, maxDifference(inPlace, asPublished));
      quantizationApart = Math.max(quantizationApart, maxDifference(asPublished, float32));
      if (firstSplit === undefined && argmax(inPlace) !== argmax(asPublished)) {
        const [top, second] = [...asPublished].sort((a, b) => b - a);
        firstSplit = { step, margin: top - second };
      }
      ids = [hfIds[step]];
    }
    decoders.forEach((decoder, k) => decoder.release(states[k]));
    await Promise.all([publishedQ8.session.release(), publishedFp32.session.release()]);
    console.log(
      `  q8, transformers.js's ${hfIds.length} ids fed through the published int8 graph (present concatenated, as transformers.js runs it): it picks ${publishedAgrees} of them itself; runner-node's form of the same graph (rows in place, empty slots masked) gives logits up to ${formsApart.toPrecision(2)} away from it (the float32 graph's are up to ${quantizationApart.toPrecision(2)} from the int8 one's) and ${firstSplit ? `first picks another token at token ${firstSplit.step}, where the published graph's top two logits were ${firstSplit.margin.toPrecision(2)} apart` : 'picks the same token at every step'}`,
    );
  }

  const greedy = { maxNewTokens: newTokens, temperature: 0 };
  const configurations = [];
  for (const dtype of ['fp32', 'q8']) {
    for (const batch of [1, 4, 16]) {
      configurations.push({
        key: `ours ${dtype} b${batch}`,
        label: `minigpt runner-node, ${dtype}, batch ${batch}`,
        run: () => runOurs(ours[dtype], batch, greedy),
      });
    }
  }
  for (const dtype of ['fp32', 'q8']) {
    for (const batch of [1, 16]) {
      configurations.push({
        key: `fused ${dtype} b${batch}`,
        label: `minigpt runner-node, fused graph, ${dtype}, batch ${batch}`,
        run: () => runOurs(fused[dtype], batch, greedy),
      });
    }
  }
  for (const dtype of ['fp32', 'q8']) {
    configurations.push({
      key: `hf ${dtype} b1`,
      label: `transformers.js ${hfVersion}, ${dtype}, batch 1`,
      run: () => runTheirs(theirs[dtype]),
    });
  }
  configurations.push(
    {
      key: 'refill default',
      label: 'runner-node fp32, batch 1, 500 tokens, T=1, refill blockSize/2',
      run: () => runOurs(ours.fp32, 1, { maxNewTokens: 500, temperature: 1, seed: 1 }),
    },
    {
      key: 'refill exact',
      label: 'runner-node fp32, batch 1, 500 tokens, T=1, exact sliding window',
      run: () => runOurs(ours.fp32, 1, { maxNewTokens: 500, temperature: 1, seed: 1, refill: 128 }),
    },
  );

  // Warm-up: onnxruntime's thread pools and memory arenas settle over the first runs.
  for (let round = 0; round < warmup; round++) for (const c of configurations) await c.run();
  const results = new Map(configurations.map((c) => [c.key, []]));
  let lastRun;
  for (let round = 0; round < rounds; round++) {
    lastRun = new Map();
    for (const c of configurations) {
      const result = await c.run();
      results.get(c.key).push(result);
      lastRun.set(c.key, result);
    }
  }

  // PyTorch with a KV cache, on the same weights (the standard export's model.safetensors), the
  // same prompt and the same number of greedy tokens; its rounds run after ours.
  let pytorch;
  if (!args['no-pytorch']) {
    const python = process.env.MINIGPT_PYTHON ?? '/usr/bin/python3';
    const { CharTokenizer } = await import('@minigpt/tokenizer');
    const promptIds = [...CharTokenizer.fromText(VOCAB).encode(PROMPTS[0])];
    const reference = spawnSync(
      python,
      [
        fileURLToPath(new URL('pytorch_generate.py', import.meta.url)),
        exportDir,
        JSON.stringify(promptIds),
        String(newTokens),
        String(rounds),
        String(warmup),
        '1,2,1/2',
      ],
      { encoding: 'utf8' },
    );
    pytorch =
      reference.status === 0
        ? JSON.parse(reference.stdout)
        : { error: (reference.stderr || String(reference.error)).trim().split('\n').pop() };
  }

  const rates = (key) => results.get(key).map((r) => r.tokensPerSec);
  const ratios = (numerator, denominator) =>
    rates(numerator).map((rate, round) => rate / rates(denominator)[round]);

  console.log('');
  console.log('| configuration | tokens/s, median (min – max) | first token ms (row 0) |');
  console.log('| --- | --- | --- |');
  for (const c of configurations) {
    const firsts = results
      .get(c.key)
      .map((r) => r.firstTokenMs)
      .filter((ms) => ms !== undefined);
    console.log(
      `| ${c.label} | ${medianRange(rates(c.key))} | ${firsts.length ? medianRange(firsts, 1) : '–'} |`,
    );
  }

  console.log('');
  console.log('ratios within a round, median (min – max):');
  for (const dtype of ['fp32', 'q8']) {
    console.log(
      `  batch 16 / batch 1, ${dtype}: ${ratioAgainstGoal(ratios(`ours ${dtype} b16`, `ours ${dtype} b1`), 4)}`,
    );
    console.log(
      `  batch 4 / batch 1, ${dtype}: ${medianRange(ratios(`ours ${dtype} b4`, `ours ${dtype} b1`), 2)}×`,
    );
  }
  for (const batch of [1, 4, 16]) {
    const ratio = ratios(`ours q8 b${batch}`, `ours fp32 b${batch}`);
    console.log(
      `  int8 / fp32, batch ${batch}: ${batch === 1 ? ratioAgainstGoal(ratio, 1.3) : `${medianRange(ratio, 2)}×`}`,
    );
  }
  for (const dtype of ['fp32', 'q8']) {
    console.log(
      `  runner-node / transformers.js, batch 1, ${dtype}: ${medianRange(ratios(`ours ${dtype} b1`, `hf ${dtype} b1`), 2)}×`,
    );
  }
  console.log(
    `  fused / standard graph, batch 1, fp32: ${medianRange(ratios('fused fp32 b1', 'ours fp32 b1'), 2)}× (issue 15's ≥ 2× is against the code of 2026-11-29: bench:baseline)`,
  );
  console.log(
    `  fused / standard graph, batch 1, q8: ${medianRange(ratios('fused q8 b1', 'ours q8 b1'), 2)}×`,
  );
  console.log(
    `  fused q8 / standard fp32, batch 1: ${medianRange(ratios('fused q8 b1', 'ours fp32 b1'), 2)}×`,
  );
  for (const dtype of ['fp32', 'q8']) {
    console.log(
      `  fused / standard graph, batch 16, ${dtype}: ${medianRange(ratios(`fused ${dtype} b16`, `ours ${dtype} b16`), 2)}×`,
    );
  }
  if (pytorch?.error) console.log(`  PyTorch reference: not run (${pytorch.error})`);
  else if (pytorch) {
    // PyTorch at its best thread count (best median), against each of ours at batch 1.
    const [bestThreads, best] = Object.entries(pytorch.tokensPerSec).sort(
      (a, b) => median(b[1]) - median(a[1]),
    )[0];
    console.log(
      `  PyTorch ${pytorch.torch} with a KV cache, batch 1, fp32: ${Object.entries(
        pytorch.tokensPerSec,
      )
        .map(([label, values]) => `${label} ${medianRange(values)} tokens/s`)
        .join(', ')}; best: ${bestThreads}`,
    );
    for (const key of ['ours fp32 b1', 'fused fp32 b1', 'ours q8 b1', 'fused q8 b1']) {
      // Every round of ours against PyTorch's median at its best thread count.
      const ratio = rates(key).map((rate) => rate / median(best));
      console.log(
        `  ${key.replace('ours', 'standard')} / PyTorch best: ${ratioAgainstGoal(ratio, 6)}`,
      );
    }
    const ours = lastRun.get('ours fp32 b1').tokens;
    const same = ours.length === pytorch.ids.length && ours.every((id, i) => id === pytorch.ids[i]);
    console.log(
      `  fp32: runner-node and PyTorch greedy tokens ${same ? `identical (${ours.length})` : 'DIFFER'}`,
    );
  }
  // The same export, greedy, the same prompt: both should pick the same tokens (float32), and the
  // int8 graph the same tokens in both too (its own ones).
  for (const dtype of ['fp32', 'q8']) {
    const a = lastRun.get(`ours ${dtype} b1`).tokens;
    const b = lastRun.get(`hf ${dtype} b1`).tokens;
    const same = a.length === b.length && a.every((id, i) => id === b[i]);
    console.log(
      `  ${dtype}: runner-node and transformers.js greedy tokens ${same ? `identical (${a.length})` : `DIFFER (${a.length} vs ${b.length})`}`,
    );
  }
  await compareGraphForms(lastRun.get('hf q8 b1').tokens);
  printBytesPerStep();
  console.log(
    `at the end: ${loadAverage()} (${cpus().length} cores; above ${cpus().length} other work was running)`,
  );
  await Promise.all([ours.fp32.dispose(), ours.q8.dispose()]);
  await Promise.all([fused.fp32.dispose(), fused.q8.dispose()]);
  await Promise.all([theirs.fp32.dispose(), theirs.q8.dispose()]);
} finally {
  rmSync(work, { recursive: true, force: true });
}
