// Checks a parsed JSON value against a schema and reports the first broken rule as one line
// naming the file, the field and the value found. Any validator that implements the Standard
// Schema interface (zod 4, valibot, arktype) works; this package depends on none of them.

/** The part of the Standard Schema v1 interface used here. */
export interface StandardSchema<Output> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    validate(value: unknown): StandardResult<Output> | Promise<StandardResult<Output>>;
  };
}

type PathSegment = PropertyKey | { readonly key: PropertyKey };

export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<PathSegment> | undefined;
      }>;
    };

/**
 * The value `schema` makes of `json`; otherwise throws `makeError(problem)` with a problem
 * such as `"model.nLayer" must be ≤ 512 (too big), got 1000000000`.
 */
export function checkSchema<Output>(
  schema: StandardSchema<Output>,
  json: unknown,
  makeError: (problem: string) => Error,
): Output {
  const result = schema['~standard'].validate(json);
  if (result instanceof Promise) throw new TypeError('checkSchema: the schema must be synchronous');
  if (result.issues === undefined) return result.value;
  const issue = result.issues[0]!;
  const keys = (issue.path ?? []).map((segment) =>
    typeof segment === 'object' ? segment.key : segment,
  );
  const found = valueAt(json, keys);
  const where = keys.length > 0 ? `"${keys.map(String).join('.')}"` : 'the file';
  const got = found.present ? `, got ${preview(found.value)}` : keys.length > 0 ? ' (missing)' : '';
  return fail(makeError(`${where}: ${issue.message}${got}`));
}

function fail(error: Error): never {
  throw error;
}

function valueAt(
  json: unknown,
  keys: readonly PropertyKey[],
): { present: boolean; value?: unknown } {
  let current: unknown = json;
  for (const key of keys) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) {
      return { present: false };
    }
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return { present: true, value: current };
}

/**
 * A short rendering of a found value. A hostile file may hold megabytes in one field or
 * nest arrays 100,000 deep, so it looks at a bounded part only (never JSON.stringify whole).
 */
export function preview(value: unknown): string {
  const text = render(value, 2);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function render(value: unknown, depth: number): string {
  if (typeof value === 'string') {
    const shown = JSON.stringify(value.slice(0, 61));
    return value.length > 61 ? `${shown.slice(0, -1)}…"` : shown;
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value !== 'object' || value === null) return String(value);
  if (Array.isArray(value)) {
    if (depth === 0) return '[…]';
    const items = value.slice(0, 8).map((item) => render(item, depth - 1));
    return `[${items.join(',')}${value.length > 8 ? ',…' : ''}]`;
  }
  if (depth === 0) return '{…}';
  const keys = Object.keys(value);
  const entries = keys
    .slice(0, 8)
    .map(
      (key) =>
        `${JSON.stringify(key.slice(0, 40))}:${render((value as Record<string, unknown>)[key], depth - 1)}`,
    );
  return `{${entries.join(',')}${keys.length > 8 ? ',…' : ''}}`;
}
