import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMinigptError } from '@minigpt/errors';
import { ModelError } from '@minigpt/model/config';
import { encodeSafetensors } from '@minigpt/model/safetensors';
import { TokenizerError } from '@minigpt/tokenizer';
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CheckpointError,
  checkpointFileLimits,
  encodeCheckpoint,
  memorySource,
  readCheckpoint,
  type DecodedCheckpoint,
} from './index.js';
import { TINY_MODEL, tinyContents, tinyFiles } from './test-fixtures.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytesOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** Reads the tiny checkpoint with `file` replaced by `replacement`. */
function readWith(file: string, replacement: Uint8Array | undefined, optimizer = true) {
  const files = tinyFiles();
  if (replacement === undefined) files.delete(file);
  else files.set(file, replacement);
  return readCheckpoint(memorySource('ckpt', files), { optimizer });
}

function editJson(
  file: 'state.json' | 'config.json',
  edit: (json: Record<string, unknown>) => void,
) {
  const json = JSON.parse(text(tinyFiles().get(file)!)) as Record<string, unknown>;
  edit(json);
  return readWith(file, bytesOf(json));
}

describe('checkpoint codec', () => {
  it('reads back exactly what it wrote', async () => {
    const contents = tinyContents();
    const read = await readCheckpoint(memorySource('ckpt', tinyFiles()), { optimizer: true });
    expect(read.config).toEqual({ formatVersion: 1, ...contents.config });
    expect(read.state).toEqual({ formatVersion: 1, ...contents.state });
    expect(read.tokenizer.decode(read.tokenizer.encode('abc d'))).toBe('abc d');
    expect([...read.weights.keys()]).toEqual([...contents.weights.keys()]);
    for (const [name, weight] of contents.weights) {
      expect(read.weights.get(name)!.data).toEqual(weight.data);
      expect(read.optimizer!.moments.get(name)!.v).toEqual(contents.optimizer.moments.get(name)!.v);
    }
    expect(read.optimizer!.step).toBe(3);
  });

  it('writes state.json and config.json in a fixed, readable layout (known answer)', () => {
    expect(text(tinyFiles().get('state.json')!)).toBe(
      '{\n  "formatVersion": 1,\n  "iteration": 3,\n  "bestValLoss": 1.25,\n  "random": [\n    1,\n    2,\n    3,\n    4\n  ],\n' +
        '  "backend": "cpu",\n  "savedAt": "2026-11-29T12:00:00.000Z",\n  "dataSha256": "' +
        'ab'.repeat(32) +
        '"\n}\n',
    );
    expect(JSON.parse(text(tinyFiles().get('config.json')!))).toEqual({
      formatVersion: 1,
      model: TINY_MODEL,
      train: { preset: 'nano', batchSize: 2, decayLr: true },
    });
  });

  it('skips optimizer.safetensors unless asked', async () => {
    const read = await readWith('optimizer.safetensors', undefined, false);
    expect(read.optimizer).toBeUndefined();
  });

  it('refuses to write what it would not read', () => {
    const contents = tinyContents();
    expect(() =>
      encodeCheckpoint({ ...contents, state: { ...contents.state, iteration: -5 } }),
    ).toThrow(/state\.json: breaks the checkpoint schema: "iteration"/);
  });
});

