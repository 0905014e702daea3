// Text file → train.bin / val.bin (raw little-endian token ids), vocab.json, meta.json.
// Streams the input (bounded memory for any size) and writes all outputs under temporary
// names first, so an interrupted run never leaves half-written data behind. Where the split
// falls, how the tokenizer is built and what meta.json says are the rules prepareText uses
// (../prepare.ts): the same text gives the same files as prepareText's arrays.
import {
  mkdir,
  readdir,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
  open,
  type FileHandle,
} from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, join, resolve } from 'node:path';
import {
  BpeTokenizer,
  CharVocabularyBuilder,
  type Tokenizer,
  type StreamEncoder,
} from '@minigpt/tokenizer';
import { makeDirectory, removeCreatedDirectories, withPath } from '@minigpt/errors/node';
import { DataError } from '../errors.js';
import { FILE_NAMES, dtypeFor, type DataMeta, type Split, type TokenDtype } from '../meta.js';
import {
  DEFAULT_BPE_VOCAB_SIZE,
  DEFAULT_MIN_TOKENS_PER_SPLIT,
  DEFAULT_VAL_FRACTION,
  checkSplitSizes,
  checkValFraction,
  dataMetaOf,
  noTextError,
  streamEncoderOf,
  trainCharactersOf,
  unknownTokenizerError,
  type TokenizerChoice,
} from '../prepare.js';
import { countCodePoints, offsetOfCodePoint, type NewlineMode } from '../text.js';
import { readTextPieces } from './text-reader.js';

export interface BinarizeOptions {
  /** The UTF-8 text file to prepare. */
  readonly input: string;
  /** Where train.bin, val.bin, vocab.json and meta.json go (created if missing). */
  readonly outDir: string;
  /** A kind to build from the text (default `'char'`), or a ready tokenizer to use as is. */
  readonly tokenizer?: TokenizerChoice | Tokenizer;
  /** BPE only: vocabulary size to train to (default 4096). */
  readonly vocabSize?: number;
  /** Share of the text (by characters, taken from the end) that goes to val. Default 0.1. */
  readonly valFraction?: number;
  /** Default `'universal'`: \r\n and \r read as \n, like Python's open() in nanoGPT. */
  readonly newlines?: NewlineMode;
  /** Each split must hold at least this many tokens (blockSize + 1 for training). Default 2. */
  readonly minTokensPerSplit?: number;
  /** Replace prepared data already in `outDir`. Without it, such a directory is refused. */
  readonly force?: boolean;
  readonly onProgress?: (progress: BinarizeProgress) => void;
  /** Read size in bytes (default 1 MiB); memory use is a small multiple of it. */
  readonly chunkBytes?: number;
}

