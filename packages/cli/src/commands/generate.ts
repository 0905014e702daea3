// `minigpt generate`: streams text from an exported model with onnxruntime-node.
import { loadModel, type Device } from '@minigpt/runner-node';
import { Command, Option } from 'commander';
import { samplingOf, withSamplingOptions, type SamplingFlags } from './sampling-options.js';

interface GenerateFlags extends SamplingFlags {
  model: string;
  device: Device;
  stop?: string[];
  stats: boolean;
}

export function generateCommand(): Command {
  return withSamplingOptions(
    new Command('generate')
      .description('Generate text from an exported model (onnxruntime-node), streaming to stdout.')
      .requiredOption('--model <dir>', 'an export directory (from `minigpt export`)'),
  )
    .option('--stop <text...>', 'stop before any of these strings')
    .addOption(
      new Option('--device <name>', 'cpu, or cuda where onnxruntime-node has its CUDA files')
        .choices(['cpu', 'cuda'])
        .default('cpu'),
    )
    .option(
      '--stats',
      'print {"newTokens","tokensPerSec","firstTokenMs","device"} as JSON to stderr at the end',
      false,
    )
    .action(async (flags: GenerateFlags) => {
      const model = await loadModel(flags.model, {
        device: flags.device,
        onWarning: (message) => process.stderr.write(`minigpt: warning: ${message}\n`),
      });
      try {
        const generation = model.generate(flags.prompt, {
          maxNewTokens: flags.maxNewTokens,
          seed: flags.seed,
          ...samplingOf(flags),
          ...(flags.stop ? { stop: flags.stop } : {}),
        });
        process.stdout.write(flags.prompt);
        for await (const piece of generation) process.stdout.write(piece);
        process.stdout.write('\n');
        if (flags.stats) {
          const { newTokens, tokensPerSec, firstTokenMs } = generation.stats;
          process.stderr.write(
            `${JSON.stringify({ newTokens, tokensPerSec: Math.round(tokensPerSec), firstTokenMs: +firstTokenMs.toFixed(2), device: model.device })}\n`,
          );
        }
      } finally {
        await model.dispose();
      }
    });
}
