// `minigpt train`: trains a GPT on a prepared data directory, printing progress and writing
// checkpoints, metrics.jsonl and loss.svg into --out.
import { basename, join, relative } from 'node:path';
import {
  DEFAULT_TRAIN_CONFIG,
  Trainer,
  type BackendName,
  type TrainerEvent,
} from '@minigpt/trainer';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { loadConfigFile, parseOverrides } from '../config-file.js';

interface TrainFlags {
  config?: string;
  preset?: string;
  data: string;
  out?: string;
  backend: BackendName | 'auto';
  resume: boolean;
  progress: boolean;
  native: boolean;
}

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
    .option('--resume', 'continue from <out>/checkpoints/latest', false)
    .option('--no-progress', 'print log lines instead of a progress bar')
    .option('--no-native', "on wasm, keep tfjs's own matMul instead of the native kernels")
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      'after',
      `\nAny config key is also an option: --key=value, checked against the defaults' types.\nConfig keys and defaults (preset baby):\n${Object.entries(
        DEFAULT_TRAIN_CONFIG,
      )
        .map(([key, value]) => `  --${key}=${JSON.stringify(value)}`)
        .join(
          '\n',
        )}\n\nPrecedence: defaults < preset < --config file < --key=value.\n\nExamples:\n  minigpt train --preset=baby --maxIters=500\n  minigpt train --config examples/shakespeare-char/config/train_shakespeare.ts --data data/shakespeare\n  minigpt train --resume --out out/moby-dick\n`,
    )
    .action(async function (this: Command, flags: TrainFlags) {
      await runTrain(flags, this.args);
    });
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
  const trainer = await Trainer.create({
    dataDir: flags.data,
    outDir,
    config,
    backend: flags.backend,
    resume: flags.resume,
    nativeKernels: flags.native,
    onNotice: (message) => log(`note: ${message}`),
  });
  const useBar = flags.progress && process.stderr.isTTY;
  const bar = useBar
    ? new cliProgress.SingleBar(
        {
          format:
            'train |{bar}| iter {value}/{total} | loss {loss} | {tokS} tok/s | ETA {eta_formatted}',
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const shown = (path: string) => relative(process.cwd(), path) || '.';
  try {
    await trainer.train((event: TrainerEvent) => {
      switch (event.type) {
        case 'start': {
          for (const skipped of event.skippedBackends)
            log(`backend ${skipped.name}: not used (${skipped.reason})`);
          log(`backend: ${event.backend}`);
          const native = event.nativeKernels;
          if (native?.installed)
            log(
              `native kernels: ${native.kernels.join(', ')} on ${native.threads} thread${native.threads === 1 ? '' : 's'} (${native.vectorLanes}-float SIMD)`,
            );
          else if (native) log(`native kernels: not used (${native.reason})`);
          const m = event.model;
          log(
            `model: ${m.nLayer} layers, ${m.nHead} heads, ${m.nEmbd} wide, block ${m.blockSize}, vocab ${m.vocabSize}: ${(event.parameters / 1e6).toFixed(2)}M parameters`,
          );
          const c = event.config;
          log(
            `training: batch ${c.batchSize}×${c.gradientAccumulationSteps}, lr ${c.learningRate} → ${c.minLr}, ${c.maxIters} iterations${event.resumedFrom ? `, resuming from ${shown(event.resumedFrom)} at iteration ${event.startIteration}` : ''}`,
          );
          if (event.microBatchRows < c.batchSize) {
            log(
              `each batch of ${c.batchSize} runs as ${c.batchSize / event.microBatchRows} passes of ${event.microBatchRows} rows to fit ${event.backend} memory (same gradients)`,
            );
          }
          bar?.start(c.maxIters, event.startIteration, { loss: '-', tokS: '-' });
          break;
        }
        case 'step':
          if (bar)
            bar.update(event.iter, {
              loss: event.loss.toFixed(4),
              tokS: event.tokensPerSec.toFixed(0),
            });
          else if (event.iter % trainer.config.logInterval === 0) {
            log(
              `iter ${event.iter}: loss ${event.loss.toFixed(4)}, lr ${event.lr.toExponential(2)}, ${event.msPerIter.toFixed(0)} ms/iter, ${event.tokensPerSec.toFixed(0)} tok/s`,
            );
          }
          break;
        case 'eval': {
          const line = `eval at iter ${event.iter}: train loss ${event.trainLoss.toFixed(4)}, val loss ${event.valLoss.toFixed(4)}${event.best ? ' (best so far)' : ''}`;
          if (bar) bar.stop();
          log(line);
          if (bar && event.iter < trainer.config.maxIters)
            bar.start(trainer.config.maxIters, event.iter, { loss: '-', tokS: '-' });
          break;
        }
        case 'checkpoint':
          if (!bar) log(`saved ${shown(event.dir)} (${event.reason})`);
          break;
        case 'done':
          bar?.stop();
          log(
            `done in ${(event.seconds / 60).toFixed(1)} min; best val loss ${event.bestValLoss?.toFixed(4) ?? '-'}`,
          );
          log(`checkpoints, metrics.jsonl and loss.svg in ${shown(outDir)}/`);
          log(`sample: minigpt sample --checkpoint ${shown(outDir)}`);
          break;
      }
    });
  } finally {
    bar?.stop();
    trainer.dispose();
  }
}
