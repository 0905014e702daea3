// Node helpers that keep file-system errors useful: a recursive mkdir that reports the real
// reason (Node's says ENOENT for a read-only or forbidden parent), removal of the folders a
// failed command created, and the path put back on errors of descriptor-based writes.
import { mkdir, rmdir, stat } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';

/**
 * Creates `dir` and its parents; returns the topmost folder it created (undefined when `dir`
 * existed). Where Node's recursive mkdir fails with ENOENT although the path is fine, the
 * nearest existing ancestor is asked again without `recursive`, so the real errno (EROFS,
 * EACCES) surfaces for describeFileSystemError.
 */
export async function makeDirectory(dir: string): Promise<string | undefined> {
  try {
    return await mkdir(dir, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    let child = resolve(dir);
    let parent = dirname(child);
    while (parent !== child && !(await exists(parent))) {
      child = parent;
      parent = dirname(parent);
    }
    await mkdir(child); // throws the real reason
    await mkdir(dir, { recursive: true });
    return child;
  }
}

/**
 * After a failed command: removes `dir` and its parents up to `createdTop` (what
 * makeDirectory returned), each only if empty. Never throws.
 */
export async function removeCreatedDirectories(
  createdTop: string | undefined,
  dir: string,
): Promise<void> {
  if (createdTop === undefined) return;
  let current = resolve(dir);
  const top = resolve(createdTop);
  while (!relative(top, current).startsWith('..')) {
    const removed = await rmdir(current).then(
      () => true,
      () => false,
    );
    if (!removed || current === top) return;
    current = dirname(current);
  }
}

/** `error` with `path` set when Node left it out (write(2) on a descriptor names none). */
export function withPath<T>(error: T, path: string): T {
  if (typeof error === 'object' && error !== null && !('path' in error)) {
    Object.assign(error, { path });
  }
  return error;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
