// `minigpt train`: trains a GPT on a prepared data directory, printing progress and writing
// checkpoints, metrics.jsonl and loss.svg into --out. Before the long part it times the
// first steps and says how long the run will take, warning when that is long.
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Trainer, TrainerEvent } from '@minigpt/trainer';
import {
  ALWAYS_AFFORDED_EVAL_SECONDS,
  DEFAULT_TRAIN_CONFIG,
  MIN_CAPPED_EVAL_ITERS,
  RESUME_OVERRIDABLE_KEYS,
  ResumeConfigError,
  TRAIN_PRESETS,
  TrainConfigError,
  installHint,
  type BackendName,
  type TrainConfig,
} from '@minigpt/trainer/config';
import { Command, Option } from 'commander';
import { kebabCase, loadConfigFile, parseOverrides } from '../config-file.js';
import { CliError } from '../errors.js';
import { commandLine, shownPath as shown } from '../invocation.js';
import { TrainProgress, formatDuration } from '../progress.js';
import { loadTrainer } from '../tfjs.js';

interface TrainFlags {
  config?: string;
  preset?: string;
  data: string;
  out?: string;
  backend: BackendName | 'auto';
  resume: boolean;
  progress: boolean;
  native: boolean;
  initFrom?: string;
}

/** A run projected to take longer than this gets a warning with ways to make it shorter. */
export const LONG_RUN_SECONDS = 30 * 60;

/** The example's CPU-sized config, suggested when it is there (in a clone of the repo). */
export const CPU_CONFIG = 'examples/shakespeare-char/config/train_shakespeare_cpu.ts';

const flag = (key: string) => `--${kebabCase(key)}`;

export function trainCommand(): Command {
  return new Command('train')
    .description(
      'Train a GPT on prepared data (see `minigpt prepare`), with checkpoints you can resume.',
    )
    .option('--config <file>', 'config file: .json, .js or .ts exporting an object of config keys')
    .option(
      '--preset <name>',
      'model + training preset: nano, baby (CPU-sized), seed (the seed Mini GPT)',
    )
    .option('--data <dir>', 'prepared data directory', join('data', 'moby-dick'))
    .option('--out <dir>', 'output directory (default: out/<data dir name>)')
    .addOption(
      new Option('--backend <name>', 'tfjs backend')
        .choices(['auto', 'tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'])
        .default('auto'),
    )
    .option(
      '--resume',
      "continue from <out>/checkpoints/latest with the checkpoint's model and settings",
      false,
    )
    .option('--no-progress', 'print log lines instead of a progress bar')
    .option('--no-native', "on wasm, keep tfjs's own matMul instead of the native kernels")
    .option(
      '--init-from <dir>',
      'start from pretrained weights: a GPT-2 directory in the Hugging Face layout (config.json, model.safetensors, tokenizer.json); prepare the data with --tokenizer <dir>',
    )
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', helpText())
    .action(async function (this: Command, flags: TrainFlags) {
      await runTrain(flags, this.args);
    });
}

function helpText(): string {
  const keys = Object.entries(DEFAULT_TRAIN_CONFIG)
    .map(([key, value]) => `  ${flag(key)}=${JSON.stringify(value)}`)
    .join('\n');
  return `
Any config key is also an option, --key=value or --key value, checked against the defaults'
types. Config files use the same keys in camelCase (maxIters); so does the command line, if
you prefer. Config keys and defaults (preset baby):
${keys}

Precedence: defaults < preset < --config file < --key=value.

Before any evaluation, the run's first steps (up to 3, part of the run) and two
evaluation batches are timed, and the run's total time is printed: steps × time per step
+ evaluations × 2 splits × --eval-iters × time per batch. Over ${LONG_RUN_SECONDS / 60} minutes, a warning
follows with ways to shorten the run. The starting weights are evaluated after those steps.
Evaluations show their own progress: batches done and an ETA.

When the evaluations would take longer than the training steps, and over ${ALWAYS_AFFORDED_EVAL_SECONDS} s in all
(a tiny --max-iters with a config's --eval-iters=200), --eval-iters is lowered for the run,
to no fewer than ${MIN_CAPPED_EVAL_ITERS}, and a note says so. Give --eval-iters on the command line to keep it.

--resume continues the run in --out as it was: the model and training settings come from
its checkpoint, so --preset and --config are not needed. Only these may change:
  ${RESUME_OVERRIDABLE_KEYS.map(flag).join(', ')}
Other keys must match the checkpoint's (a different model is refused). With
--lr-decay-iters=0 (the default) the cosine schedule follows --max-iters; to extend a
finished run at its final learning rate, also give --lr-decay-iters=<its old max-iters>.

--init-from <dir> starts from pretrained weights instead of a random init: a GPT-2
directory as Hugging Face has it (config.json, model.safetensors, and tokenizer.json or
vocab.json + merges.txt). The model's shape is the directory's (--block-size may crop its
positions); prepare the data with its tokenizer first: minigpt prepare --tokenizer <dir>.

Examples:
  minigpt train --preset=baby --max-iters=500
  minigpt train --config ${CPU_CONFIG} --data data/shakespeare
  minigpt train --resume --out out/moby-dick --max-iters=4000
  minigpt train --init-from models/gpt2 --data data/notes-gpt2 --block-size=256
`;
}

