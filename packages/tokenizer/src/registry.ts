// Maps a tokenizer JSON's `type` to the code that loads it, so new kinds plug in by
// registering themselves; the built-in kinds are present from the start.
import { BpeTokenizer } from './bpe.js';
import { CharTokenizer } from './char.js';
import { DAMAGED, expectObject, jsonError, preview } from './json.js';
import { TokenizerError, type Tokenizer } from './tokenizer.js';

/** What the registry needs to know of a tokenizer kind. */
export interface TokenizerKind {
  readonly type: string;
  /**
   * Loads the kind from JSON read from a file, which is untrusted: check every field and
   * throw a TokenizerError naming `source` (where the JSON came from) for anything wrong.
   */
  fromJSON(json: unknown, source?: string): Tokenizer;
}

const builtInKinds: TokenizerKind[] = [
  { type: 'char', fromJSON: (json, source) => CharTokenizer.fromJSON(json, source) },
  { type: 'bpe', fromJSON: (json, source) => BpeTokenizer.fromJSON(json, source) },
];
const kinds = new Map(builtInKinds.map((kind) => [kind.type, kind] as const));

/** Makes `tokenizerFromJSON` understand a new `type`. Re-registering a type replaces it. */
export function registerTokenizer(kind: TokenizerKind): void {
  if (typeof kind.type !== 'string' || kind.type.length === 0) {
    throw new TokenizerError('registerTokenizer: kind.type must be a non-empty string');
  }
  if (typeof kind.fromJSON !== 'function') {
    throw new TokenizerError(`registerTokenizer: kind ${kind.type}'s fromJSON must be a function`);
  }
  kinds.set(kind.type, kind);
}

/** The types `tokenizerFromJSON` can load, sorted. */
export function registeredTokenizerTypes(): string[] {
  return [...kinds.keys()].sort();
}

/**
 * Loads any registered tokenizer from its JSON form (the value `toJSON()` returned, or a
 * `JSON.parse` of it). `source` names where the JSON came from, for error messages. The JSON
 * is treated as untrusted: anything wrong with it is a TokenizerError starting with `source`.
 */
export function tokenizerFromJSON(json: unknown, source = 'tokenizer JSON'): Tokenizer {
  const object = expectObject(json, source);
  const type = object['type'];
  const kind = typeof type === 'string' ? kinds.get(type) : undefined;
  if (!kind) {
    throw jsonError(
      source,
      `unknown tokenizer type ${preview(type)}; known types: ${registeredTokenizerTypes().join(', ')}. ` +
        `A custom kind must be registered with registerTokenizer() before loading; otherwise: ${DAMAGED}.`,
      'type',
    );
  }
  try {
    return kind.fromJSON(object, source);
  } catch (error) {
    // A kind from elsewhere may not name the source itself.
    if (error instanceof TokenizerError && !error.message.startsWith(source)) {
      error.message = `${source}: ${error.message}`;
    }
    throw error;
  }
}
