// Opens one split of a prepared data directory, checking it against meta.json (size, and every
// id below vocabSize), and samples (x, y) training batches at random offsets from a seeded
// generator, as nanoGPT's get_batch does. It knows nothing of tensors: batches are Int32Arrays.
import { open, readFile, stat } from 'node:fs/promises';
import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import type { Random } from '@minigpt/random';
import { DataError } from './errors.js';
import {
  badTokenIdError,
  findBadTokenId,
  findBadTokenIdInFile,
  idsCannotReach,
} from './id-check.js';
import { FILE_NAMES, bytesPerToken, readMeta, type DataMeta, type Split } from './meta.js';

/** A batch of `batchSize` rows of `blockSize` tokens, row-major: x and y are (B, T). */
export interface Batch {
  readonly x: Int32Array;
  readonly y: Int32Array;
  readonly batchSize: number;
  readonly blockSize: number;
  /** Start offset of each row in the split, for debugging and tests. */
  readonly offsets: readonly number[];
}

export interface OpenDatasetOptions {
  /**
   * `'memory'` reads the split into RAM; `'file'` reads each row from disk (for splits
   * larger than RAM). Default: memory up to 1 GiB, file above.
   */
  readonly mode?: 'memory' | 'file';
  /**
   * Checks that every id in the split is below meta.json's `vocabSize` (default true). An id
   * out of range would otherwise fail deep inside the model's embedding lookup or, as a target
   * only, silently lower the loss. Pass `false` only for a file the caller has already checked.
   * In `'file'` mode this reads the whole file once at open, in 16 MiB chunks.
   */
  readonly checkIds?: boolean;
}

const MEMORY_LIMIT_BYTES = 1 << 30;

export class TokenDataset {
  private constructor(
    readonly dir: string,
    readonly split: Split,
    readonly meta: DataMeta,
    /** Number of tokens in this split. */
    readonly length: number,
    private readonly path: string,
    private readonly tokens: Uint16Array | Uint32Array | undefined,
    private fd: number | undefined,
  ) {}

  /** Opens `dir/train.bin` or `dir/val.bin`, checking it against meta.json first. */
  static async open(
    dir: string,
    split: Split,
    options: OpenDatasetOptions = {},
  ): Promise<TokenDataset> {
    if (split !== 'train' && split !== 'val') {
      throw new DataError(dir, `unknown split ${JSON.stringify(split)}; use 'train' or 'val'`);
    }
    const meta = await readMeta(dir);
    const path = join(dir, FILE_NAMES[split]);
    const length = split === 'train' ? meta.trainTokens : meta.valTokens;
    const expectedBytes = length * bytesPerToken(meta.dtype);
    let actualBytes: number;
    try {
      actualBytes = (await stat(path)).size;
    } catch {
      throw new DataError(path, 'not found, though meta.json lists it', {
        remedy: 'prepare-again',
      });
    }
    if (actualBytes !== expectedBytes) {
      throw new DataError(
        path,
        `has ${actualBytes} bytes but meta.json says ${length} ${meta.dtype} tokens (${expectedBytes} bytes): the file is truncated or from another run`,
        { remedy: 'prepare-again' },
      );
    }
    const mode = options.mode ?? (expectedBytes <= MEMORY_LIMIT_BYTES ? 'memory' : 'file');
    const checkIds = (options.checkIds ?? true) && !idsCannotReach(meta.dtype, meta.vocabSize);
    if (mode === 'memory') {
      const tokens = toTokenArray(await readFile(path), meta);
      const bad = checkIds ? findBadTokenId(tokens, meta.vocabSize) : undefined;
      if (bad) throw badTokenIdError(path, meta.dtype, meta.vocabSize, bad);
      return new TokenDataset(dir, split, meta, length, path, tokens, undefined);
    }
    if (checkIds) {
      // Opening the file to scan it also surfaces permission errors now, not mid-training.
      const bad = await findBadTokenIdInFile(path, meta.dtype, meta.vocabSize, length);
      if (bad) throw badTokenIdError(path, meta.dtype, meta.vocabSize, bad);
    } else {
      const handle = await open(path, 'r'); // surface permission errors now, not mid-training
      await handle.close();
    }
    return new TokenDataset(dir, split, meta, length, path, undefined, openSync(path, 'r'));
  }

