// Maps a tokenizer JSON's `type` to the code that loads it, so new kinds plug in by
// registering themselves; the built-in kinds are present from the start.
import { BpeTokenizer } from './bpe.js';
import { CharTokenizer } from './char.js';
import { expectObject } from './json.js';
import { TokenizerError, type Tokenizer } from './tokenizer.js';

/** What the registry needs to know of a tokenizer kind. */
export interface TokenizerKind {
  readonly type: string;
  fromJSON(json: unknown): Tokenizer;
}

const builtInKinds: TokenizerKind[] = [
  { type: 'char', fromJSON: (json) => CharTokenizer.fromJSON(json) },
  { type: 'bpe', fromJSON: (json) => BpeTokenizer.fromJSON(json) },
];
const kinds = new Map(builtInKinds.map((kind) => [kind.type, kind] as const));

/** Makes `tokenizerFromJSON` understand a new `type`. Re-registering a type replaces it. */
export function registerTokenizer(kind: TokenizerKind): void {
  if (typeof kind.type !== 'string' || kind.type.length === 0) {
    throw new TokenizerError('registerTokenizer: kind.type must be a non-empty string');
  }
  kinds.set(kind.type, kind);
}

/** The types `tokenizerFromJSON` can load, sorted. */
export function registeredTokenizerTypes(): string[] {
  return [...kinds.keys()].sort();
}

/**
 * Loads any registered tokenizer from its JSON form (the value `toJSON()` returned, or a
 * `JSON.parse` of it). `source` names where the JSON came from, for error messages.
 */
export function tokenizerFromJSON(json: unknown, source = 'tokenizer JSON'): Tokenizer {
  try {
    const object = expectObject(json, source);
    const type = object['type'];
    const kind = typeof type === 'string' ? kinds.get(type) : undefined;
    if (!kind) {
      throw new TokenizerError(
        `unknown tokenizer type ${JSON.stringify(type)}; known types: ${registeredTokenizerTypes().join(', ')}. ` +
          'A custom kind must be registered with registerTokenizer() before loading.',
      );
    }
    return kind.fromJSON(object);
  } catch (error) {
    if (error instanceof TokenizerError && !error.message.startsWith(source)) {
      error.message = `${source}: ${error.message}`;
    }
    throw error;
  }
}
