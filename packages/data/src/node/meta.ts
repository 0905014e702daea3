// Reads dir/meta.json from disk, bounded in size, and checks it with parseMeta.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from '../errors.js';
import { FILE_NAMES, parseMeta, type DataMeta } from '../meta.js';

/** Far more than any meta.json binarize writes (~400 bytes): a bigger one is not read. */
const MAX_META_BYTES = 1 << 20;

/** Reads and checks `dir/meta.json`. */
export async function readMeta(dir: string): Promise<DataMeta> {
  const path = join(dir, FILE_NAMES.meta);
  let text: string;
  try {
    const { size } = await stat(path);
    if (size > MAX_META_BYTES) {
      throw new DataError(
        path,
        `is ${size} bytes, far more than a meta.json holds (at most ${MAX_META_BYTES})`,
        { remedy: 'prepare-again' },
      );
    }
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof DataError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataError(
        path,
        'not found: the directory holds no prepared data (or a prepare run did not finish)',
        { remedy: 'prepare' },
      );
    }
    throw new DataError(path, `cannot be read (${(error as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DataError(path, `is not valid JSON (${(error as Error).message})`, {
      remedy: 'prepare-again',
    });
  }
  return parseMeta(json, path);
}
