// Loads a training config file: JSON, or a JavaScript / TypeScript module whose default
// export is the config object (TypeScript through tsx, so no build step is needed).
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CliError } from './errors.js';

export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  const absolute = resolve(path);
  const extension = extname(absolute);
  let value: unknown;
  try {
    if (extension === '.json') {
      value = JSON.parse(await readFile(absolute, 'utf8'));
    } else if (['.ts', '.mts', '.cts'].includes(extension)) {
      const { tsImport } = await import('tsx/esm/api');
      value = (
        (await tsImport(pathToFileURL(absolute).href, import.meta.url)) as { default?: unknown }
      ).default;
    } else if (['.js', '.mjs', '.cjs'].includes(extension)) {
      value = ((await import(pathToFileURL(absolute).href)) as { default?: unknown }).default;
    } else {
      throw new CliError(`${absolute}: config files must be .json, .js, .mjs or .ts`);
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ERR_MODULE_NOT_FOUND')
      throw new CliError(`${absolute}: config file not found`);
    throw new CliError(
      `${absolute}: cannot load the config (${(error as Error).message.split('\n')[0]})`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(
      `${absolute}: the config must be an object (a module's default export, or a JSON object)`,
    );
  }
  return value as Record<string, unknown>;
}

/** A config key as a command-line flag: `maxIters` → `max-iters`, `nLayer` → `n-layer`. */
export function kebabCase(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** The spelling a typo most likely meant: case, `-` and `_` ignored. */
function loosely(key: string): string {
  return key.replace(/[-_]/g, '').toLowerCase();
}

/**
 * Parses `--key=value` / `--key value` overrides against the defaults' types. Each key may
 * be spelled as in config files (`--maxIters`) or in kebab-case like the commands' own flags
 * (`--max-iters`); the result has the config files' camelCase keys. Unknown keys and values
 * of the wrong type are errors that say what is valid, in kebab-case as `--help` lists them.
 */
export function parseOverrides(
  args: readonly string[],
  defaults: Record<string, unknown>,
): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  const keyOf = new Map<string, string>();
  for (const key of Object.keys(defaults)) {
    keyOf.set(key, key);
    keyOf.set(kebabCase(key), key);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--'))
      throw new CliError(
        `unexpected argument "${arg}"; config overrides look like --max-iters=2000`,
      );
    const [flag, inlineValue] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    let value = inlineValue;
    const key = keyOf.get(flag);
    if (key === undefined) {
      const meant = Object.keys(defaults).find((valid) => loosely(valid) === loosely(flag));
      throw new CliError(
        `unknown option or config key "--${flag}"${meant ? ` (did you mean --${kebabCase(meant)}?)` : ''}; config keys: ${Object.keys(
          defaults,
        )
          .map((valid) => `--${kebabCase(valid)}`)
          .join(', ')}`,
      );
    }
    if (value === undefined) {
      const next = args[i + 1];
      if (typeof defaults[key] === 'boolean' && (next === undefined || next.startsWith('--')))
        value = 'true';
      else if (next === undefined) throw new CliError(`--${flag} needs a value`);
      else value = args[++i]!;
    }
    overrides[key] = coerce(flag, value, defaults[key]);
  }
  return overrides;
}

function coerce(flag: string, value: string, example: unknown): unknown {
  switch (typeof example) {
    case 'number': {
      const number = Number(value);
      if (value.trim() === '' || !Number.isFinite(number))
        throw new CliError(`--${flag} must be a number, got "${value}"`);
      return number;
    }
    case 'boolean':
      if (value === 'true' || value === 'false') return value === 'true';
      throw new CliError(`--${flag} must be true or false, got "${value}"`);
    default:
      return value;
  }
}