export interface BinarizeProgress {
  /** `scan`: validate, hash, count; `train-tokenizer`: BPE training; `encode`: write tokens. */
  readonly phase: 'scan' | 'train-tokenizer' | 'encode';
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

export interface BinarizeResult {
  readonly outDir: string;
  readonly meta: DataMeta;
  readonly tokenizer: Tokenizer;
  /** Absolute paths of the four files written. */
  readonly files: {
    readonly train: string;
    readonly val: string;
    readonly vocab: string;
    readonly meta: string;
  };
}

const OUTPUT_FILES = Object.values(FILE_NAMES);
const TEMP_PREFIX = '.minigpt-prepare-';
const IS_BIG_ENDIAN = endianness() === 'BE';

export async function binarize(options: BinarizeOptions): Promise<BinarizeResult> {
  const input = resolve(options.input);
  const outDir = resolve(options.outDir);
  const newlines = options.newlines ?? 'universal';
  const valFraction = options.valFraction ?? DEFAULT_VAL_FRACTION;
  const minTokens = options.minTokensPerSplit ?? DEFAULT_MIN_TOKENS_PER_SPLIT;
  const chunkBytes = options.chunkBytes;
  checkValFraction(input, valFraction);
  const inputStat = await statInput(input);
  await refuseExistingData(outDir, options.force ?? false);
  const bytesTotal = inputStat.size;
  const report = (phase: BinarizeProgress['phase']) => (bytesDone: number) =>
    options.onProgress?.({ phase, bytesDone, bytesTotal });

  // Pass 1: validate UTF-8, hash, count characters and collect the char vocabulary.
  const choice = options.tokenizer ?? 'char';
  const vocabulary = choice === 'char' ? new CharVocabularyBuilder() : undefined;
  let characters = 0;
  const scanned = await readTextPieces(
    input,
    { newlines, chunkBytes, onBytes: report('scan') },
    (piece) => {
      characters += countCodePoints(piece);
      vocabulary?.add(piece);
    },
  );
  if (characters === 0) throw noTextError(input, 'Pass a non-empty text file');
  const trainCharacters = trainCharactersOf(characters, valFraction);

  // The tokenizer: given, built from the vocabulary, or trained on the train split only.
  let tokenizer: Tokenizer;
  if (typeof choice === 'object') tokenizer = choice;
  else if (vocabulary) tokenizer = vocabulary.build();
  else if (choice === 'bpe') {
    const trainer = BpeTokenizer.trainer();
    await readSplits(
      input,
      { newlines, chunkBytes },
      trainCharacters,
      report('train-tokenizer'),
      (piece, split) => {
        if (split === 'val') return false;
        trainer.push(piece);
      },
    );
    tokenizer = BpeTokenizer.finishTraining(trainer, options.vocabSize ?? DEFAULT_BPE_VOCAB_SIZE);
  } else {
    throw unknownTokenizerError(input, choice);
  }
  const dtype = dtypeFor(tokenizer.vocabSize);

  // Pass 2: encode each split into a temporary directory, then move the files in place.
  const createdDir = await makeDirectory(outDir);
  await removeStaleTempDirs(outDir);
  const tempDir = join(outDir, `${TEMP_PREFIX}${process.pid}-${Date.now().toString(36)}`);
  let committed = false;
  await mkdir(tempDir);
  try {
    const trainWriter = await TokenWriter.create(join(tempDir, FILE_NAMES.train), dtype);
    const valWriter = await TokenWriter.create(join(tempDir, FILE_NAMES.val), dtype);
    const encoders: Record<Split, StreamEncoder> = {
      train: streamEncoderOf(tokenizer),
      val: streamEncoderOf(tokenizer),
    };
    const writers: Record<Split, TokenWriter> = { train: trainWriter, val: valWriter };
    try {
      await readSplits(
        input,
        { newlines, chunkBytes },
        trainCharacters,
        report('encode'),
        async (piece, split) => {
          await writers[split].write(encoders[split].push(piece));
        },
      );
      await trainWriter.write(encoders.train.end());
      await valWriter.write(encoders.val.end());
    } finally {
      await trainWriter.close();
      await valWriter.close();
    }
    const after = await stat(input);
    if (after.size !== inputStat.size || after.mtimeMs !== inputStat.mtimeMs) {
      throw new DataError(
        input,
        'changed while it was being prepared',
        'Run prepare again once the file is complete',
      );
    }
    checkSplitSizes(input, { train: trainWriter.tokens, val: valWriter.tokens }, minTokens);
    const meta = dataMetaOf({
      tokenizer,
      trainTokens: trainWriter.tokens,
      valTokens: valWriter.tokens,
      trainCharacters,
      characters,
      valFraction,
      newlines,
      source: { file: basename(input), bytes: scanned.bytes, sha256: scanned.sha256 },
    });
    await writeFile(join(tempDir, FILE_NAMES.vocab), `${JSON.stringify(tokenizer.toJSON())}\n`);
    await writeFile(join(tempDir, FILE_NAMES.meta), `${JSON.stringify(meta, null, 2)}\n`);
    await commit(tempDir, outDir);
    committed = true;
    return {
      outDir,
      meta,
      tokenizer,
      files: {
        train: join(outDir, FILE_NAMES.train),
        val: join(outDir, FILE_NAMES.val),
        vocab: join(outDir, FILE_NAMES.vocab),
        meta: join(outDir, FILE_NAMES.meta),
      },
    };
  } finally {
    await rm(tempDir, { recursive: true, force: true });
    // A failed prepare leaves no empty output folder behind.
    if (!committed) await removeCreatedDirectories(createdDir, outDir);
  }
}

async function statInput(input: string) {
  try {
    const info = await stat(input);
    if (info.isDirectory()) {
      throw new DataError(
        input,
        'is a directory, not a text file',
        'Pass the path of a UTF-8 text file',
      );
    }
    const handle = await open(input, 'r'); // fails early on a file we may not read
    await handle.close();
    if (info.size === 0) throw new DataError(input, 'is empty', 'Pass a non-empty text file');
    return info;
  } catch (error) {
    if (error instanceof DataError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(input, 'not found', { remedy: 'check-input' });
    if (code === 'EACCES' || code === 'EPERM') {
      throw new DataError(input, 'cannot be read: permission denied', 'Check the file permissions');
    }
    throw new DataError(input, `cannot be read (${(error as Error).message})`);
  }
}

async function refuseExistingData(outDir: string, force: boolean): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR')
      throw new DataError(outDir, 'exists and is not a directory', { remedy: 'choose-output' });
    throw error;
  }
  const existing = OUTPUT_FILES.filter((name) => entries.includes(name));
  if (existing.length > 0 && !force) {
    throw new DataError(outDir, `already holds prepared data (${existing.join(', ')})`, {
      remedy: 'replace-output',
    });
  }
}

