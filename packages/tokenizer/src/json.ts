// Hand-written checks for tokenizer JSON read from files, which are untrusted (they travel
// inside checkpoints, data directories and exports): each failure is a TokenizerError naming
// the source, the field, the value found (shortened) and the fix. It knows no file system.
import { TokenizerError } from './tokenizer.js';

/** Appended to every "this file is broken" message: the fix when no field-specific one fits. */
export const DAMAGED =
  'The file is damaged or was not written by @minigpt/tokenizer; re-create it from the training text';

/** A TokenizerError about `source` (the file, or a description of the JSON). */
export function jsonError(source: string, problem: string, rule: string): TokenizerError {
  return new TokenizerError(`${source}: ${problem}`, { file: source, rule });
}

export function expectObject(
  value: unknown,
  source: string,
  field?: string,
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const what = field === undefined ? 'expected a JSON object' : `"${field}" must be an object`;
    throw jsonError(source, `${what}, got ${typeName(value)}. ${DAMAGED}.`, 'json');
  }
  return value as Record<string, unknown>;
}

export function expectVersion(
  json: Record<string, unknown>,
  source: string,
  supported: number,
): void {
  const version = json['version'];
  if (version !== supported) {
    const hint =
      typeof version === 'number' && version > supported
        ? 'it was written by a newer @minigpt/tokenizer; upgrade this package'
        : 'the file is not a tokenizer file this package wrote, or it is damaged; re-create it';
    throw jsonError(
      source,
      `unsupported format version ${preview(version)} (this package reads version ${supported}); ${hint}`,
      'version',
    );
  }
}

/** Refuses fields the format does not have: in our own format they mean a damaged or forged file. */
export function expectKnownKeys(
  json: Record<string, unknown>,
  source: string,
  known: readonly string[],
  where = 'the file',
): void {
  for (const key in json) {
    if (!Object.hasOwn(json, key) || known.includes(key)) continue;
    throw jsonError(
      source,
      `unknown field ${preview(key)} in ${where} (its fields are ${known.join(', ')}). ${DAMAGED}, or remove the field.`,
      'unknown-field',
    );
  }
}

/** A non-negative integer that is a valid array index (ids, counts). */
export function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Runs `build` (a constructor whose messages start with `kind`, e.g. "bpe tokenizer: ") and
 * puts `source` in their place in any TokenizerError it throws, so the message names the file.
 */
export function withSource<T>(source: string, kind: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (!(error instanceof TokenizerError)) throw error;
    const problem = error.message.startsWith(kind)
      ? error.message.slice(kind.length)
      : error.message;
    throw new TokenizerError(`${source}: ${problem}. ${DAMAGED}.`, {
      file: source,
      rule: error.rule ?? 'json',
      cause: error,
    });
  }
}

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

const PREVIEW_LENGTH = 80;
const PREVIEW_ITEMS = 4;

/**
 * A short rendering of a found value for a message. A hostile file may hold megabytes in
 * one string or nest arrays thousands deep, so it never stringifies more than it shows and
 * never recurses deeper than two levels (JSON.stringify would overflow the stack).
 */
export function preview(value: unknown): string {
  if (typeof value === 'string') return renderString(value, 40);
  const text = render(value, 2);
  return text.length > PREVIEW_LENGTH ? `${text.slice(0, PREVIEW_LENGTH - 1)}…` : text;
}

function renderString(value: string, limit: number): string {
  if (value.length <= limit) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, limit)).slice(0, -1)}…" (${value.length} chars)`;
}

function render(value: unknown, depth: number): string {
  if (typeof value === 'string') return renderString(value, 16);
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (value === null || typeof value === 'boolean') return String(value);
  if (typeof value !== 'object') return typeof value;
  if (depth === 0) return Array.isArray(value) ? '[…]' : '{…}';
  if (Array.isArray(value)) {
    const items = value.slice(0, PREVIEW_ITEMS).map((item) => render(item, depth - 1));
    if (value.length > PREVIEW_ITEMS) items.push(`… ${value.length} items`);
    return `[${items.join(',')}]`;
  }
  const entries: string[] = [];
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (entries.length === PREVIEW_ITEMS) {
      entries.push('…');
      break;
    }
    entries.push(
      `${renderString(key, 16)}:${render((value as Record<string, unknown>)[key], depth - 1)}`,
    );
  }
  return `{${entries.join(',')}}`;
}
