// `minigpt export`: a training checkpoint → an ONNX export directory for the runners.
import { relative } from 'node:path';
import { exportCheckpoint } from '@minigpt/export-onnx';
import { Command, Option } from 'commander';

export function exportCommand(): Command {
  return new Command('export')
    .description(
      'Export a checkpoint to ONNX in the Hugging Face layout (onnx/model.onnx, config.json, tokenizer.json, …) that transformers.js and minigpt generate load.',
    )
    .requiredOption(
      '--checkpoint <dir>',
      'a checkpoint dir, or a training --out dir (uses its latest checkpoint)',
    )
    .requiredOption('--out <dir>', 'the export directory')
    .option('--force', 'replace an export already in --out', false)
    .addOption(
      new Option(
        '--quantize <kind>',
        'also write onnx/model_quantized.onnx with int8 weights (transformers.js dtype "q8", generate --dtype q8)',
      ).choices(['int8']),
    )
    .action(
      async (flags: { checkpoint: string; out: string; force: boolean; quantize?: 'int8' }) => {
        const started = performance.now();
        const result = await exportCheckpoint({
          checkpoint: flags.checkpoint,
          outDir: flags.out,
          force: flags.force,
          ...(flags.quantize ? { quantize: flags.quantize } : {}),
        });
        const shown = (path: string) => relative(process.cwd(), path) || '.';
        const model = result.manifest['model'] as {
          nLayer: number;
          nEmbd: number;
          vocabSize: number;
        };
        process.stdout.write(
          `exported ${shown(result.checkpointDir)} → ${shown(result.outDir)}/ (onnx/model.onnx ${(result.modelBytes / 1e6).toFixed(1)} MB, ` +
            (result.quantizedBytes !== undefined
              ? `int8 onnx/model_quantized.onnx ${(result.quantizedBytes / 1e6).toFixed(1)} MB, `
              : '') +
            `${model.nLayer} layers, ${model.nEmbd} wide, vocab ${model.vocabSize}, opset 17) in ${((performance.now() - started) / 1000).toFixed(2)} s\n` +
            `generate: minigpt generate --model ${shown(result.outDir)} --prompt "…"\n`,
        );
      },
    );
}
