// Small checks for tokenizer JSON read from disk: each failure says which field is wrong.
import { TokenizerError } from './tokenizer.js';

export function expectObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokenizerError(`${what}: expected a JSON object, got ${typeName(value)}`);
  }
  return value as Record<string, unknown>;
}

export function expectVersion(
  json: Record<string, unknown>,
  what: string,
  supported: number,
): void {
  const version = json['version'];
  if (version !== supported) {
    const hint =
      typeof version === 'number' && version > supported
        ? 'it was written by a newer @minigpt/tokenizer; upgrade this package'
        : 'the file is not a tokenizer file this package wrote, or it is damaged';
    throw new TokenizerError(
      `${what}: unsupported format version ${JSON.stringify(version)} (this package reads version ${supported}); ${hint}`,
    );
  }
}

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
