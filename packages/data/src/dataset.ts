// One split of token ids — an array in memory, a nanoGPT .bin File/Blob, or (from
// '@minigpt/data/node') a file on disk read row by row — and seeded (x, y) training batches at
// random offsets, as nanoGPT's get_batch takes them. It knows nothing of tensors: batches are
// Int32Arrays. No Node APIs: where the rows come from is a small reader interface.
import type { Random } from '@minigpt/random';
import { DataError } from './errors.js';
import { badTokenIdError, findBadTokenId, idsCannotReach } from './id-check.js';
import { bytesPerToken, type Split, type TokenDtype } from './meta.js';

/** A batch of `batchSize` rows of `blockSize` tokens, row-major: x and y are (B, T). */
export interface Batch {
  readonly x: Int32Array;
  readonly y: Int32Array;
  readonly batchSize: number;
  readonly blockSize: number;
  /** Start offset of each row in the split, for debugging and tests. */
  readonly offsets: readonly number[];
}

export interface TokenDatasetOptions {
  readonly split: Split;
  /** Every id must be below it (the tokenizer's vocabSize). */
  readonly vocabSize: number;
  /** Names the tokens in errors: a file name, 'pasted text (train split)'. */
  readonly source: string;
  /**
   * Checks that every id is below `vocabSize` (default true). An id out of range would
   * otherwise fail deep inside the model's embedding lookup or, as a target only, silently
   * lower the loss. Pass `false` only for tokens the caller has already checked.
   */
  readonly checkIds?: boolean;
}

export interface BlobDatasetOptions extends TokenDatasetOptions {
  /** The width of each id in the blob: raw little-endian integers, no header. */
  readonly dtype: TokenDtype;
}

/** Where a dataset's tokens come from: an array in memory, or (in Node) a file read per row. */
export interface TokenRowReader {
  /** Number of tokens. */
  readonly length: number;
  /** Tokens [start, start + out.length), already checked to be inside 0…length. */
  read(start: number, out: Int32Array): void;
  /** Releases what the reader holds (a file descriptor); later reads fail. */
  close(): void;
}

interface DatasetParts {
  readonly split: Split;
  readonly vocabSize: number;
  readonly source: string;
  readonly rows: TokenRowReader;
}

/** Makes a TokenDataset over any row reader: the Node entry's file mode uses it. Not public. */
export let datasetOverRows: (parts: DatasetParts) => TokenDataset;

export class TokenDataset {
  static {
    datasetOverRows = (parts) => new TokenDataset(parts);
  }

  readonly split: Split;
  /** Every id is below it. */
  readonly vocabSize: number;
  /** Names the tokens in errors: a path, a file name, 'pasted text (val split)'. */
  readonly source: string;
  /** Number of tokens in this split. */
  readonly length: number;
  private readonly rows: TokenRowReader;

  private constructor(parts: DatasetParts) {
    this.split = parts.split;
    this.vocabSize = parts.vocabSize;
    this.source = parts.source;
    this.length = parts.rows.length;
    this.rows = parts.rows;
  }

  /**
   * A dataset over token ids in memory. The array is used as it is, not copied: do not change
   * it afterwards.
   */
  static fromTokens(tokens: Uint16Array | Uint32Array, options: TokenDatasetOptions): TokenDataset {
    if (!(tokens instanceof Uint16Array) && !(tokens instanceof Uint32Array)) {
      throw new TypeError('TokenDataset.fromTokens: tokens must be a Uint16Array or Uint32Array');
    }
    checkOptions(options);
    if ((options.checkIds ?? true) && !idsCannotReach(dtypeOf(tokens), options.vocabSize)) {
      const bad = findBadTokenId(tokens, options.vocabSize);
      if (bad) {
        throw badTokenIdError(options.source, dtypeOf(tokens), options.vocabSize, bad, 'given');
      }
    }
    return new TokenDataset({ ...options, rows: memoryRows(tokens) });
  }

  /**
   * A dataset over a nanoGPT `.bin` File or Blob (raw little-endian ids of `dtype`, no header),
   * read into memory: its size must be a whole number of ids.
   */
  static async fromBlob(blob: Blob, options: BlobDatasetOptions): Promise<TokenDataset> {
    checkOptions(options);
    if (options.dtype !== 'uint16' && options.dtype !== 'uint32') {
      throw new RangeError(
        `TokenDataset.fromBlob: dtype must be 'uint16' or 'uint32', got ${JSON.stringify(options.dtype)}`,
      );
    }
    const width = bytesPerToken(options.dtype);
    if (blob.size % width !== 0) {
      throw new DataError(
        options.source,
        `is ${blob.size} bytes, not a whole number of ${options.dtype} ids (${width} bytes each): it is truncated, or not a ${options.dtype} token file`,
        'Check the file and its dtype',
      );
    }
    let buffer: ArrayBuffer;
    try {
      buffer = await blob.arrayBuffer();
    } catch (error) {
      throw new DataError(options.source, `cannot be read (${(error as Error).message})`);
    }
    const tokens = tokensFromLittleEndian(buffer, options.dtype);
    return TokenDataset.fromTokens(tokens, options);
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
        this.source,
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
    this.rows.read(start, out);
  }

  /**
   * Releases the file descriptor of a dataset read from disk row by row ('file' mode of
   * '@minigpt/data/node'); a dataset in memory keeps working (its array is the caller's).
   */
  close(): void {
    this.rows.close();
  }
}

function checkOptions(options: TokenDatasetOptions): void {
  if (typeof options.source !== 'string' || options.source.length === 0) {
    throw new TypeError('TokenDataset: source must name the tokens (a non-empty string)');
  }
  if (options.split !== 'train' && options.split !== 'val') {
    throw new DataError(
      options.source,
      `unknown split ${JSON.stringify(options.split)}; use 'train' or 'val'`,
    );
  }
  const { vocabSize } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize > 2 ** 32) {
    throw new RangeError(
      `TokenDataset: vocabSize must be a whole number from 1 to 2^32, got ${vocabSize}`,
    );
  }
}

function dtypeOf(tokens: Uint16Array | Uint32Array): TokenDtype {
  return tokens instanceof Uint16Array ? 'uint16' : 'uint32';
}

function memoryRows(tokens: Uint16Array | Uint32Array): TokenRowReader {
  return {
    length: tokens.length,
    read: (start, out) => out.set(tokens.subarray(start, start + out.length)),
    close: () => undefined,
  };
}

const IS_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * The ids in `buffer` (raw little-endian integers of `dtype`; its length a multiple of the
 * width), viewed in place. On a big-endian host they are swapped in place first: `buffer` must
 * be the caller's to change.
 */
export function tokensFromLittleEndian(
  buffer: ArrayBuffer,
  dtype: TokenDtype,
): Uint16Array | Uint32Array {
  const tokens = dtype === 'uint16' ? new Uint16Array(buffer) : new Uint32Array(buffer);
  if (!IS_LITTLE_ENDIAN) {
    const view = new DataView(buffer);
    for (let i = 0; i < tokens.length; i++) {
      tokens[i] = dtype === 'uint16' ? view.getUint16(i * 2, true) : view.getUint32(i * 4, true);
    }
  }
  return tokens;
}
