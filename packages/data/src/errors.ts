// The one error type of @minigpt/data: it names the file at fault and says what to do.

export class DataError extends Error {
  override name = 'DataError';
  constructor(
    /** The file or directory the problem is about. */
    readonly file: string,
    problem: string,
    /** What the user can do about it. */
    readonly hint?: string,
  ) {
    super(`${file}: ${problem}${hint ? `. ${hint}` : ''}`);
  }
}
