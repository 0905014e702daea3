// `minigpt sample`: generates text from a checkpoint with the tfjs model, streaming it.
import { Random } from '@minigpt/random';
import { loadCheckpoint, selectBackend, type BackendName } from '@minigpt/trainer';
import { Command, InvalidArgumentError, Option } from 'commander';
import { integer, nonNegative, positiveInteger, probability } from '../parsers.js';

interface SampleFlags {
  checkpoint: string;
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  backend: BackendName | 'auto';
}

export function sampleCommand(): Command {
  return new Command('sample')
    .description('Generate text from a training checkpoint (tfjs).')
    .requiredOption(
      '--checkpoint <dir>',
      'a checkpoint dir, or a training --out dir (uses its latest checkpoint)',
    )
    .option('--prompt <text>', 'text to continue', '\n')
    .option('--max-new-tokens <n>', 'tokens to generate', positiveInteger, 500)
    .option('--temperature <x>', '0 = greedy; higher = more random', nonNegative, 0.8)
    .option('--top-k <k>', 'sample only from the k most likely tokens', positiveInteger)
    .option('--top-p <p>', 'sample from the smallest set with probability ≥ p', probability)
    .option('--seed <n>', 'random seed (same seed, same text)', integer, 1337)
    .addOption(
      new Option('--backend <name>', 'tfjs backend')
        .choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'])
        .default('auto'),
    )
    .action(async (flags: SampleFlags) => {
      await selectBackend(flags.backend);
      const { model, tokenizer } = await loadCheckpoint(flags.checkpoint);
      try {
        const prompt = tokenizer.encode(flags.prompt);
        if (prompt.length === 0)
          throw new InvalidArgumentError(
            'the prompt encodes to no tokens; pass a non-empty --prompt',
          );
        process.stdout.write(flags.prompt);
        const generated: number[] = [];
        let printed = '';
        model.generate(prompt, flags.maxNewTokens, {
          random: new Random(flags.seed),
          temperature: flags.temperature,
          ...(flags.topK !== undefined ? { topK: flags.topK } : {}),
          ...(flags.topP !== undefined ? { topP: flags.topP } : {}),
          onToken: (id) => {
            generated.push(id);
            // Decode what we have; print only whole characters (BPE ids can split one).
            const text = tokenizer.decode(generated);
            if (!text.endsWith('\uFFFD')) {
              process.stdout.write(text.slice(printed.length));
              printed = text;
            }
          },
        });
        process.stdout.write(`${tokenizer.decode(generated).slice(printed.length)}\n`);
      } finally {
        model.dispose();
      }
    });
}
