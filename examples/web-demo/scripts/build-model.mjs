// Builds the demo's model with the repo's own CLI, offline, once: prepare a Shakespeare-sized
// corpus, train the baby preset on it (nanoGPT's CPU run for shakespeare-char: 4 layers, 128
// wide, 2,000 iterations; 2–3 minutes with the native kernels on one thread: 2m17s in the
// suite's CI run of 2026-11-30, beside the other tests), export it to
// public/model/ (float32 and int8 graphs, in the Hugging Face layout: onnx/model.onnx,
// onnx/model_quantized.onnx, minigpt.json, …) and write public/model/about.json, the facts
// the page shows: model, corpus, training and validation loss.
//
// The corpus is tinyshakespeare from ../shared/data/ beside the repo when it is there, else
// the CLI's built-in Moby-Dick (offline), and the script says so. A trained run is cached in
// .model-work/run-<recipe>/, named after the corpus and the training settings, so a change of
// either trains again; public/model/ is exported again when it holds another run's export or
// an export of another format version. --force trains again.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EXPORT_FILES, EXPORT_FORMAT_VERSION } from '@minigpt/export-onnx';
import { countParameters } from '@minigpt/model';

const demo = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = join(demo, '..', '..');
const cli = join(repoRoot, 'packages', 'cli', 'dist', 'bin.js');
const work = join(demo, '.model-work');
const out = join(demo, 'public', 'model');
const aboutFile = join(out, 'about.json');
const force = process.argv.includes('--force');
const shown = (path) => relative(process.cwd(), path) || '.';
const log = (line) => process.stderr.write(`${line}\n`);

/** The corpus: the shared tinyshakespeare beside the repo (as in CI), else Moby-Dick. */
function chooseCorpus() {
  const shakespeare = join(repoRoot, '..', 'shared', 'data', 'tinyshakespeare.txt');
  if (existsSync(shakespeare)) {
    const sha256 = createHash('sha256').update(readFileSync(shakespeare)).digest('hex');
    return {
      name: 'tinyshakespeare',
      prepareArgs: ['--input', shakespeare],
      key: `file:${sha256}`,
      // A speaker's name and a line break: the corpus is a play, so the model writes a speech.
      prompt: 'ROMEO:\n',
      fallback: undefined,
    };
  }
  return {
    name: 'moby-dick',
    prepareArgs: ['--dataset', 'moby-dick'],
    key: 'dataset:moby-dick',
    prompt: 'Call me',
    fallback: `${shown(shakespeare)} not found: training on Moby-Dick, the CLI's built-in corpus, instead`,
  };
}

// The baby preset's own settings (batch 12, block 64, lr 1e-3 → 1e-4) for its 2,000
// iterations. Evaluations only at the start and the end, over more batches than the preset's
// 20, so the val loss the page shows is a steady figure. The wasm backend is pinned, so the
// run is the same wherever it is built: the trainer adds the native kernels to it when
// @minigpt/native-kernels' addon is built (--no-native would keep tfjs's own).
const MAX_ITERS = 2000;
const TRAIN_SETTINGS = [
  '--preset=baby',
  '--backend=wasm',
  `--maxIters=${MAX_ITERS}`,
  `--evalInterval=${MAX_ITERS}`,
  '--evalIters=100',
  `--checkpointInterval=${MAX_ITERS}`,
];

const corpus = chooseCorpus();
const recipe = createHash('sha256')
  .update(JSON.stringify([corpus.key, TRAIN_SETTINGS]))
  .digest('hex')
  .slice(0, 12);
const dataDir = join(work, `data-${corpus.name}`);
const runDir = join(work, `run-${recipe}`);
// Written once training finished: the facts only the training process knew (time, kernels).
const trainedFile = join(runDir, 'trained.json');

const minigpt = (...args) =>
  execFileSync(process.execPath, [cli, ...args], { cwd: demo, stdio: 'inherit' });

/**
 * true when public/model/ holds this recipe's export in the format the runners read, and
 * .model-work/ still holds the run it came from (the e2e test exports its fused graph from it).
 */
function exportIsCurrent() {
  try {
    const manifest = JSON.parse(readFileSync(join(out, EXPORT_FILES.manifest), 'utf8'));
    const about = JSON.parse(readFileSync(aboutFile, 'utf8'));
    return (
      existsSync(trainedFile) &&
      about.recipe === recipe &&
      manifest.formatVersion === EXPORT_FORMAT_VERSION &&
      [manifest.files.model, manifest.files.modelQuantized, manifest.files.vocab].every(
        (file) => typeof file === 'string' && existsSync(join(out, file)),
      )
    );
  } catch {
    return false;
  }
}

