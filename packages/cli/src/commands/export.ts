// `minigpt export`: a training checkpoint → an ONNX export directory for the runners.
import { Command, Option } from 'commander';
import { CliError } from '../errors.js';
import { commandLine, shownPath } from '../invocation.js';

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
    .option(
      '--hf',
      "also write model.safetensors in GPT-2's layout: the directory is then a GPT-2 model that PyTorch's transformers (GPT2LMHeadModel.from_pretrained) and minigpt train --init-from load",
      false,
    )
    .option(
      '--fused',
      "build the graphs from onnxruntime's com.microsoft operators (SkipLayerNormalization, MultiHeadAttention, BiasGelu): fewer, larger kernels per token; runs on onnxruntime (node, web, transformers.js), not on other ONNX runtimes",
      false,
    )
    .action(
      async (flags: {
        checkpoint: string;
        out: string;
        force: boolean;
        quantize?: 'int8';
        hf: boolean;
        fused: boolean;
      }) => {
        const started = performance.now();
        // Loaded here, not at the CLI's start: every other command would pay for it.
        const [{ ExportError }, { exportCheckpoint }] = await Promise.all([
          import('@minigpt/export-onnx'),
          import('@minigpt/export-onnx/node'),
        ]);
        const result = await exportCheckpoint({
          checkpoint: flags.checkpoint,
          outDir: flags.out,
          force: flags.force,
          ...(flags.quantize ? { quantize: flags.quantize } : {}),
          ...(flags.hf ? { safetensors: true } : {}),
          ...(flags.fused ? { fused: true } : {}),
        }).catch((error: unknown) => {
          // The library words this fix for its API (force: true); here it is a flag.
          if (error instanceof ExportError && error.rule === 'output-exists') {
            throw new CliError(
              `${shownPath(error.file ?? flags.out)}: already holds an export. Pass --force to replace it, or choose another --out`,
              { file: error.file ?? flags.out, rule: error.rule, cause: error },
            );
          }
          throw error;
        });
        const model = result.manifest['model'] as {
          nLayer: number;
          nEmbd: number;
          vocabSize: number;
        };
        process.stdout.write(
          `exported ${shownPath(result.checkpointDir)} → ${shownPath(result.outDir)}/ (onnx/model.onnx ${(result.modelBytes / 1e6).toFixed(1)} MB, ` +
            (result.quantizedBytes !== undefined
              ? `int8 onnx/model_quantized.onnx ${(result.quantizedBytes / 1e6).toFixed(1)} MB, `
              : '') +
            (flags.hf ? 'model.safetensors (GPT-2 layout), ' : '') +
            (flags.fused ? 'com.microsoft operators, ' : '') +
            `${model.nLayer} layers, ${model.nEmbd} wide, vocab ${model.vocabSize}, opset 17) in ${((performance.now() - started) / 1000).toFixed(2)} s\n` +
            `generate: ${commandLine(['generate', '--model', shownPath(result.outDir)])}\n`,
        );
      },
    );
}