async function runTrain(flags: TrainFlags, extraArgs: string[]): Promise<void> {
  const fromFile = flags.config ? await loadConfigFile(flags.config) : {};
  const overrides = parseOverrides(
    extraArgs,
    DEFAULT_TRAIN_CONFIG as unknown as Record<string, unknown>,
  );
  // Precedence: defaults < preset < config file < command line (--preset, --key=value).
  const config = { ...fromFile, ...(flags.preset ? { preset: flags.preset } : {}), ...overrides };
  const outDir = flags.out ?? join('out', basename(flags.data));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const {
    trainer: { TrainingError },
    node: { startTraining },
  } = await loadTrainer();
  let trainer: Trainer;
  try {
    trainer = await startTraining({
      dataDir: flags.data,
      outDir,
      config,
      backend: flags.backend,
      resume: flags.resume,
      nativeKernels: flags.native,
      ...(flags.initFrom !== undefined ? { initFrom: flags.initFrom } : {}),
      // A value the user typed is kept; one from a preset or a file may be lowered.
      capEvalIters: !('evalIters' in overrides),
      onNotice: (message) => log(`note: ${message}`),
    });
  } catch (error) {
    if (error instanceof TrainConfigError && !(error instanceof ResumeConfigError)) {
      // The library names keys as in config files; a key typed here is named as typed here.
      const worded = error.message.replace(/config key "(\w+)"/g, (named, key: string) =>
        key in overrides ? flag(key) : named,
      );
      if (worded !== error.message) throw new CliError(worded, { cause: error });
    }
    // The library's advice names its API; here the same advice is a flag.
    if (error instanceof TrainingError && error.rule === 'run-exists') {
      throw new CliError(
        `${shown(error.file ?? outDir)}: already holds a training run. Pass --resume to continue it, or choose another --out.`,
        { cause: error },
      );
    }
    if (error instanceof TrainingError && error.rule === 'no-checkpoint') {
      throw new CliError(
        `${shown(error.file ?? outDir)}: no checkpoint to resume from. Run without --resume to start training.`,
        { cause: error },
      );
    }
    if (error instanceof ResumeConfigError) {
      throw new CliError(
        resumeConflictMessage(error, { overrides, preset: flags.preset, configFile: flags.config }),
        {
          cause: error,
        },
      );
    }
    throw error;
  }
  const progress = new TrainProgress({
    stream: process.stderr,
    bar: flags.progress && process.stderr.isTTY === true,
    logInterval: trainer.config.logInterval,
  });
  const line = (text: string) => progress.line(text);
  let backend: BackendName = 'cpu';
  try {
    await trainer.train((event: TrainerEvent) => {
      switch (event.type) {
        case 'start': {
          backend = event.backend;
          for (const skipped of event.skippedBackends)
            line(`backend ${skipped.name}: not used (${skipped.reason})`);
          line(`backend: ${event.backend}`);
          const native = event.nativeKernels;
          if (native?.installed && native.kind === 'wasm')
            line(
              `native kernels: not used (${native.reason}); WebAssembly SIMD kernels instead: ${native.kernels.join(', ')}`,
            );
          else if (native?.installed)
            line(
              `native kernels: ${native.kernels.join(', ')} on ${native.threads} thread${native.threads === 1 ? '' : 's'} (${native.vectorLanes}-float SIMD)`,
            );
          else if (native) line(`native kernels: not used (${native.reason})`);
          if (event.initFrom) line(`starting weights: ${shown(event.initFrom)}`);
          else if (flags.resume && flags.initFrom !== undefined)
            line(`--init-from is not read on --resume: the run continues from its checkpoint`);
          const m = event.model;
          line(
            `model: ${m.nLayer} layers, ${m.nHead} heads, ${m.nEmbd} wide, block ${m.blockSize}, vocab ${m.vocabSize}: ${(event.parameters / 1e6).toFixed(2)}M parameters`,
          );
          const c = event.config;
          line(
            `training: batch ${c.batchSize}×${c.gradientAccumulationSteps}, lr ${c.learningRate} → ${c.minLr}, ${c.maxIters} iterations${event.resumedFrom ? `, resuming from ${shown(event.resumedFrom)} at iteration ${event.startIteration}` : ''}`,
          );
          if (event.microBatchRows < c.batchSize) {
            line(
              `each batch of ${c.batchSize} runs as ${c.batchSize / event.microBatchRows} passes of ${event.microBatchRows} rows to fit ${event.backend} memory (same gradients)`,
            );
          }
          progress.event(event);
          break;
        }
        case 'estimate':
          progress.event(event);
          for (const text of estimateReport(event, {
            backend,
            config: trainer.config,
            evalItersGiven: 'evalIters' in overrides,
            cpuConfigHere: existsSync(CPU_CONFIG) && flags.config !== CPU_CONFIG,
          }))
            line(text);
          break;
        case 'step':
        case 'eval-progress':
          progress.event(event);
          break;
        case 'eval':
          line(
            `eval at iter ${event.iter}${event.iter === 0 ? ' (the starting weights)' : ''}: train loss ${event.trainLoss.toFixed(4)}, val loss ${event.valLoss.toFixed(4)}${event.best ? ' (best so far)' : ''}`,
          );
          progress.event(event); // after the line: the training bar comes back below it
          break;
        case 'checkpoint':
          if (!flags.progress || !process.stderr.isTTY)
            line(`saved ${shown(event.dir)} (${event.reason})`);
          break;
        case 'done':
          progress.stop();
          log(
            `done in ${(event.seconds / 60).toFixed(1)} min; best val loss ${event.bestValLoss?.toFixed(4) ?? '-'}`,
          );
          log(`checkpoints, metrics.jsonl and loss.svg in ${shown(outDir)}/`);
          log(`sample: ${commandLine(['sample', '--checkpoint', shown(outDir)])}`);
          break;
      }
    });
  } finally {
    progress.stop();
    trainer.dispose();
  }
}

