import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { MinigptError, checkSchema, preview } from './index.js';

const schema = z.strictObject({
  model: z.strictObject({ nLayer: z.int().min(1).max(512) }),
  name: z.string(),
});
const fail = (problem: string) => new MinigptError(`config.json: ${problem}`);

describe('checkSchema', () => {
  it('returns the parsed value', () => {
    expect(checkSchema(schema, { model: { nLayer: 4 }, name: 'x' }, fail)).toEqual({
      model: { nLayer: 4 },
      name: 'x',
    });
  });

  it('names the file, the field, the rule and the value found', () => {
    expect(() => checkSchema(schema, { model: { nLayer: 1e9 }, name: 'x' }, fail)).toThrow(
      'config.json: "model.nLayer": Too big: expected number to be <=512, got 1000000000',
    );
    expect(() => checkSchema(schema, { model: {}, name: 'x' }, fail)).toThrow(
      /^config\.json: "model\.nLayer": .* \(missing\)$/,
    );
    expect(() => checkSchema(schema, [], fail)).toThrow(/^config\.json: the file: /);
  });

  it('shortens long values', () => {
    const error = (() => {
      try {
        checkSchema(schema, { model: { nLayer: 1 }, name: 'x'.repeat(10_000), extra: 1 }, fail);
      } catch (caught) {
        return caught as Error;
      }
    })();
    expect(error!.message.length).toBeLessThan(200);
  });

  it('renders deep and huge values in bounded time and space', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(preview(deep)).toBe('[[[…]]]');
    expect(preview('x'.repeat(1e7))).toBe(`"${'x'.repeat(56)}…`);
    expect(preview({ a: [1, 2, { b: 3 }], c: 'd' })).toBe('{"a":[1,2,{…}],"c":"d"}');
    expect(preview(Array.from({ length: 100 }, (_, i) => i))).toBe('[0,1,2,3,4,5,6,7,…]');
  });
});