describe('hostile state.json', () => {
  const cases: Array<[string, (json: Record<string, unknown>) => void, RegExp]> = [
    [
      'a string iteration',
      (j) => (j['iteration'] = 'x'),
      /state\.json: breaks the checkpoint schema: "iteration": .*, got "x"/,
    ],
    ['a negative iteration', (j) => (j['iteration'] = -5), /"iteration": Too small: .*, got -5/],
    ['a fractional iteration', (j) => (j['iteration'] = 1.5), /"iteration": .*int.*, got 1\.5/],
    ['a huge iteration', (j) => (j['iteration'] = 1e300), /"iteration": .*, got 1e\+300/],
    [
      'an all-zero generator',
      (j) => (j['random'] = [0, 0, 0, 0]),
      /"random": an all-zero generator state is invalid/,
    ],
    ['a short generator state', (j) => (j['random'] = [1, 2, 3]), /"random": /],
    [
      'a generator word over 32 bits',
      (j) => (j['random'] = [1, 2, 3, 2 ** 32]),
      /"random\.3": Too big/,
    ],
    ['a negative loss', (j) => (j['bestValLoss'] = -1), /"bestValLoss": Too small/],
    [
      'a bad sha256',
      (j) => (j['dataSha256'] = 'nope'),
      /"dataSha256": must be 64 lowercase hex digits, got "nope"/,
    ],
    ['a bad date', (j) => (j['savedAt'] = 'yesterday'), /"savedAt": /],
    [
      'an unknown key',
      (j) => (j['extra'] = 1),
      /breaks the checkpoint schema: the file: Unrecognized key: "extra"/,
    ],
    ['a missing key', (j) => delete j['random'], /"random": .* \(missing\)/],
    [
      'a newer format',
      (j) => (j['formatVersion'] = 2),
      /checkpoint format version 2, this minigpt reads version 1\. Upgrade minigpt/,
    ],
    [
      'no format',
      (j) => delete j['formatVersion'],
      /checkpoint format version undefined, .* not a minigpt checkpoint, or it is damaged/,
    ],
  ];
  for (const [what, edit, message] of cases) {
    it(`refuses ${what}`, async () => {
      const error = await editJson('state.json', edit).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointError);
      expect((error as CheckpointError).message).toMatch(/^ckpt\/state\.json: /);
      expect((error as CheckpointError).message).toMatch(message);
    });
  }

  it('refuses a state.json that is not JSON, or not UTF-8', async () => {
    await expect(readWith('state.json', bytesOf('x').subarray(1))).rejects.toThrow(
      /ckpt\/state\.json: is not valid UTF-8 JSON/,
    );
    await expect(readWith('state.json', Uint8Array.of(0x7b, 0xff, 0x7d))).rejects.toThrow(
      /ckpt\/state\.json: is not valid UTF-8 JSON/,
    );
    await expect(readWith('state.json', bytesOf([1]))).rejects.toThrow(
      /ckpt\/state\.json: is not a JSON object/,
    );
  });
});

