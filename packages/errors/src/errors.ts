// The base class of every typed minigpt error: a problem the user can fix (a damaged or
// hostile file, a config, the machine's disk). A bug is any other error. It knows nothing
// of files or Node: callers put the file's name in the message.

const BRAND = Symbol.for('@minigpt/errors.MinigptError');

export interface MinigptErrorOptions {
  /** The file or directory the problem is about. */
  readonly file?: string;
  /** The rule the input broke, short and stable (tests and tools match on it). */
  readonly rule?: string;
  readonly cause?: unknown;
}

/**
 * An error a user can act on. Every package's typed errors extend it, so a caller needs one
 * check (`isMinigptError`) to tell "fix your input" from "please report this bug".
 */
export class MinigptError extends Error {
  override name = 'MinigptError';
  readonly file?: string;
  readonly rule?: string;

  constructor(message: string, options: MinigptErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.file !== undefined) this.file = options.file;
    if (options.rule !== undefined) this.rule = options.rule;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /**
   * `instanceof MinigptError` also holds for an error from a second copy of this package (two
   * versions installed side by side); subclasses keep the ordinary prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === MinigptError) return isMinigptError(value);
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** true for any minigpt typed error, from whichever copy of this package made it. */
export function isMinigptError(value: unknown): value is MinigptError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true
  );
}
