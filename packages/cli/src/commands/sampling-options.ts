// The sampling options `sample` (tfjs) and `generate` (onnxruntime) share, so both commands
// take the same flags, checked the same way.
import type { Command } from 'commander';
import { integer, nonNegative, positiveInteger, probability } from '../parsers.js';

export interface SamplingFlags {
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
}

export function withSamplingOptions(command: Command): Command {
  return command
    .option('--prompt <text>', 'text to continue', '\n')
    .option('--max-new-tokens <n>', 'tokens to generate', positiveInteger, 500)
    .option('--temperature <x>', '0 = greedy; higher = more random', nonNegative, 0.8)
    .option('--top-k <k>', 'sample only from the k most likely tokens', positiveInteger)
    .option('--top-p <p>', 'sample from the smallest set with probability ≥ p', probability)
    .option('--seed <n>', 'random seed (same seed, same text)', integer, 1337);
}

/** The sampling settings of the flags, for GPT.generate and the runtime's generate. */
export function samplingOf(flags: SamplingFlags) {
  return {
    temperature: flags.temperature,
    ...(flags.topK !== undefined ? { topK: flags.topK } : {}),
    ...(flags.topP !== undefined ? { topP: flags.topP } : {}),
  };
}