function formatSeconds(seconds) {
  const whole = Math.round(seconds);
  return whole >= 60
    ? `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`
    : `${whole}s`;
}

/**
 * The CLI's "native kernels: …" line as data: { kernels, threads, vectorLanes } when they
 * ran, else { reason }.
 */
function parseNativeKernels(text) {
  const installed = /^(.+) on (\d+) threads? \((\d+)-float SIMD\)$/.exec(text);
  if (installed && !text.startsWith('not used')) {
    const [, kernels, threads, vectorLanes] = installed;
    return {
      kernels: kernels.split(', '),
      threads: Number(threads),
      vectorLanes: Number(vectorLanes),
    };
  }
  return { reason: /^not used \((.*)\)$/.exec(text)?.[1] ?? text };
}

/**
 * Runs `minigpt train`, showing its progress as one line: rewritten in place on a terminal,
 * or the CLI's log lines every quarter of the run otherwise. Resolves with the time it took
 * and the native kernels the CLI said it used (undefined when it said nothing of them).
 */
function train() {
  const terminal = process.stderr.isTTY;
  const args = [
    cli,
    'train',
    '--data',
    dataDir,
    '--out',
    runDir,
    ...TRAIN_SETTINGS,
    '--no-progress',
    `--logInterval=${terminal ? 10 : MAX_ITERS / 4}`,
  ];
  // One thread unless the caller chose (OMP_NUM_THREADS). Alone, two threads are faster (300
  // `baby` iterations of `minigpt train`: 32 ms each against 45 on one, 2026-11-30, 2-core
  // EPYC), but in the
  // suite the other core runs other tests: a CI run with two threads trained in 2m20s against
  // 2m17s on one, and the tests beside it took longer.
  const env = { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' };
  const child = spawn(process.execPath, args, {
    cwd: demo,
    env,
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const started = performance.now();
  let nativeKernels;
  let progressShown = false;
  let lastEvalLine = -Infinity;
  let firstStep;
  const clearProgress = () => {
    if (progressShown) process.stderr.write('\r\x1b[K');
    progressShown = false;
  };
  createInterface({ input: child.stderr }).on('line', (line) => {
    const native = /^native kernels: (.*)$/.exec(line);
    if (native) nativeKernels = parseNativeKernels(native[1]);
    // On a terminal, the step lines and an evaluation's progress lines take turns on one
    // line; every other line (settings, estimate, evaluation results, notes) stays. In a log,
    // the step lines come every quarter of the run, and an evaluation's progress every 30 s
    // at most (the CLI writes one every 3 s).
    const iter = /^iter (\d+): loss ([\d.]+)/.exec(line);
    const evaluating = /^eval at iter \d+: \d+\/\d+ batches/.test(line);
    const now = performance.now();
    if (!terminal || (!iter && !evaluating)) {
      if (!terminal && evaluating && now - lastEvalLine < 30_000) return;
      if (evaluating) lastEvalLine = now;
      clearProgress();
      log(line);
      return;
    }
    const elapsed = (now - started) / 1000;
    let text = `${line} | ${formatSeconds(elapsed)} so far`;
    if (iter) {
      // The rate since the first step line: the evaluation before the steps is not a step.
      const done = Number(iter[1]);
      firstStep ??= { done, at: now };
      const rate =
        done > firstStep.done ? (now - firstStep.at) / 1000 / (done - firstStep.done) : 0;
      const eta = rate * (MAX_ITERS - done);
      text = `training: iter ${done}/${MAX_ITERS} | loss ${iter[2]} | ${formatSeconds(elapsed)} so far, ETA ${rate > 0 ? formatSeconds(eta) : '-'}`;
    }
    // Cut to the terminal's width, so that \r rewrites the one line.
    process.stderr.write(`\r\x1b[K${text.slice(0, (process.stderr.columns || 80) - 1)}`);
    progressShown = true;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearProgress();
      if (code === 0) resolve({ nativeKernels, seconds: (performance.now() - started) / 1000 });
      else reject(new Error(`minigpt train failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

/** The last evaluation in the run's metrics.jsonl: { iter, trainLoss, valLoss }. */
function lastEvaluation() {
  const records = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
  const evaluation = records.findLast((record) => typeof record.valLoss === 'number');
  if (!evaluation) throw new Error(`${shown(runDir)}/metrics.jsonl holds no evaluation`);
  return evaluation;
}

/** The facts the page shows, from the checkpoint, the prepared data and the training. */
function describeRun(trained) {
  const latest = readFileSync(join(runDir, 'checkpoints', 'latest'), 'utf8').trim();
  const checkpoint = join(runDir, 'checkpoints', latest);
  const config = JSON.parse(readFileSync(join(checkpoint, 'config.json'), 'utf8'));
  const state = JSON.parse(readFileSync(join(checkpoint, 'state.json'), 'utf8'));
  const meta = JSON.parse(readFileSync(join(dataDir, 'meta.json'), 'utf8'));
  const { model, train: settings } = config;
  const evaluation = lastEvaluation();
  return {
    recipe,
    prompt: corpus.prompt,
    model: {
      preset: settings.preset,
      parameters: countParameters(model),
      nLayer: model.nLayer,
      nHead: model.nHead,
      nEmbd: model.nEmbd,
      blockSize: model.blockSize,
      vocabSize: model.vocabSize,
      tokenizer: meta.tokenizer,
    },
    corpus: {
      name: corpus.name,
      bytes: meta.source.bytes,
      sha256: meta.source.sha256,
      trainTokens: meta.trainTokens,
      valTokens: meta.valTokens,
      ...(corpus.fallback ? { fallback: corpus.fallback } : {}),
    },
    training: {
      iterations: state.iteration,
      batchSize: settings.batchSize * settings.gradientAccumulationSteps,
      tokens:
        state.iteration * settings.batchSize * settings.gradientAccumulationSteps * model.blockSize,
      seconds: Math.round(trained.seconds),
      backend: state.backend,
      nativeKernels: trained.nativeKernels ?? null,
      machine: trained.machine,
      finishedAt: state.savedAt,
    },
    evaluation: {
      iteration: evaluation.iter,
      batches: settings.evalIters,
      trainLoss: evaluation.trainLoss,
      valLoss: evaluation.valLoss,
    },
  };
}

/**
 * Holds .model-work/lock (a directory, made atomically, holding the owner's pid) while `work`
 * runs: builds started together (the e2e test and a `pnpm build`, say) take turns instead of
 * training into the same directory. A lock whose process is gone is taken over.
 */
async function withLock(work) {
  const lock = join(demo, '.model-work', 'lock');
  mkdirSync(dirname(lock), { recursive: true });
  let waiting = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    let owner = 0;
    let orphaned = false;
    try {
      owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
      // No pid a while after the lock was made: its maker died before writing one.
      orphaned = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0) > 10_000;
    }
    if ((owner > 0 && !isRunning(owner)) || orphaned) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (!waiting)
      log(`waiting for another build of the demo's model (pid ${owner || '?'}) to finish`);
    waiting = true;
    await new Promise((wake) => setTimeout(wake, 1000));
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

async function build() {
  if (!force && exportIsCurrent()) return;
  if (force || !existsSync(trainedFile)) {
    log(
      `building the demo's model: the baby preset on ${corpus.name}, ${MAX_ITERS} iterations (about 2 minutes on 2 cores with the native kernels), once: cached in ${shown(runDir)}/`,
    );
    // A run cut short leaves checkpoints without trained.json: start it again from scratch.
    rmSync(runDir, { recursive: true, force: true });
    minigpt('prepare', ...corpus.prepareArgs, '--out', dataDir, '--force', '--no-progress');
    const result = await train();
    const machine = `${cpus().length} cores ${cpus()[0]?.model.trim() || 'of an unknown CPU'}`;
    writeFileSync(trainedFile, `${JSON.stringify({ ...result, machine }, null, 2)}\n`);
    log(`trained in ${formatSeconds(result.seconds)}`);
  } else {
    log(`the demo's model is trained already (${shown(runDir)}/): exporting it`);
  }
  // An about.json names a complete export only: gone until the new one is in place.
  rmSync(aboutFile, { force: true });
  // --force replaces the export there, including files of an older format (model.onnx,
  // vocab.json), which the exporter removes.
  minigpt('export', '--checkpoint', runDir, '--out', out, '--quantize', 'int8', '--force');
  const about = describeRun(JSON.parse(readFileSync(trainedFile, 'utf8')));
  writeFileSync(aboutFile, `${JSON.stringify(about, null, 2)}\n`);
  log(
    `${shown(aboutFile)}: val loss ${about.evaluation.valLoss.toFixed(4)} (train ${about.evaluation.trainLoss.toFixed(4)}) after ${about.training.iterations} iterations in ${formatSeconds(about.training.seconds)}`,
  );
}

if (!existsSync(cli)) throw new Error(`${cli} is missing: run pnpm build at the repo root first`);
if (corpus.fallback) log(`note: ${corpus.fallback}`);
// Checked before the lock too, so that a build with nothing to do never waits.
if (force || !exportIsCurrent()) await withLock(build);
