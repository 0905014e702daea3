// Reads a fresh run's starting weights from a GPT-2 directory in the Hugging Face layout, and
// checks that the prepared data was tokenized by that model's tokenizer (when the directory
// has one): ids from another vocabulary would train without error and learn nothing useful.
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TOKENIZER_LAYOUTS, readTokenizerFiles } from '@minigpt/data/node';
import { readGpt2Directory } from '@minigpt/model/huggingface';
import type { Tokenizer } from '@minigpt/tokenizer';
import { TrainingError, type InitialWeights } from '../trainer.js';

export interface ReadInitialWeightsOptions {
  /** Crop the weights' position embeddings to this many (default: all of n_positions). */
  readonly blockSize?: number;
  /** The data's tokenizer: refused when the directory's own tokenizer differs. */
  readonly tokenizer?: Tokenizer;
}

/**
 * `dir`'s config.json and model.safetensors as starting weights (readGpt2Directory, with
 * every file checked), and, when `tokenizer` is given and `dir` holds tokenizer files, a
 * check that they are the same tokenizer.
 */
export async function readInitialWeights(
  dir: string,
  options: ReadInitialWeightsOptions = {},
): Promise<InitialWeights> {
  const directory = resolve(dir);
  const info = await stat(directory).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new TrainingError(
      `${dir}: ${info ? 'is not a directory' : 'not found'}; --init-from takes a GPT-2 directory in the Hugging Face layout (config.json, model.safetensors, tokenizer.json)`,
      { file: dir, rule: 'init-directory' },
    );
  }
  // A file larger than the config allows is refused before it is read (a 500 MB safetensors).
  const read = async (name: string, maxBytes: number): Promise<Uint8Array | undefined> => {
    const path = join(directory, name);
    const file = await stat(path).catch(() => undefined);
    if (!file?.isFile()) return undefined;
    if (file.size > maxBytes) {
      throw new TrainingError(
        `${join(dir, name)}: is ${file.size} bytes, more than the ${maxBytes} the model's config.json allows: the file is damaged or belongs to another model`,
        { file: join(dir, name), rule: 'init-file-size' },
      );
    }
    return new Uint8Array(await readFile(path));
  };
  const { config, weights } = await readGpt2Directory(read, {
    directory: dir,
    ...(options.blockSize === undefined ? {} : { blockSize: options.blockSize }),
  });
  // A directory without tokenizer files skips the check; a damaged one is refused, naming it.
  const hasTokenizer = await Promise.all(
    TOKENIZER_LAYOUTS.map(async ([first]) =>
      (await stat(join(directory, first)).catch(() => undefined))?.isFile(),
    ),
  );
  if (options.tokenizer && hasTokenizer.some(Boolean)) {
    const own = await readTokenizerFiles(dir);
    if (JSON.stringify(own.tokenizer.toJSON()) !== JSON.stringify(options.tokenizer.toJSON())) {
      throw new TrainingError(
        `${own.files[0]}: the data was tokenized by another tokenizer than this model's; prepare it with this one (minigpt prepare --tokenizer ${dir})`,
        { file: own.files[0]!, rule: 'init-tokenizer' },
      );
    }
  }
  return { config, weights, source: dir };
}
