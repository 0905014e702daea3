// `minigpt generate`: streams text from an exported model with onnxruntime-node.
import { loadModel, type Device } from '@minigpt/runner-node';
import { Command, Option } from 'commander';
import { finiteNumber, integer } from '../parsers.js';

interface GenerateFlags {
  model: string;
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  device: Device;
  stop?: string[];
  stats: boolean;
}

export function generateCommand(): Command {
  return new Command('generate')
    .description('Generate text from an exported model (onnxruntime-node), streaming to stdout.')
    .requiredOption('--model <dir>', 'an export directory (from `minigpt export`)')
    .option('--prompt <text>', 'text to continue', '\n')
    .option('--max-new-tokens <n>', 'tokens to generate', integer, 500)
    .option('--temperature <x>', '0 = greedy; higher = more random', finiteNumber, 0.8)
    .option('--top-k <k>', 'sample only from the k most likely tokens', integer)
    .option('--top-p <p>', 'sample from the smallest set with probability ≥ p', finiteNumber)
    .option('--seed <n>', 'random seed (same seed, same text, on every runner)', integer, 1337)
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
          temperature: flags.temperature,
          seed: flags.seed,
          ...(flags.topK !== undefined ? { topK: flags.topK } : {}),
          ...(flags.topP !== undefined ? { topP: flags.topP } : {}),
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
