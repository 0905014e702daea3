// Benchmark: two costs of onnxruntime-web's wasm backend that decide how generation scales on
// it, each beside onnxruntime-node (native CPU) on the same graphs in the same run:
//   1. handing the cache to the runtime: a graph whose 12 inputs are a seed-size model's cache
//      (6 layers × K and V, (B, 8, 96, 32) float32) and whose only nodes are their Shape. On
//      wasm every input is copied into the module's memory on every run; native onnxruntime
//      reads the caller's buffer.
//   2. the 24 weight products of a seed-size decode step, float32 against int8 weights
//      (DynamicQuantizeLinear → MatMulInteger, as `minigpt export --quantize int8`), at
//      batch 1 and 16; and the same products through onnxruntime's com.microsoft MatMulNBits
//      with 8-bit weights, the other int8 form onnxruntime has, to see whether either runtime
//      runs it faster than MatMulInteger.
// The graphs come from bench/wasm_cost_graphs.py (Debian's python3-onnx; MINIGPT_PYTHON
// overrides the interpreter). wasm runs on 2 threads (the web demo's setting), native on
// onnxruntime's default. Figures: ms per run, median (min–max) over rounds of 30 runs, the
// configurations interleaved in each round, after a warm-up round.
// Usage: node bench/wasm-costs.bench.mjs [--rounds=N]
import { cpuName, loadAverage, medianRange } from '@minigpt/bench-support';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds takes a positive integer');
const require = createRequire(import.meta.url);
const web = require('onnxruntime-web');
const native = require('onnxruntime-node');
web.env.wasm.numThreads = 2;
const RUNS = 30;
const PAST = 96;
const [LAYERS, HEADS, HEAD_SIZE, WIDTH] = [6, 8, 32, 256];
const PRODUCT_FORMS = ['fp32', 'int8', 'nbits8'];

const summary = (values) => medianRange(values, 2);

const work = mkdtempSync(join(tmpdir(), 'minigpt-wasm-costs-'));
try {
  const python = process.env.MINIGPT_PYTHON ?? '/usr/bin/python3';
  const script = fileURLToPath(new URL('wasm_cost_graphs.py', import.meta.url));
  const built = spawnSync(python, [script, work], { encoding: 'utf8' });
  if (built.status !== 0)
    throw new Error(`${script}: ${(built.stderr || String(built.error)).trim().split('\n').pop()}`);
  console.log(
    `wasm costs — ${cpuName()}, ${cpus().length} cores, Node ${process.version}, onnxruntime-web ${web.env.versions.web} (wasm, 2 threads), onnxruntime-node ${require('onnxruntime-node/package.json').version}, ${new Date().toISOString()}, ${loadAverage()}`,
  );
  const runtimes = { wasm: web, native };
  const sessionOf = async (runtime, file) =>
    runtimes[runtime].InferenceSession.create(join(work, file), {
      graphOptimizationLevel: 'all',
      ...(runtime === 'wasm' ? { executionProviders: ['wasm'] } : {}),
    });
  const configurations = [];
  const agreement = [];
  for (const runtime of ['wasm', 'native']) {
    const { Tensor } = runtimes[runtime];
    const feed = await sessionOf(runtime, 'feed.onnx');
    const products = {
      fp32: await sessionOf(runtime, 'products_fp32.onnx'),
      int8: await sessionOf(runtime, 'products_int8.onnx'),
      nbits8: await sessionOf(runtime, 'products_nbits8.onnx'),
    };
    for (const batch of [1, 16]) {
      const cacheFeeds = {};
      const floats = batch * HEADS * PAST * HEAD_SIZE;
      for (let layer = 0; layer < LAYERS; layer++)
        for (const part of ['key', 'value'])
          cacheFeeds[`past.${layer}.${part}`] = new Tensor(
            'float32',
            new Float32Array(floats).fill(0.5),
            [batch, HEADS, PAST, HEAD_SIZE],
          );
      configurations.push({
        label: `${runtime}, cache fed, batch ${batch} (${((LAYERS * 2 * floats * 4) / 1e6).toFixed(1)} MB)`,
        run: () => feed.run(cacheFeeds),
      });
      const x = new Tensor(
        'float32',
        Float32Array.from({ length: batch * WIDTH }, (_, i) => Math.sin(i)),
        [batch, 1, WIDTH],
      );
      // The three forms compute the same products up to quantization: a form that did not (a
      // layout mistake) would be timing something else.
      const outputs = {};
      for (const dtype of PRODUCT_FORMS)
        outputs[dtype] = Object.values(await products[dtype].run({ x }))[0].data;
      const scale = Math.max(...outputs.fp32.map(Math.abs));
      for (const dtype of ['int8', 'nbits8']) {
        const difference = Math.max(
          ...outputs[dtype].map((value, i) => Math.abs(value - outputs.fp32[i])),
        );
        agreement.push(
          `${runtime}, batch ${batch}: ${dtype} products against float32, max |difference| ${difference.toFixed(3)} (max |float32| ${scale.toFixed(3)})`,
        );
        if (!(difference < 0.2 * scale))
          throw new Error(
            `${runtime} ${dtype} products disagree with float32: ${agreement.at(-1)}`,
          );
      }
      for (const dtype of PRODUCT_FORMS)
        configurations.push({
          label: `${runtime}, weight products ${dtype}, batch ${batch}`,
          run: () => products[dtype].run({ x }),
        });
    }
  }
  const times = configurations.map(() => []);
  for (let round = -1; round < rounds; round++) {
    for (const [index, { run }] of configurations.entries()) {
      const start = performance.now();
      for (let i = 0; i < RUNS; i++) await run();
      if (round >= 0) times[index].push((performance.now() - start) / RUNS);
    }
  }
  console.log(`| configuration | ms per run, median (min–max) of ${rounds} rounds |`);
  console.log('| --- | --- |');
  for (const [index, { label }] of configurations.entries())
    console.log(`| ${label} | ${summary(times[index])} |`);
  const ratio = (a, b) => {
    const find = (label) => times[configurations.findIndex((c) => c.label.startsWith(label))];
    const [x, y] = [find(a), find(b)];
    return summary(x.map((value, round) => value / y[round]));
  };
  console.log(
    `wasm / native, cache fed at batch 16: ${ratio('wasm, cache fed, batch 16', 'native, cache fed, batch 16')}×`,
  );
  for (const batch of [1, 16])
    for (const runtime of ['wasm', 'native'])
      for (const dtype of ['int8', 'nbits8'])
        console.log(
          `${runtime}, batch ${batch}: ${dtype} / fp32 time ${ratio(`${runtime}, weight products ${dtype}, batch ${batch}`, `${runtime}, weight products fp32, batch ${batch}`)}`,
        );
  for (const line of agreement) console.log(line);
  console.log(`at the end: ${loadAverage()}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(0); // onnxruntime-web's wasm worker threads would keep the process alive
