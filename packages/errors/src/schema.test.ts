import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { MinigptError, checkSchema } from './index.js';

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
});