  /**
   * The tokenizer saved beside the data (vocab.json), checked to be the one meta.json
   * describes: same type and vocabSize, so decoded ids and the model's vocabulary agree.
   */
  async tokenizer(): Promise<Tokenizer> {
    const path = join(this.dir, FILE_NAMES.vocab);
    const rerun = { remedy: 'prepare-again' } as const;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new DataError(path, 'not found, though meta.json lists it', rerun);
      }
      throw new DataError(path, `cannot be read (${(error as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new DataError(path, `is not valid JSON (${(error as Error).message})`, rerun);
    }
    // A malformed tokenizer is refused by the tokenizer package (TokenizerError naming path).
    const tokenizer = tokenizerFromJSON(json, path);
    if (tokenizer.type !== this.meta.tokenizer) {
      throw new DataError(
        path,
        `holds a ${JSON.stringify(tokenizer.type)} tokenizer but meta.json says ${JSON.stringify(this.meta.tokenizer)}: the files come from different prepare runs`,
        rerun,
      );
    }
    if (tokenizer.vocabSize !== this.meta.vocabSize) {
      throw new DataError(
        path,
        `holds a tokenizer with vocabSize ${tokenizer.vocabSize} but meta.json says ${this.meta.vocabSize}: the files come from different prepare runs`,
        rerun,
      );
    }
    return tokenizer;
  }

  /**
   * `batchSize` windows of `blockSize + 1` tokens at uniform random offsets: x is the first
   * `blockSize`, y the same shifted by one. Same generator state → same batch.
   */
  sampleBatch(random: Random, batchSize: number, blockSize: number): Batch {
    if (
      !Number.isInteger(batchSize) ||
      batchSize < 1 ||
      !Number.isInteger(blockSize) ||
      blockSize < 1
    ) {
      throw new RangeError(
        `sampleBatch: batchSize and blockSize must be positive integers, got ${batchSize}, ${blockSize}`,
      );
    }
    if (this.length < blockSize + 1) {
      throw new DataError(
        this.path,
        `holds ${this.length} tokens, too few for one block of ${blockSize} (needs ${blockSize + 1})`,
        'Use a smaller blockSize or prepare more text',
      );
    }
    const x = new Int32Array(batchSize * blockSize); // (B, T)
    const y = new Int32Array(batchSize * blockSize); // (B, T)
    const offsets: number[] = [];
    const window = new Int32Array(blockSize + 1);
    for (let row = 0; row < batchSize; row++) {
      const start = random.nextInt(this.length - blockSize);
      offsets.push(start);
      this.readWindow(start, window);
      x.set(window.subarray(0, blockSize), row * blockSize);
      y.set(window.subarray(1), row * blockSize);
    }
    return { x, y, batchSize, blockSize, offsets };
  }

  /** Tokens [start, start + out.length) of the split. */
  readWindow(start: number, out: Int32Array): void {
    if (start < 0 || start + out.length > this.length) {
      throw new RangeError(
        `readWindow: [${start}, ${start + out.length}) is outside 0…${this.length}`,
      );
    }
    if (this.tokens) {
      out.set(this.tokens.subarray(start, start + out.length));
      return;
    }
    if (this.fd === undefined) throw new DataError(this.path, 'is closed');
    const width = bytesPerToken(this.meta.dtype);
    const bytes = Buffer.allocUnsafe(out.length * width);
    readSync(this.fd, bytes, 0, bytes.length, start * width);
    out.set(toTokenArray(bytes, this.meta));
  }

  /** Releases the file descriptor of a `'file'` mode dataset. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function toTokenArray(bytes: Buffer, meta: DataMeta): Uint16Array | Uint32Array {
  // A buffer that owns its whole ArrayBuffer (readFile of a large file) is used as it is; a
  // slice of Node's shared pool (small reads) is copied once, so the array is aligned and no
  // pooled memory leaks out. Byte order is fixed on big-endian hosts (files are little-endian).
  const owned =
    bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength
      ? bytes
      : Buffer.from(new Uint8Array(bytes).buffer);
  if (endianness() === 'BE') {
    if (meta.dtype === 'uint16') owned.swap16();
    else owned.swap32();
  }
  const width = bytesPerToken(meta.dtype);
  return meta.dtype === 'uint16'
    ? new Uint16Array(owned.buffer, 0, owned.byteLength / width)
    : new Uint32Array(owned.buffer, 0, owned.byteLength / width);
}
