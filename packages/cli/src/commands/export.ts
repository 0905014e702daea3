// `minigpt export`: a training checkpoint → an ONNX export directory for the runners.
import { relative } from 'node:path';
import { exportCheckpoint } from '@minigpt/export-onnx';
import { Command } from 'commander';

export function exportCommand(): Command {
  return new Command('export')
    .description(
      'Export a checkpoint to ONNX (model.onnx + minigpt.json + vocab.json, and Hugging Face config.json/tokenizer.json).',
    )
    .requiredOption(
      '--checkpoint <dir>',
      'a checkpoint dir, or a training --out dir (uses its latest checkpoint)',
    )
    .requiredOption('--out <dir>', 'the export directory')
    .option('--force', 'replace an export already in --out', false)
    .action(async (flags: { checkpoint: string; out: string; force: boolean }) => {
      const started = performance.now();
      const result = await exportCheckpoint({
        checkpoint: flags.checkpoint,
        outDir: flags.out,
        force: flags.force,
      });
      const shown = (path: string) => relative(process.cwd(), path) || '.';
      const model = result.manifest['model'] as {
        nLayer: number;
        nEmbd: number;
        vocabSize: number;
      };
      process.stdout.write(
        `exported ${shown(result.checkpointDir)} → ${shown(result.outDir)}/ (model.onnx ${(result.modelBytes / 1e6).toFixed(1)} MB, ` +
          `${model.nLayer} layers, ${model.nEmbd} wide, vocab ${model.vocabSize}, opset 17) in ${((performance.now() - started) / 1000).toFixed(2)} s\n` +
          `generate: minigpt generate --model ${shown(result.outDir)} --prompt "…"\n`,
      );
    });
}
