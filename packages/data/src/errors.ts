// The one error type of @minigpt/data: it names the file at fault and says what to do.
import { MinigptError } from '@minigpt/errors';

/**
 * The fixes that depend on how the data was made. The message words them for the API
 * (`force: true`); a tool that wraps @minigpt/data, such as the CLI, reads `remedy` and words
 * them in its own terms (`--force`).
 */
export type DataRemedy =
  /** The input text file is missing: check its path. */
  | 'check-input'
  /** binarize cannot write to `outDir` (a file is there): choose another outDir. */
  | 'choose-output'
  /** binarize found prepared data in `outDir`: replace it with `force`, or use another outDir. */
  | 'replace-output'
  /** The directory holds no prepared data: prepare it. */
  | 'prepare'
  /** The prepared data is damaged, stale or from mixed runs: prepare it again, replacing it. */
  | 'prepare-again';

const API_HINTS: Readonly<Record<DataRemedy, string>> = {
  'check-input': 'Check the path',
  'choose-output': 'Choose another outDir',
  'replace-output': 'Pass force: true to replace it, or choose another outDir',
  prepare: 'Prepare it first (binarize with this outDir)',
  'prepare-again': 'Prepare it again (binarize with force: true)',
};

export class DataError extends MinigptError {
  override name = 'DataError';
  /** What is wrong with `file`, without the hint. */
  readonly problem: string;
  /** What the user can do about it, as the message says it. */
  readonly hint?: string;
  /** Set when the fix is one of the known remedies (the hint is then its API wording). */
  readonly remedy?: DataRemedy;

  constructor(
    /** The file or directory the problem is about. */
    file: string,
    problem: string,
    /** What the user can do about it: free text, or a known remedy. */
    fix?: string | { readonly remedy: DataRemedy },
  ) {
    const hint = typeof fix === 'object' ? API_HINTS[fix.remedy] : fix;
    super(`${file}: ${problem}${hint ? `. ${hint}` : ''}`, { file });
    this.problem = problem;
    if (hint !== undefined) this.hint = hint;
    if (typeof fix === 'object') this.remedy = fix.remedy;
  }
  /** The file or directory the problem is about. */
  declare readonly file: string;
}
