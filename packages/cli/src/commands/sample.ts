// `minigpt sample`: generates text from a checkpoint with the tfjs model, streaming it.
import { Random } from '@minigpt/random';
import type { BackendName } from '@minigpt/trainer/config';
import { Command, Option } from 'commander';
import { CliError } from '../errors.js';
import { loadTrainer } from '../tfjs.js';
import { samplingOf, withSamplingOptions, type SamplingFlags } from './sampling-options.js';

interface SampleFlags extends SamplingFlags {
  checkpoint: string;
  backend: BackendName | 'auto';
}

export function sampleCommand(): Command {
  return withSamplingOptions(
    new Command('sample')
      .description('Generate text from a training checkpoint (tfjs).')
      .requiredOption(
        '--checkpoint <dir>',
        'a checkpoint dir, or a training --out dir (uses its latest checkpoint)',
      ),
  )
    .addOption(
      new Option('--backend <name>', 'tfjs backend')
        .choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'])
        .default('auto'),
    )
    .action(async (flags: SampleFlags) => {
      const {
        trainer: { selectBackend },
        node: { NODE_CANDIDATES, loadCheckpoint },
      } = await loadTrainer();
      // Not WebGPU: tfjs sampling reads logits synchronously, which WebGPU in Node cannot.
      await selectBackend(
        flags.backend,
        NODE_CANDIDATES.filter((candidate) => candidate.name !== 'webgpu'),
      );
      const { model, tokenizer } = await loadCheckpoint(flags.checkpoint);
      try {
        const prompt = tokenizer.encode(flags.prompt);
        if (prompt.length === 0)
          throw new CliError('the prompt encodes to no tokens; pass a non-empty --prompt');
        process.stdout.write(flags.prompt);
        const generated: number[] = [];
        let printed = '';
        model.generate(prompt, flags.maxNewTokens, {
          random: new Random(flags.seed),
          ...samplingOf(flags),
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
