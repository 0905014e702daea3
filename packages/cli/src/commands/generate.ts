// `minigpt generate`: streams text from an exported model with onnxruntime-node, for one
// prompt or a file of prompts run in batches.
import { describeFileSystemError } from '@minigpt/errors';
import {
  DEFAULT_SPIN_MICROSECONDS,
  loadModel,
  type Device,
  type ModelDtype,
} from '@minigpt/runner-node';
import { Command, Option } from 'commander';
import { open } from 'node:fs/promises';
import { CliError } from '../errors.js';
import { intraOpThreads, positiveInteger, spinBound } from '../parsers.js';
import { samplingOf, withSamplingOptions, type SamplingFlags } from './sampling-options.js';

interface GenerateFlags extends SamplingFlags {
  model: string;
  device: Device;
  dtype: ModelDtype;
  stop?: string[];
  stats: boolean;
  verbose: boolean;
  promptFile?: string;
  batchSize: number;
  threads?: number | 'adaptive' | 'default';
  spinning?: boolean | number;
}

/** A prompt file is text a person wrote; a bigger one is refused before it is read. */
const PROMPT_FILE_MAX_BYTES = 16 << 20;

export function generateCommand(): Command {
  return withSamplingOptions(
    new Command('generate')
      .description('Generate text from an exported model (onnxruntime-node), streaming to stdout.')
      .requiredOption('--model <dir>', 'an export directory (from `minigpt export`)'),
  )
    .option(
      '--prompt-file <file>',
      'prompts, one a line (empty lines skipped), run in batches; each output is headed "--- i/N ---"',
    )
    .option('--batch-size <n>', 'prompts run together in one batch', positiveInteger, 8)
    .option('--stop <text...>', 'stop before any of these strings')
    .addOption(
      new Option('--device <name>', 'cpu, or cuda where onnxruntime-node has its CUDA files')
        .choices(['cpu', 'cuda'])
        .default('cpu'),
    )
    .addOption(
      new Option('--dtype <name>', 'fp32, or q8 for the int8 graph of `export --quantize int8`')
        .choices(['fp32', 'q8'])
        .default('fp32'),
    )
    .option(
      '--threads <n>',
      "threads per operator on CPU: a number, default (onnxruntime's pool) or adaptive (a thread per core or one, whichever measures faster as it runs; the default for a model file up to 256 MiB)",
      intraOpThreads,
    )
    .option(
      '--spinning <setting>',
      `how long idle onnxruntime threads spin before they sleep: microseconds (default ${DEFAULT_SPIN_MICROSECONDS}), off (for a machine other work keeps busy) or on (onnxruntime's own)`,
      spinBound,
    )
    .option(
      '--stats',
      'print {"prompts","newTokens","tokensPerSec","firstTokenMs","device","dtype"} as JSON to stderr at the end',
      false,
    )
    .option(
      '--verbose',
      "also print onnxruntime's own log (warnings, and provider libraries it cannot load)",
      false,
    )
    .action(async (flags: GenerateFlags, command: Command) => {
      if (flags.promptFile !== undefined && command.getOptionValueSource('prompt') === 'cli')
        throw new CliError('give --prompt or --prompt-file, not both');
      const prompts =
        flags.promptFile === undefined ? [flags.prompt] : await readPromptFile(flags.promptFile);
      const model = await loadModel(flags.model, {
        device: flags.device,
        dtype: flags.dtype,
        ...(flags.threads !== undefined ? { intraOpThreads: flags.threads } : {}),
        ...(flags.spinning !== undefined ? { spinning: flags.spinning } : {}),
        ...(flags.verbose ? { logLevel: 'warning' as const } : {}),
        onWarning: (message) => process.stderr.write(`minigpt: warning: ${message}\n`),
      });
      const started = performance.now();
      let newTokens = 0;
      let firstTokenMs = 0;
      try {
        for (let first = 0; first < prompts.length; first += flags.batchSize) {
          const batch = prompts.slice(first, first + flags.batchSize);
          const generation = model.generateBatch(batch, {
            maxNewTokens: flags.maxNewTokens,
            seed: flags.seed + first, // row i of the file samples with seed + i, batched or not
            ...samplingOf(flags),
            ...(flags.stop ? { stop: flags.stop } : {}),
          });
          // Rows in order: the first streams live, the others have run alongside it and
          // print what they have, then stream on.
          for (const [index, row] of generation.rows.entries()) {
            if (prompts.length > 1)
              process.stdout.write(`--- ${first + index + 1}/${prompts.length} ---\n`);
            process.stdout.write(batch[index]!);
            for await (const piece of row) process.stdout.write(piece);
            process.stdout.write('\n');
            newTokens += row.stats.newTokens;
            if (first === 0 && index === 0) firstTokenMs = row.stats.firstTokenMs;
          }
        }
        if (flags.stats) {
          const seconds = (performance.now() - started) / 1000;
          process.stderr.write(
            `${JSON.stringify({
              prompts: prompts.length,
              newTokens,
              tokensPerSec: Math.round(seconds > 0 ? newTokens / seconds : 0),
              firstTokenMs: +firstTokenMs.toFixed(2),
              device: model.device,
              dtype: model.dtype,
            })}\n`,
          );
        }
      } finally {
        await model.dispose();
      }
    });
}

/**
 * The non-empty lines of a prompt file (a trailing \r is dropped: files from Windows). Read
 * in chunks up to the cap rather than sized by stat, so a pipe (`--prompt-file <(…)`) works
 * and a device that never ends (`/dev/zero`) is refused at the cap.
 */
async function readPromptFile(path: string): Promise<string[]> {
  const chunks: Uint8Array[] = [];
  try {
    const file = await open(path, 'r');
    try {
      let total = 0;
      for (;;) {
        const { bytesRead, buffer } = await file.read({ buffer: new Uint8Array(1 << 16) });
        if (bytesRead === 0) break;
        total += bytesRead;
        if (total > PROMPT_FILE_MAX_BYTES)
          throw new CliError(
            `${path}: over the ${PROMPT_FILE_MAX_BYTES} bytes a prompt file may have`,
            { file: path, rule: 'too-large' },
          );
        chunks.push(buffer.subarray(0, bytesRead));
      }
    } finally {
      await file.close();
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    if ((error as { code?: unknown }).code === 'ENOENT')
      throw new CliError(`${path}: no such prompt file`, { file: path, rule: 'missing' });
    throw describeFileSystemError(error, 'the prompt file', path) ?? error;
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new CliError(`${path}: not UTF-8 text`, { file: path, rule: 'encoding' });
  }
  const prompts = text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.length > 0);
  if (prompts.length === 0)
    throw new CliError(`${path}: no prompts (every line is empty)`, { file: path, rule: 'empty' });
  return prompts;
}
