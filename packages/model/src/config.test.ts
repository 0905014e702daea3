// validateGPTConfig against hostile configs: absurd sizes are refused at once with a
// ConfigError naming the key, the bound and the value; a non-object is a ConfigError too.
// No tfjs here.
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  GPT_CONFIG_BOUNDS,
  activationOf,
  countParameters,
  resolveGPTConfig,
  validateGPTConfig,
} from './config.js';

const base = {
  blockSize: 16,
  vocabSize: 11,
  nLayer: 2,
  nHead: 2,
  nEmbd: 32,
  dropout: 0,
  bias: true,
};

function refusal(config: unknown, source?: string): ConfigError {
  try {
    validateGPTConfig(config, source);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected validateGPTConfig to refuse the config');
}

describe('validateGPTConfig bounds', () => {
  it('admits GPT-2 XL and configs at each bound', () => {
    const xl = { nLayer: 48, nHead: 25, nEmbd: 1600, blockSize: 1024, vocabSize: 50257 };
    const config = validateGPTConfig({ ...base, ...xl });
    expect(countParameters(config, true)).toBe(1_557_611_200);
    expect(() => validateGPTConfig({ ...base, nLayer: 1024, nEmbd: 64 })).not.toThrow();
    expect(() => validateGPTConfig({ ...base, nHead: 1024, nEmbd: 1024, nLayer: 1 })).not.toThrow();
    expect(() =>
      validateGPTConfig({
        ...base,
        nEmbd: 65_536,
        nHead: 1,
        nLayer: 1,
        vocabSize: 1,
        blockSize: 1,
      }),
    ).toThrow(/"parameters"/); // at the width bound one block is already 51 G parameters
    expect(() => validateGPTConfig({ ...base, blockSize: 1_048_576, nEmbd: 8 })).not.toThrow();
    expect(() => validateGPTConfig({ ...base, vocabSize: 4_194_304, nEmbd: 8 })).not.toThrow();
  });

  it.each([
    ['nLayer', 1024],
    ['nHead', 1024],
    ['nEmbd', 65_536],
    ['blockSize', 1_048_576],
    ['vocabSize', 4_194_304],
  ] as const)('refuses %s above %d, naming the key, the bound and the value', (key, bound) => {
    expect(GPT_CONFIG_BOUNDS[key]).toBe(bound);
    const error = refusal({ ...base, [key]: bound + 1 });
    expect(error.rule).toBe('bound');
    expect(error.message).toBe(
      `model config "${key}" must be ≤ ${bound}, got ${bound + 1} — far larger than any model this package builds; check the config`,
    );
  });

  it('refuses nLayer 1e9 and blockSize 1e9 at once (they used to run out of memory or throw RangeError)', () => {
    const start = performance.now();
    expect(refusal({ ...base, nLayer: 1e9 }).message).toMatch(
      /"nLayer" must be ≤ 1024, got 1000000000/,
    );
    expect(refusal({ ...base, blockSize: 1e9 }).message).toMatch(
      /"blockSize" must be ≤ 1048576, got 1000000000/,
    );
    expect(refusal({ ...base, vocabSize: 1e300 }).message).toMatch(
      /"vocabSize" must be ≤ 4194304, got 1e\+300/,
    );
    expect(performance.now() - start).toBeLessThan(100);
  });

  it('refuses a total parameter count over 2^33', () => {
    const config = { ...base, nLayer: 1024, nEmbd: 1024, nHead: 16 };
    const error = refusal(config);
    expect(error.rule).toBe('bound');
    expect(error.message).toBe(
      `model config "parameters" (weights with position embeddings) must be ≤ 8589934592 (2^33), got ${countParameters(config as never, true)} — lower nLayer, nEmbd, vocabSize or blockSize`,
    );
  });

  it('refuses a non-object with a ConfigError, not a TypeError', () => {
    for (const [value, found] of [
      [null, 'null'],
      [[base], 'an array'],
      ['{}', 'string'],
      [7, 'number'],
      [undefined, 'undefined'],
    ] as const) {
      const error = refusal(value);
      expect(error.rule).toBe('config-type');
      expect(error.message).toBe(
        `the model config must be an object with keys blockSize, vocabSize, nLayer, nHead, nEmbd, dropout, bias (optional: activation); got ${found}`,
      );
    }
  });

  it('refuses inherited names as keys, and keeps only the config keys', () => {
    expect(refusal({ ...base, constructor: 1 }).message).toMatch(
      /unknown model config key "constructor"/,
    );
    expect(refusal(JSON.parse(`{"__proto__": {"nLayer": 2}}`)).rule).toBe('unknown-key');
    expect(Object.keys(validateGPTConfig(base)).sort()).toEqual(Object.keys(base).sort());
  });

  it('names the file when given one, and sets the rule on every refusal', () => {
    const error = refusal({ ...base, nLayer: 0 }, 'ckpt/config.json');
    expect(error.message).toBe(
      'ckpt/config.json: model config "nLayer" must be a positive integer, got 0',
    );
    expect([error.file, error.rule]).toEqual(['ckpt/config.json', 'value-type']);
    expect(refusal({ ...base, nEmbd: 33 }).rule).toBe('divisible');
    expect(refusal({ ...base, dropout: 1 }).rule).toBe('dropout');
    expect(refusal({ ...base, typo: 1 }).rule).toBe('unknown-key');
    expect(() => resolveGPTConfig({ vocabSize: 11 }, 'huge' as never)).toThrow(ConfigError);
  });
});

describe('validateGPTConfig activation', () => {
  it('keeps "gelu" and "gelu_tanh" when given, and adds no key when absent', () => {
    expect(validateGPTConfig({ ...base, activation: 'gelu_tanh' }).activation).toBe('gelu_tanh');
    expect(validateGPTConfig({ ...base, activation: 'gelu' }).activation).toBe('gelu');
    // A config written before the key existed serializes byte for byte as it did.
    expect(JSON.stringify(validateGPTConfig(base))).toBe(
      '{"blockSize":16,"vocabSize":11,"nLayer":2,"nHead":2,"nEmbd":32,"dropout":0,"bias":true}',
    );
    expect(JSON.stringify(resolveGPTConfig({ vocabSize: 11 }, 'nano'))).toBe(
      '{"blockSize":16,"vocabSize":11,"nLayer":2,"nHead":2,"nEmbd":32,"dropout":0,"bias":true}',
    );
    // An optional field spread as undefined is no key either (JSON has no undefined).
    expect('activation' in validateGPTConfig({ ...base, activation: undefined })).toBe(false);
    expect(resolveGPTConfig({ vocabSize: 11, activation: 'gelu_tanh' }, 'nano')).toEqual({
      ...base,
      activation: 'gelu_tanh',
    });
  });

  it('reads an absent activation as the exact GELU', () => {
    expect(activationOf(validateGPTConfig(base))).toBe('gelu');
    expect(activationOf(validateGPTConfig({ ...base, activation: 'gelu_tanh' }))).toBe('gelu_tanh');
  });

  it('refuses any other value, naming the key, the valid values and the file', () => {
    for (const [value, shown] of [
      ['gelu_new', '"gelu_new"'],
      ['GELU', '"GELU"'],
      ['relu', '"relu"'],
      [null, 'null'],
      [1, '1'],
    ] as const) {
      const error = refusal({ ...base, activation: value }, 'run/config.json');
      expect(error.message).toBe(
        `run/config.json: model config "activation" must be one of "gelu", "gelu_tanh", got ${shown}`,
      );
      expect([error.rule, error.file]).toEqual(['value-type', 'run/config.json']);
    }
    expect(refusal({ ...base, activations: 'gelu' }).message).toBe(
      'unknown model config key "activations"; valid keys: blockSize, vocabSize, nLayer, nHead, nEmbd, dropout, bias, activation',
    );
    // Inherited, not own: not a config key, so not read.
    const inherited = Object.create({ activation: 'relu' }) as Record<string, unknown>;
    Object.assign(inherited, base);
    expect('activation' in validateGPTConfig(inherited)).toBe(false);
  });
});
