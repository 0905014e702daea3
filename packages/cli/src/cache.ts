// Where the CLI keeps downloaded and generated corpora, and atomic file writes into it.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** `$MINIGPT_CACHE_DIR`, else `$XDG_CACHE_HOME/minigpt`, else `~/.cache/minigpt`. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['MINIGPT_CACHE_DIR']) return env['MINIGPT_CACHE_DIR'];
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'minigpt');
}

/** Writes to a temp file beside `path`, then renames: readers never see a partial file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(temp, data);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