export interface EstimateContext {
  readonly backend: BackendName;
  readonly config: TrainConfig;
  /** --eval-iters was on the command line (so it was not capped). */
  readonly evalItersGiven: boolean;
  /** CPU_CONFIG is there to suggest (a clone of the repo, not already in use). */
  readonly cpuConfigHere: boolean;
  readonly longRunSeconds?: number;
}

const PRESETS_BY_SIZE: ReadonlyArray<keyof typeof TRAIN_PRESETS> = ['seed', 'baby', 'nano'];
const PRESET_SIZES: Record<keyof typeof TRAIN_PRESETS, string> = {
  seed: '6 layers × 256',
  baby: '4 layers × 128, CPU-sized',
  nano: '2 layers × 32, for smoke runs',
};

/**
 * What `train` prints once the first steps were timed: whether --eval-iters was lowered (or
 * why not), the projected time, and, past longRunSeconds, a warning with ways to shorten the
 * run, each a flag that works from where it is printed.
 */
export function estimateReport(
  event: Extract<TrainerEvent, { type: 'estimate' }>,
  context: EstimateContext,
): string[] {
  const { run, evalIters } = event;
  const lines: string[] = [];
  const fullEval = estimatedEvalSeconds(event, evalIters.requested);
  if (evalIters.used < evalIters.requested) {
    lines.push(
      `note: --eval-iters lowered from ${evalIters.requested} to ${evalIters.used} for this run: ${run.evaluations} evaluations of 2 × ${evalIters.requested} batches would take ${formatDuration(fullEval)}, longer than its ${run.steps} steps (${formatDuration(run.stepSeconds)}). Give --eval-iters=${evalIters.requested} to keep it.`,
    );
  } else if (evalIters.affordable < evalIters.requested) {
    lines.push(
      `note: evaluation takes ${formatDuration(run.evalSeconds)} of this run, longer than its ${run.steps} steps (${formatDuration(run.stepSeconds)}); --eval-iters=${evalIters.requested} is kept because ${context.evalItersGiven ? 'it was given on the command line' : 'lowering it was not asked for'} (lowered, it would be ${evalIters.affordable}).`,
    );
  }
  lines.push(
    `time estimate: ${formatDuration(run.totalSeconds)} on ${context.backend}: ${run.steps} steps × ${formatMs(event.msPerStep)} + ${run.evaluations} evaluation${run.evaluations === 1 ? '' : 's'} × 2 × ${evalIters.used} batches × ${formatMs(event.msPerEvalBatch)} (timed on this run's first ${event.timedSteps === 1 ? 'step' : `${event.timedSteps} steps`})`,
  );
  const limit = context.longRunSeconds ?? LONG_RUN_SECONDS;
  if (run.totalSeconds <= limit) return lines;
  const { config } = context;
  const ways: string[] = [];
  if (context.cpuConfigHere && context.backend !== 'tensorflow-gpu' && context.backend !== 'webgpu')
    ways.push(`the CPU-sized example config: --config ${CPU_CONFIG}`);
  const smaller = PRESETS_BY_SIZE.slice(PRESETS_BY_SIZE.indexOf(config.preset) + 1);
  if (smaller.length > 0)
    ways.push(
      `a smaller model: ${smaller.map((p) => `--preset ${p} (${PRESET_SIZES[p]})`).join(' or ')}`,
    );
  const fitting = Math.floor((run.steps * limit) / run.totalSeconds);
  if (fitting >= 1)
    ways.push(`fewer steps: --max-iters=${fitting} fits in ${formatDuration(limit)} at this speed`);
  if (context.backend !== 'tensorflow-gpu' && context.backend !== 'webgpu') {
    ways.push(`an NVIDIA GPU: --backend tensorflow-gpu (${installHint('tensorflow-gpu')})`);
    ways.push(`any other GPU: --backend webgpu (${installHint('webgpu')})`);
  }
  lines.push(
    `warning: this run will take about ${formatDuration(run.totalSeconds)} on ${context.backend}, over ${formatDuration(limit)}. To finish sooner, try:`,
    ...ways.map((way) => `  - ${way}`),
    '  Ctrl-C stops it now; a run stopped later continues from its last checkpoint with --resume.',
  );
  return lines;
}

