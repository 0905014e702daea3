// Benchmark: training and generation on the GPU paths this machine has, each beside a CPU
// reference measured in the same run (`pnpm bench:gpu`).
//   - training: the `seed` preset (6 × 256, batch 64, block 128, vocab 65) for 50 iterations
//     on WebGPU (tfjs-backend-webgpu on Dawn, through the `webgpu` package) and on
//     tfjs-node-gpu (CUDA) where it is installed; the first 5 iterations are not timed
//     (shader compiles, allocations). Reference: the default CPU trainer (wasm + the native
//     kernels) for a few iterations.
//   - generation: runner-node (onnxruntime-node) on a seed-size export, batch 1 and 16, 100
//     new tokens, greedy, on the CUDA and WebGPU execution providers where they start.
//     Reference: the CPU execution provider, interleaved with them round by round.
// A software WebGPU adapter (SwiftShader, llvmpipe) is not a GPU: it counts only with
// --allow-software, which is for checking this script on a machine without one. Where no
// GPU path can run, it prints one line saying what it tried and why each is unavailable, and
// exits with status 1.
// Usage: node bench/gpu.bench.mjs [--allow-software] [--preset=seed] [--iters=50]
//          [--cpu-iters=4] [--rounds=5] [--new-tokens=100] [--timeout-s=240]
// Every measurement runs in a child process of its own: tfjs holds one backend per process,
// Dawn's threads keep a process alive, and a driver that hangs or crashes takes only its
// own figure with it. The export is made by runner-node's generate bench in a child too.
import { cpuName, loadAverage, median, medianRange, utcMinute } from '@minigpt/bench-support';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// Strict: a mistyped or unknown option stops the run instead of being ignored.
const { values: args } = parseArgs({
  options: {
    'allow-software': { type: 'boolean', default: false },
    preset: { type: 'string', default: 'seed' },
    iters: { type: 'string', default: '50' },
    'cpu-iters': { type: 'string', default: '4' },
    rounds: { type: 'string', default: '5' },
    'new-tokens': { type: 'string', default: '100' },
    'timeout-s': { type: 'string', default: '240' },
    // Set by this script for its children.
    child: { type: 'string' },
    backend: { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string' },
    warmup: { type: 'string' },
    model: { type: 'string' },
    export: { type: 'string' },
    providers: { type: 'string' },
  },
});

const self = fileURLToPath(import.meta.url);
// runner-node and onnxruntime-node are not this package's dependencies: they are reached
// from runner-node's own directory, as runner-node itself resolves them.
const runnerNodeDir = fileURLToPath(new URL('../../runner-node/', import.meta.url));
const ortRequire = createRequire(join(runnerNodeDir, 'package.json'));
// Optional backend packages as the trainer's own `import()` resolves them.
const trainerRequire = createRequire(fileURLToPath(new URL('../dist/backend.js', import.meta.url)));
const RESULT = 'RESULT ';
const VOCAB = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// Prompts of ≤ 28 characters: with 100 new tokens they stay within block 128 (no re-prefill).
const PROMPTS = [
  'ROMEO:\n',
  'First Citizen:\nBefore we',
  'JULIET:\nO Romeo',
  'To be, or not to be',
  'MENENIUS:\nWhat work',
  'All:\nSpeak, speak.',
  'HAMLET:\n',
  'Second Citizen:\nOne word',
  'The quality of mercy',
  'O, what a rogue',
  'CORIOLANUS:\nWhat',
  'Friends, Romans,',
  'Now is the winter',
  'GLOUCESTER:\nI',
  'KING HENRY:\nOnce more',
  'PORTIA:\nThe quality',
];

// ---------------------------------------------------------------------------------------
// Children

/** Trains `--iters` iterations on `--backend`; prints progress, then the step times. */
async function trainChild() {
  const tf = await import('@tensorflow/tfjs');
  tf.enableProdMode(); // no tfjs console banner among the figures
  const { probeWebGpu, startTraining } = await import('@minigpt/trainer/node');
  const backend = args.backend;
  const iters = Number(args.iters);
  const warmup = Number(args.warmup);
  const trainer = await startTraining({
    dataDir: args.data,
    outDir: args.out,
    backend,
    nativeKernels: backend === 'wasm',
    config: {
      preset: args.preset,
      maxIters: iters,
      evalIters: 1,
      evalInterval: 1_000_000,
      checkpointInterval: 1_000_000,
      logInterval: 1_000_000,
    },
  });
  const result = { backend, msPerIter: [] };
  let lastPrint = performance.now();
  for await (const event of trainer.run()) {
    if (event.type === 'start') {
      result.tokensPerIter =
        event.config.batchSize * event.config.blockSize * event.config.gradientAccumulationSteps;
      if (event.nativeKernels?.installed)
        result.detail = `${event.nativeKernels.kind} kernels, ${event.nativeKernels.threads ?? 1} threads`;
      if (backend === 'webgpu') {
        // The adapter tfjs runs on (Dawn is loaded by now): the same request as its own.
        const adapter = await probeWebGpu();
        result.adapter = adapter;
        if (adapter.software && !args['allow-software'])
          throw new Error(`only a software adapter (${adapter.description}); not a GPU figure`);
      }
    }
    if (event.type === 'step') {
      if (event.iter > warmup) result.msPerIter.push(event.msPerIter);
      const now = performance.now();
      if (event.iter % 10 === 0 || event.iter === iters || now - lastPrint > 5000) {
        lastPrint = now;
        const timed = event.iter > warmup ? '' : ' (warm-up, not timed)';
        console.log(
          `  [${backend}] iteration ${event.iter}/${iters}: ${event.msPerIter.toFixed(0)} ms, loss ${event.loss.toFixed(3)}${timed}`,
        );
      }
      // The final evaluation and checkpoint are not what is measured.
      if (event.iter === iters) break;
    }
  }
  trainer.dispose();
  console.log(RESULT + JSON.stringify(result));
  process.exit(0); // Dawn's and tfjs-node's threads would keep the process alive
}

/** Which execution providers onnxruntime-node lists, and whether a session starts on each. */
async function ortProbeChild() {
  const ort = ortRequire('onnxruntime-node');
  // Errors only: which CUDA library failed to load is said only in onnxruntime's log (stderr,
  // which the parent reads), not in the error thrown.
  ort.env.logLevel = 'error';
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(args.model);
  const providers = ort.listSupportedBackends();
  const sessions = {};
  for (const name of args.providers.split(',')) {
    if (!providers.some((entry) => entry.name === name)) continue;
    try {
      const session = await ort.InferenceSession.create(bytes, { executionProviders: [name] });
      await session.release();
      sessions[name] = { ok: true };
    } catch (error) {
      sessions[name] = { ok: false, message: String(error?.message ?? error).split('\n')[0] };
    }
  }
  console.log(RESULT + JSON.stringify({ providers, sessions }));
  process.exit(0);
}

/**
 * Generation on each of `--providers` (cpu first): warm-up, then `--rounds` rounds with every
 * configuration once per round, so load from elsewhere falls on all of them alike.
 */
async function generateChild() {
  const ort = ortRequire('onnxruntime-node');
  const { loadModel } = await import(join(runnerNodeDir, 'dist/index.js'));
  const providers = args.providers.split(',');
  const rounds = Number(args.rounds);
  const newTokens = Number(args['new-tokens']);
  const models = {};
  for (const provider of providers) {
    models[provider] =
      provider === 'webgpu'
        ? // runner-node's devices are cpu and cuda: WebGPU goes through its session hook.
          await loadModel(args.export, {
            createSession: (model, options) =>
              ort.InferenceSession.create(model, { ...options, executionProviders: ['webgpu'] }),
          })
        : await loadModel(args.export, {
            device: provider,
            onWarning: (message) => {
              throw new Error(message);
            },
          });
    if (provider === 'cuda' && models[provider].device !== 'cuda')
      throw new Error('runner-node fell back to CPU: CUDA did not start');
  }
  const configurations = providers.flatMap((provider) =>
    [1, 16].map((batch) => ({ key: `${provider} b${batch}`, provider, batch })),
  );
  const run = async ({ provider, batch }) => {
    const begin = performance.now();
    const generation = models[provider].generateBatch(PROMPTS.slice(0, batch), {
      maxNewTokens: newTokens,
      temperature: 0,
    });
    await generation.texts();
    const seconds = (performance.now() - begin) / 1000;
    const total = generation.rows.reduce((sum, row) => sum + row.stats.newTokens, 0);
    return { tokensPerSec: total / seconds, tokens: [...generation.rows[0].stats.tokens] };
  };
  // Warm-up: onnxruntime's arenas and thread pools, and the GPU providers' kernels.
  for (const configuration of configurations) {
    const { tokensPerSec } = await run(configuration);
    console.log(`  [generate] warm-up ${configuration.key}: ${rate(tokensPerSec)} tokens/s`);
  }
  const rates = Object.fromEntries(configurations.map((c) => [c.key, []]));
  const tokens = {};
  for (let round = 1; round <= rounds; round++) {
    for (const configuration of configurations) {
      const result = await run(configuration);
      rates[configuration.key].push(result.tokensPerSec);
      if (configuration.batch === 1) tokens[configuration.provider] = result.tokens;
    }
    console.log(
      `  [generate] round ${round}/${rounds}: ${configurations.map((c) => `${c.key} ${rate(rates[c.key].at(-1))}`).join(', ')} tokens/s`,
    );
  }
  await Promise.all(Object.values(models).map((model) => model.dispose()));
  console.log(RESULT + JSON.stringify({ rates, tokens }));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// Parent

/**
 * Runs this script as a child with `childArgs`; its progress lines are shown as they come
 * (with `echo`), its RESULT line parsed. Rejects with its last stderr line when it fails.
 */
function runChild(childArgs, { echo = true, timeoutMs, env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [self, ...childArgs], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      stdout += chunk;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) if (echo && !line.startsWith(RESULT)) console.log(line);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    const timer = timeoutMs
      ? setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s`));
        }, timeoutMs)
      : undefined;
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT));
      if (code === 0 && line)
        return resolve({ result: JSON.parse(line.slice(RESULT.length)), stderr });
      const said = stderr
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.length > 0 && !l.startsWith('at ') && !l.startsWith('^'));
      const error = said.find((l) => /Error\b/.test(l)) ?? said.at(-1) ?? `exit status ${code}`;
      reject(new Error(error.slice(0, 300)));
    });
  });
}

/** `nvidia-smi -L`'s GPU lines, or undefined where nvidia-smi is not installed. */
function listNvidiaGpus() {
  return new Promise((resolve, reject) => {
    execFile(
      'nvidia-smi',
      ['-L'],
      { timeout: 20_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error?.code === 'ENOENT') return resolve(undefined);
        if (error)
          return reject(new Error((stderr || stdout || error.message).trim().split('\n')[0]));
        resolve(stdout.split('\n').filter((line) => /^GPU \d+:/.test(line.trim())));
      },
    );
  });
}

// Three significant digits at most below 100: a software adapter's 1.4 tokens/s stays legible.
const rate = (x) =>
  x >= 100 ? Math.round(x).toLocaleString('en-US') : String(Number(x.toPrecision(3)));
const range = (values, format = rate) => medianRange(values, format);
const ratioText = (x) => `${x >= 0.1 ? x.toFixed(2) : Number(x.toPrecision(2))}×`;

async function main() {
  // The decisions, from this package's own build (not a public export).
  const { describeAdapter, findGpuPaths, refusalLine, GPU_PATH_LABELS } =
    await import('../dist/node/gpu-paths.js');
  const { probeWebGpuQuietly } = await import('@minigpt/trainer/node');
  const timeoutMs = Number(args['timeout-s']) * 1000;
  const allowSoftware = args['allow-software'];
  const work = mkdtempSync(join(tmpdir(), 'minigpt-bench-gpu-'));
  try {
    // The seed-size export (random weights, as runner-node's generate bench makes it): the
    // model the onnxruntime probes start sessions on, and the one generation runs.
    const exportDir = join(work, 'seed');
    mkdirSync(exportDir);
    const exported = spawnSync(
      process.execPath,
      [join(runnerNodeDir, 'bench/generate.bench.mjs'), `--write-export=${exportDir}`],
      { encoding: 'utf8' },
    );
    if (exported.status !== 0)
      throw new Error(`making the seed-size export failed:\n${exported.stderr}`);

    let ortProbe;
    const ortProbeResult = () =>
      (ortProbe ??= runChild(
        [
          '--child=ort-probe',
          `--model=${join(exportDir, 'onnx/model.onnx')}`,
          '--providers=cuda,webgpu',
        ],
        { echo: false, timeoutMs: 120_000 },
      ).then(({ result, stderr }) => ({ ...result, stderr })));
    const report = await findGpuPaths(
      {
        requestAdapter: () => probeWebGpuQuietly(),
        resolveModule: async (specifier) => trainerRequire.resolve(specifier),
        listExecutionProviders: async () => {
          try {
            ortRequire.resolve('onnxruntime-node');
          } catch (error) {
            throw Object.assign(new Error('onnxruntime-node not installed'), { code: error.code });
          }
          return (await ortProbeResult()).providers;
        },
        tryExecutionProvider: async (name) => {
          const { sessions, stderr } = await ortProbeResult();
          if (sessions[name]?.ok) return;
          // What is missing is said only on stderr: by Dawn (inside onnxruntime) for Vulkan,
          // by onnxruntime's log for the CUDA provider's libraries.
          const missing =
            name === 'webgpu'
              ? /Couldn't load Vulkan: (\S+?):/.exec(stderr)
              : /Failed to load library \S*?([^/\s]+) with error/.exec(stderr);
          throw new Error(
            `${sessions[name]?.message ?? 'no result'}${missing ? ` (${name === 'webgpu' ? 'no Vulkan loader: ' : ''}${missing[1]} not found)` : ''}`,
          );
        },
        listNvidiaGpus,
      },
      { allowSoftware },
    );
    const refusal = refusalLine(report);
    if (refusal) {
      console.error(refusal);
      process.exitCode = 1;
      return;
    }

    const started = new Date();
    const ortVersion = ortRequire('onnxruntime-node/package.json').version;
    const tfjsVersion = trainerRequire('@tensorflow/tfjs/package.json').version;
    console.log(
      `GPU benchmark — ${utcMinute(started)}; machine: ${cpuName()}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Node ${process.version}, tfjs ${tfjsVersion}, onnxruntime-node ${ortVersion}; ${loadAverage()}`,
    );
    if (report.nvidiaGpus) console.log(`nvidia-smi -L: ${report.nvidiaGpus.join('; ') || 'none'}`);
    for (const path of report.paths) {
      const state = path.available
        ? `runs on ${path.adapter}${path.software ? ' — SOFTWARE adapter (--allow-software): not a GPU figure' : ''}`
        : `unavailable: ${path.reason}`;
      console.log(`  ${GPU_PATH_LABELS[path.name]}: ${state}`);
    }
    const available = new Map(report.paths.filter((p) => p.available).map((p) => [p.name, p]));

    // Training data: a char dataset with vocab 65, like tinyshakespeare's, from random text.
    const { binarize } = await import('@minigpt/data/node');
    const { Random } = await import('@minigpt/random');
    const random = new Random(1);
    writeFileSync(
      join(work, 'input.txt'),
      Array.from({ length: 400_000 }, () => VOCAB[random.nextInt(VOCAB.length)]).join(''),
    );
    await binarize({ input: join(work, 'input.txt'), outDir: join(work, 'data') });

    const rows = [];
    const train = async (backend, iters, warmup) => {
      console.log(
        `training ${args.preset} on ${backend}: ${iters} iterations, ${warmup} not timed`,
      );
      try {
        const { result, stderr } = await runChild(
          [
            '--child=train',
            `--backend=${backend}`,
            `--preset=${args.preset}`,
            `--iters=${iters}`,
            `--warmup=${warmup}`,
            `--data=${join(work, 'data')}`,
            `--out=${join(work, `out-${backend}`)}`,
            ...(allowSoftware ? ['--allow-software'] : []),
          ],
          {
            timeoutMs,
            // libtensorflow names each device it creates at info level (0), and says nothing
            // when it found no GPU and runs on the CPU: that log is how the run is checked.
            env: {
              ...process.env,
              TF_CPP_MIN_LOG_LEVEL: backend === 'tensorflow-gpu' ? '0' : '2',
            },
          },
        );
        // "Created device /job:localhost/…/device:GPU:0 with 13624 MB memory:  -> device: 0,
        // name: Tesla T4, pci bus id: …"
        const tensorflowGpus = [...stderr.matchAll(/Created device \S*GPU:\d+ .*?-> (.+)$/gm)].map(
          (match) => match[1].trim(),
        );
        return {
          ...result,
          ...(backend === 'tensorflow-gpu' ? { tensorflowGpus } : {}),
          tokensPerSec: result.msPerIter.map((ms) => (result.tokensPerIter / ms) * 1000),
        };
      } catch (error) {
        console.log(`  [${backend}] failed: ${error.message}`);
        return { failed: error.message };
      }
    };

    // Training, where a GPU path can run it: the CPU reference first (1 warm-up iteration),
    // then each GPU path.
    const trainPaths = ['webgpu', 'tensorflow-gpu'].filter((name) => available.has(name));
    const cpuTrain =
      trainPaths.length > 0 ? await train('wasm', Number(args['cpu-iters']) + 1, 1) : undefined;
    if (cpuTrain?.failed) throw new Error(`the CPU reference failed: ${cpuTrain.failed}`);
    if (cpuTrain)
      rows.push({
        what: `train ${args.preset}, CPU reference: wasm + ${cpuTrain.detail ?? 'tfjs kernels'}`,
        device: `${cpuName()} × ${cpus().length}`,
        rates: cpuTrain.tokensPerSec,
        ratio: '1',
        steps: cpuTrain.msPerIter.length,
      });
    const iters = Number(args.iters);
    const gpuWarmup = Math.min(5, Math.floor(iters / 2));
    for (const name of trainPaths) {
      const path = available.get(name);
      const measured = await train(name, iters, gpuWarmup);
      const adapter = measured.adapter ? describeAdapter(measured.adapter) : path.adapter;
      const tensorflowSaid =
        measured.tensorflowGpus === undefined
          ? ''
          : measured.tensorflowGpus.length > 0
            ? `; TensorFlow: ${measured.tensorflowGpus.join('; ')}`
            : '; TensorFlow logged no GPU device: it may have run on the CPU';
      rows.push({
        what: `train ${args.preset}, ${GPU_PATH_LABELS[name]}`,
        device: `${adapter}${path.software ? ' (SOFTWARE)' : ''}${tensorflowSaid}`,
        ...(measured.failed
          ? { failed: measured.failed }
          : {
              rates: measured.tokensPerSec,
              // Runs of different lengths, not paired: the ratio of medians, and the range
              // from the slowest GPU step against the fastest CPU step to the other way round.
              ratio: `${ratioText(median(measured.tokensPerSec) / median(cpuTrain.tokensPerSec))} (${ratioText(Math.min(...measured.tokensPerSec) / Math.max(...cpuTrain.tokensPerSec))}–${ratioText(Math.max(...measured.tokensPerSec) / Math.min(...cpuTrain.tokensPerSec))})`,
              steps: measured.msPerIter.length,
            }),
      });
    }

    // Generation: cpu and the GPU execution providers in one child, interleaved.
    const gpuProviders = [
      ['ort-cuda', 'cuda'],
      ['ort-webgpu', 'webgpu'],
    ].filter(([name]) => available.has(name));
    if (gpuProviders.length > 0) {
      const providers = ['cpu', ...gpuProviders.map(([, provider]) => provider)];
      console.log(
        `generating on ${providers.join(', ')}: batch 1 and 16, ${args['new-tokens']} new tokens, ${args.rounds} rounds after a warm-up`,
      );
      try {
        const { result } = await runChild(
          [
            '--child=generate',
            `--export=${exportDir}`,
            `--providers=${providers.join(',')}`,
            `--rounds=${args.rounds}`,
            `--new-tokens=${args['new-tokens']}`,
          ],
          { timeoutMs },
        );
        for (const batch of [1, 16]) {
          const cpu = result.rates[`cpu b${batch}`];
          rows.push({
            what: `generate batch ${batch}, CPU EP reference`,
            device: `${cpuName()} × ${cpus().length}`,
            rates: cpu,
            ratio: '1',
            steps: cpu.length,
          });
          for (const [name, provider] of gpuProviders) {
            const path = available.get(name);
            const rates = result.rates[`${provider} b${batch}`];
            // Paired: each round's GPU figure over the same round's CPU figure.
            const ratios = rates.map((rate, round) => rate / cpu[round]);
            rows.push({
              what: `generate batch ${batch}, ${GPU_PATH_LABELS[name]}`,
              device: `${path.adapter}${path.software ? ' (SOFTWARE)' : ''}`,
              rates,
              ratio: range(ratios, ratioText),
              steps: rates.length,
            });
          }
        }
        for (const [, provider] of gpuProviders) {
          const a = result.tokens.cpu;
          const b = result.tokens[provider];
          const firstDiff = a.findIndex((id, i) => id !== b[i]);
          console.log(
            `  greedy tokens, batch 1, ${provider} vs cpu: ${firstDiff < 0 && a.length === b.length ? `identical (${a.length})` : `differ from token ${firstDiff}`}`,
          );
        }
      } catch (error) {
        console.log(`  [generate] failed: ${error.message}`);
        for (const [name] of gpuProviders)
          rows.push({
            what: `generate, ${GPU_PATH_LABELS[name]}`,
            device: '',
            failed: error.message,
          });
      }
    }

    console.log('');
    console.log(`| what | device | tokens/s, median (min–max) | vs CPU, same run | timed |`);
    console.log('| --- | --- | --- | --- | --- |');
    for (const row of rows) {
      console.log(
        row.failed
          ? `| ${row.what} | ${row.device} | failed: ${row.failed} | | |`
          : `| ${row.what} | ${row.device} | ${range(row.rates)} | ${row.ratio} | ${row.steps} ${row.what.startsWith('train') ? 'steps' : 'rounds'} |`,
      );
    }
    console.log(`at the end: ${loadAverage()} (${cpus().length} cores)`);
    const measured = rows.filter((row) => !row.failed && row.ratio !== '1');
    if (measured.length === 0) {
      console.error(
        `bench:gpu: every GPU path that should have run failed (${rows
          .filter((row) => row.failed)
          .map((row) => `${row.what}: ${row.failed}`)
          .join('; ')})`,
      );
      process.exitCode = 1;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// After every declaration above: main's helpers are `const`s.
if (args.child === 'train') await trainChild();
else if (args.child === 'ort-probe') await ortProbeChild();
else if (args.child === 'generate') await generateChild();
else await main();
