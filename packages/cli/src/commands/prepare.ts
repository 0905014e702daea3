// `minigpt prepare`: a text file or built-in corpus → train.bin, val.bin, vocab.json,
// meta.json in an output directory (see @minigpt/data for the formats).
import { stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { TokenizerChoice } from '@minigpt/data';
import { binarize, readTokenizerFiles } from '@minigpt/data/node';
import type { Tokenizer } from '@minigpt/tokenizer';
import { Command, Option } from 'commander';
import { fraction, positiveInteger } from '../parsers.js';
import {
  DEFAULT_BPE_VOCAB,
  DEFAULT_DATASET,
  DATASETS,
  defaultBpeVocabSize,
  defaultDataDir,
  findDataset,
} from '../datasets.js';
import { CliError } from '../errors.js';
import { commandLine, shownPath } from '../invocation.js';
import { createByteProgress } from '../progress.js';

/** Inputs at least this large get a progress bar (on a terminal). */
const PROGRESS_MIN_BYTES = 8 << 20;

export interface PrepareFlags {
  input?: string;
  dataset?: string;
  /** A kind to build ('char', 'bpe'), or the path of a ready tokenizer. */
  tokenizer: TokenizerChoice | (string & {});
  vocabSize?: number;
  valFraction: number;
  out?: string;
  force: boolean;
  newlines: 'universal' | 'keep';
  progress: boolean;
}

export function prepareCommand(): Command {
  const datasetList = [...DATASETS.values()]
    .map((d) => `  ${d.name.padEnd(12)} ${d.description}`)
    .join('\n');
  return new Command('prepare')
    .description(
      'Tokenize a text into train.bin / val.bin (nanoGPT-compatible), vocab.json and meta.json.',
    )
    .addOption(new Option('--input <file>', 'your own UTF-8 text file').conflicts('dataset'))
    .addOption(new Option('--dataset <name>', `a built-in corpus (default: ${DEFAULT_DATASET})`))
    .addOption(
      new Option(
        '--tokenizer <kind or path>',
        "char or bpe: build one from the text; a path: use that tokenizer as it is — a Hugging Face model directory (tokenizer.json, or GPT-2's vocab.json + merges.txt), a tokenizer.json, or a minigpt export or prepared directory",
      ).default('char'),
    )
    .addOption(
      new Option(
        '--vocab-size <n>',
        `BPE vocabulary size (default: from the text's size, ${DEFAULT_BPE_VOCAB.min} to ${DEFAULT_BPE_VOCAB.max})`,
      ).argParser(positiveInteger),
    )
    .addOption(
      new Option('--val-fraction <x>', 'share of the text, from its end, kept for validation')
        .argParser(fraction)
        .default(0.1),
    )
    .addOption(
      new Option(
        '--newlines <mode>',
        'universal: read \\r\\n and \\r as \\n (as nanoGPT); keep: as is',
      )
        .choices(['universal', 'keep'])
        .default('universal'),
    )
    .option(
      '--out <dir>',
      'output directory (default: data/<name> for char, data/<name>-bpe<vocab size> for bpe; <name>: the dataset, or the input file without extension)',
    )
    .option('--force', 'replace prepared data already in the output directory', false)
    .option('--no-progress', 'never show a progress bar')
    .addHelpText(
      'after',
      `\nBuilt-in datasets:\n${datasetList}\n\nExamples:\n  minigpt prepare                        → data/moby-dick\n  minigpt prepare --tokenizer bpe        → data/moby-dick-bpe1024\n  minigpt prepare --input notes.txt      → data/notes\n  minigpt prepare --input notes.txt --tokenizer models/gpt2\n                                         → data/notes-gpt2 (GPT-2's tokenizer, for train --init-from models/gpt2)`,
    )
    .action(async (flags: PrepareFlags) => {
      await runPrepare(flags);
    });
}

export async function runPrepare(flags: PrepareFlags): Promise<void> {
  if (flags.vocabSize !== undefined && flags.tokenizer !== 'bpe') {
    throw new CliError(
      flags.tokenizer === 'char'
        ? '--vocab-size applies to --tokenizer bpe only (a char vocabulary is the set of characters in the text)'
        : '--vocab-size applies to --tokenizer bpe only (a ready tokenizer has its own vocabulary)',
    );
  }
  // A ready tokenizer, read (and checked) before the text is.
  let ready: Tokenizer | undefined;
  if (flags.tokenizer !== 'char' && flags.tokenizer !== 'bpe') {
    if (!(await stat(flags.tokenizer).catch(() => undefined))) {
      throw new CliError(
        `--tokenizer ${flags.tokenizer}: not char or bpe, and no such file or directory (a ready tokenizer is a tokenizer.json, or a directory holding one)`,
      );
    }
    const { tokenizer, files } = await readTokenizerFiles(flags.tokenizer);
    ready = tokenizer;
    process.stderr.write(
      `tokenizer: ${files.map((file) => shownPath(file)).join(' + ')} (${tokenizer.type}, vocab size ${tokenizer.vocabSize.toLocaleString('en-US')})\n`,
    );
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const dataset =
    flags.input === undefined ? findDataset(flags.dataset ?? DEFAULT_DATASET) : undefined;
  const name = dataset?.name ?? (basename(flags.input!, extname(flags.input!)) || 'data');
  // A built-in dataset resolves to a local file first: the BPE default depends on its size.
  const input = dataset ? await dataset.resolve({ env: process.env, log }) : flags.input!;
  const inputBytes = await stat(input)
    .then((info) => info.size)
    .catch(() => 0);
  let vocabSize = flags.vocabSize;
  if (flags.tokenizer === 'bpe' && vocabSize === undefined) {
    vocabSize = defaultBpeVocabSize(inputBytes);
    log(
      `BPE vocab size ${vocabSize}: the default for a ${size(inputBytes)} text ` +
        `(${DEFAULT_BPE_VOCAB.min} to ${DEFAULT_BPE_VOCAB.max}, growing with the text). A bigger vocabulary ` +
        'makes the text fewer tokens but each training step slower; --vocab-size to change.',
    );
  }
  const outDir =
    flags.out ??
    (ready
      ? join('data', `${name}-${readyTokenizerName(flags.tokenizer)}`)
      : defaultDataDir(name, flags.tokenizer as TokenizerChoice, vocabSize));
  const progress = createByteProgress(flags.progress && inputBytes >= PROGRESS_MIN_BYTES);
  const started = performance.now();
  let result;
  try {
    result = await binarize({
      input,
      outDir,
      tokenizer: ready ?? (flags.tokenizer as TokenizerChoice),
      vocabSize,
      valFraction: flags.valFraction,
      newlines: flags.newlines,
      force: flags.force,
      onProgress: ({ phase, bytesDone, bytesTotal }) =>
        progress.update(phase, bytesDone, bytesTotal),
    });
  } finally {
    progress.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const { meta } = result;
  const shown = shownPath(result.outDir);
  const count = (n: number) => n.toLocaleString('en-US');
  process.stdout.write(
    [
      `prepared ${name} (${count(meta.source.bytes)} bytes, sha256 ${meta.source.sha256.slice(0, 12)}…) → ${shown}/`,
      `  vocab.json  ${meta.tokenizer} tokenizer, vocab size ${count(meta.vocabSize)}`,
      `  train.bin   ${count(meta.trainTokens)} tokens (${meta.dtype})`,
      `  val.bin     ${count(meta.valTokens)} tokens (${meta.dtype})`,
      `  done in ${seconds.toFixed(2)} s (${(meta.source.bytes / 1e6 / Math.max(seconds, 1e-6)).toFixed(1)} MB/s)`,
      `train: ${commandLine(['train', '--data', shown])}`,
      '',
    ].join('\n'),
  );
}

/** A short name for a ready tokenizer's path: its directory's name (models/gpt2 → gpt2). */
function readyTokenizerName(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, '');
  const base = basename(trimmed, extname(trimmed));
  const name = base === 'tokenizer' || base === 'vocab' ? basename(join(trimmed, '..')) : base;
  return name.replace(/[^\w.-]+/g, '-') || 'tokenizer';
}

/** A file size as people say it: 1.2 MB, 40 kB, 300 bytes. */
function size(bytes: number): string {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} kB`;
  return `${bytes} bytes`;
}