/** Removes temp dirs left by prepare runs that were killed (their process is gone). */
async function removeStaleTempDirs(outDir: string): Promise<void> {
  for (const name of await readdir(outDir)) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const pid = Number.parseInt(name.slice(TEMP_PREFIX.length), 10);
    if (Number.isInteger(pid) && pid !== process.pid && !isRunning(pid)) {
      await rm(join(outDir, name), { recursive: true, force: true });
    }
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Moves the finished files in. meta.json goes first out and last in: data without it is incomplete. */
async function commit(tempDir: string, outDir: string): Promise<void> {
  await unlink(join(outDir, FILE_NAMES.meta)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  for (const name of [FILE_NAMES.train, FILE_NAMES.val, FILE_NAMES.vocab, FILE_NAMES.meta]) {
    await rename(join(tempDir, name), join(outDir, name));
  }
}

/** Streams the text, cutting the piece that crosses the split point at that character. */
async function readSplits(
  input: string,
  read: { newlines: NewlineMode; chunkBytes: number | undefined },
  trainCharacters: number,
  onBytes: (bytes: number) => void,
  onPiece: (piece: string, split: Split) => boolean | void | Promise<boolean | void>,
): Promise<void> {
  let seen = 0;
  await readTextPieces(input, { ...read, onBytes }, async (piece) => {
    if (seen >= trainCharacters) return onPiece(piece, 'val');
    const count = countCodePoints(piece);
    if (seen + count <= trainCharacters) {
      seen += count;
      return onPiece(piece, 'train');
    }
    const cut = offsetOfCodePoint(piece, trainCharacters - seen);
    seen += count;
    if ((await onPiece(piece.slice(0, cut), 'train')) === false) return false;
    return onPiece(piece.slice(cut), 'val');
  });
}

/** Appends token ids to a file as little-endian uint16 or uint32. */
class TokenWriter {
  tokens = 0;
  private constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    private readonly dtype: TokenDtype,
  ) {}

  static async create(path: string, dtype: TokenDtype): Promise<TokenWriter> {
    return new TokenWriter(await open(path, 'wx'), path, dtype);
  }

  async write(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    const array = this.dtype === 'uint16' ? Uint16Array.from(ids) : Uint32Array.from(ids);
    const bytes = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
    if (IS_BIG_ENDIAN) {
      if (this.dtype === 'uint16') bytes.swap16();
      else bytes.swap32();
    }
    try {
      await this.handle.write(bytes);
    } catch (error) {
      throw withPath(error, this.path); // a full disk: name the file, not "(unknown path)"
    }
    this.tokens += ids.length;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