describe('hostile config.json', () => {
  it('refuses absurd model sizes before allocating anything', async () => {
    const error = await editJson('config.json', (j) => {
      (j['model'] as Record<string, unknown>)['nLayer'] = 1e9;
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toMatch(/^ckpt\/config\.json: "model": .*nLayer/);
  });

  it('refuses unknown model keys, and train settings that are not flat values', async () => {
    await expect(
      editJson('config.json', (j) => ((j['model'] as Record<string, unknown>)['extra'] = 1)),
    ).rejects.toThrow(/config\.json: "model": unknown model config key "extra"/);
    await expect(editJson('config.json', (j) => (j['train'] = { nested: {} }))).rejects.toThrow(
      /config\.json: breaks the checkpoint schema: "train\.nested": /,
    );
  });
});

describe('hostile tokenizer.json and safetensors', () => {
  it('refuses a tokenizer of another vocabulary size', async () => {
    const error = await readWith(
      'tokenizer.json',
      bytesOf({ type: 'char', version: 1, vocab: ['a', 'b'] }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toBe(
      'ckpt/tokenizer.json: the tokenizer has 2 tokens, the model (config.json) 6: the files are not from one checkpoint',
    );
  });

  it('passes on the tokenizer reader’s own error', async () => {
    await expect(readWith('tokenizer.json', bytesOf({ type: 'char', version: 1 }))).rejects.toThrow(
      TokenizerError,
    );
  });

  it('refuses an I32 tensor where a float weight belongs, naming it', async () => {
    const weights = [...tinyContents().weights].map(([name, { shape, data }]) =>
      name === 'wpe.weight'
        ? ([name, { dtype: 'I32' as const, shape, data: Int32Array.from(data, () => 1) }] as const)
        : ([name, { dtype: 'F32' as const, shape, data }] as const),
    );
    const error = await readWith('model.safetensors', encodeSafetensors(weights)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ModelError);
    expect((error as Error).message).toMatch(
      /^ckpt\/model\.safetensors: weight "wpe\.weight" is I32; model weights must be F32/,
    );
  });

  it('refuses a missing weight and a NaN', async () => {
    const contents = tinyContents();
    const without = [...contents.weights]
      .filter(([name]) => name !== 'ln_f.bias')
      .map(([name, { shape, data }]) => [name, { dtype: 'F32' as const, shape, data }] as const);
    await expect(readWith('model.safetensors', encodeSafetensors(without))).rejects.toThrow(
      /model\.safetensors: missing weights "ln_f\.bias"/,
    );
    const nan = [...contents.weights].map(([name, { shape, data }]) => {
      const copy = data.slice();
      if (name === 'h.0.mlp.c_fc.weight') copy[5] = Number.NaN;
      return [name, { dtype: 'F32' as const, shape, data: copy }] as const;
    });
    await expect(readWith('model.safetensors', encodeSafetensors(nan))).rejects.toThrow(
      /weight "h\.0\.mlp\.c_fc\.weight" holds NaN at index 5/,
    );
  });

  it('refuses a model file larger than its config allows, before reading it', async () => {
    const limit = checkpointFileLimits(TINY_MODEL).model;
    const error = await readWith('model.safetensors', new Uint8Array(limit + 1)).catch(
      (e: unknown) => e,
    );
    expect((error as CheckpointError).rule).toBe('size');
    expect((error as Error).message).toMatch(
      /model\.safetensors: is \d+ bytes, more than this checkpoint's files can hold/,
    );
  });

  it('checks the optimizer moments against the weights and the state', async () => {
    const { weights, optimizer } = tinyContents();
    const encode = (
      edit: (name: string, kind: 'm' | 'v', data: Float32Array) => Float32Array | undefined,
      step = '3',
    ) =>
      encodeSafetensors(
        [...optimizer.moments].flatMap(([name, { m, v }]) =>
          (['m', 'v'] as const).flatMap((kind) => {
            const data = edit(name, kind, kind === 'm' ? m : v);
            return data
              ? [
                  [
                    `${kind}.${name}`,
                    { dtype: 'F32' as const, shape: weights.get(name)!.shape, data },
                  ] as const,
                ]
              : [];
          }),
        ),
        { step },
      );
    const read = (bytes: Uint8Array) => readWith('optimizer.safetensors', bytes);
    await expect(read(encode((_, __, d) => d, '4'))).rejects.toThrow(
      /optimizer\.safetensors: holds the moments of step 4, but state\.json is at iteration 3/,
    );
    await expect(read(encode((_, __, d) => d, 'x'))).rejects.toThrow(/metadata "step" must be/);
    await expect(
      read(encode((name, kind, d) => (name === 'wte.weight' && kind === 'v' ? undefined : d))),
    ).rejects.toThrow(/the moment "v\.wte\.weight" is missing/);
    await expect(
      read(
        encode((name, kind, d) => (name === 'wte.weight' && kind === 'v' ? d.map(() => -1) : d)),
      ),
    ).rejects.toThrow(/"v\.wte\.weight" holds -1 at index 0; moments are finite and ≥ 0/);
  });

  it('names a missing file', async () => {
    await expect(readWith('config.json', undefined)).rejects.toThrow(
      'ckpt/config.json: missing — not a complete checkpoint',
    );
  });
});

describe('fuzzed checkpoints', () => {
  const valid = tinyFiles();
  const names = [...valid.keys()];
  it('only ever load whole or fail with a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...names),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.option(fc.nat(), { nil: undefined }),
        async (file, edits, cut) => {
          const files = new Map(valid);
          const bytes = valid
            .get(file)!
            .slice(0, cut === undefined ? undefined : cut % (valid.get(file)!.length + 1));
          for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
          files.set(file, bytes);
          let read: DecodedCheckpoint | undefined;
          try {
            read = await readCheckpoint(memorySource('fuzz', files), { optimizer: true });
          } catch (error) {
            if (!isMinigptError(error)) throw error;
            return;
          }
          expect(read.weights.size).toBe(tinyContents().weights.size);
        },
      ),
      { numRuns: 300, seed: 20261129 },
    );
  });
});

describe('the format core', () => {
  it('imports no Node APIs (it runs in browsers)', () => {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    const core = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.includes('test'));
    expect(core.length).toBeGreaterThan(3);
    for (const file of core)
      expect(readFileSync(join(dir, file), 'utf8')).not.toMatch(/from 'node:/);
  });
});
