// Turns the file-system failures a user can fix (full disk, read-only or forbidden place, a
// directory where a file belongs) into one line naming the path and what to do. Reads only
// the `code`, `path`, `dest` and `syscall` fields Node puts on its errors: no Node import.
import { MinigptError } from './errors.js';

/** The errno codes that describe the machine or the user's paths, not a bug. */
const ADVICE: Record<string, { problem: string; fix: string }> = {
  ENOSPC: { problem: 'no space left on the device', fix: 'free some space, or use another disk' },
  EDQUOT: { problem: 'disk quota exceeded', fix: 'free some space, or use another disk' },
  EROFS: { problem: 'the file system is read-only', fix: 'choose a writable location' },
  EACCES: {
    problem: 'permission denied',
    fix: 'check its permissions, or choose another location',
  },
  EPERM: {
    problem: 'operation not permitted',
    fix: 'check its permissions, or choose another location',
  },
  EISDIR: {
    problem: 'is a directory, where a file was expected',
    fix: 'pass a file, or remove the directory',
  },
  ENOTDIR: {
    problem: 'a part of this path is a file, where a directory was expected',
    fix: 'choose another path',
  },
};

/** A file-system failure the user can fix; `code` is Node's errno code (ENOSPC, EROFS, …). */
export class FileSystemError extends MinigptError {
  override name = 'FileSystemError';
  constructor(
    readonly code: string,
    path: string,
    message: string,
    cause?: unknown,
  ) {
    super(message, { file: path, rule: code, cause });
  }
}

interface ErrnoLike {
  readonly code?: unknown;
  readonly path?: unknown;
  readonly dest?: unknown;
  readonly syscall?: unknown;
}

/**
 * The user-facing form of a Node file-system error, or undefined when `error` is not one the
 * user can fix (a bug, or an error of another kind). `context` says what was being done
 * ("saving checkpoint ckpt-000000100"); `fallbackPath` names the place when Node did not.
 */
export function describeFileSystemError(
  error: unknown,
  context?: string,
  fallbackPath?: string,
): FileSystemError | undefined {
  if (error instanceof FileSystemError) return error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, path, dest, syscall } = error as ErrnoLike;
  if (typeof code !== 'string') return undefined;
  const advice = ADVICE[code];
  if (!advice) return undefined;
  // rename(2) reports the source; a read-only or full target is the destination's problem.
  const where =
    (typeof dest === 'string' ? dest : undefined) ??
    (typeof path === 'string' ? path : undefined) ??
    fallbackPath ??
    '(unknown path)';
  const during = [context, typeof syscall === 'string' ? `${syscall} failed` : undefined]
    .filter(Boolean)
    .join(': ');
  return new FileSystemError(
    code,
    where,
    `${where}: ${advice.problem} (${code}${during ? `, ${during}` : ''}). To fix: ${advice.fix}`,
    error,
  );
}