function estimatedEvalSeconds(
  event: Extract<TrainerEvent, { type: 'estimate' }>,
  evalIters: number,
): number {
  return (event.run.evaluations * 2 * evalIters * event.msPerEvalBatch) / 1000;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

/**
 * A refused resume in the command line's words: which flag (or config-file key) would change
 * the checkpoint's run, what the checkpoint has, and what may be given instead.
 */
function resumeConflictMessage(
  error: ResumeConfigError,
  sources: {
    overrides: Record<string, unknown>;
    preset: string | undefined;
    configFile: string | undefined;
  },
): string {
  const given = error.conflicts.map((conflict) => {
    const where =
      conflict.key in sources.overrides
        ? `${flag(conflict.key)}=${String(conflict.given)}`
        : conflict.key === 'preset' && sources.preset !== undefined
          ? `--preset=${sources.preset}`
          : `${conflict.key}: ${JSON.stringify(conflict.given)} in ${sources.configFile ?? 'the config'}`;
    return `${where} (the checkpoint has ${JSON.stringify(conflict.checkpoint)})`;
  });
  const checkpoint = error.file ? shown(dirname(error.file)) : 'the checkpoint';
  return (
    `${checkpoint}: --resume continues that run as it was, so ${given.join(' and ')} cannot change. ` +
    `On --resume only ${RESUME_OVERRIDABLE_KEYS.map(flag).join(', ')} may be given; ` +
    'to change the model or other training settings, train into a new --out.'
  );
}
