// generate / generateBatch over a fake DecoderSession that keeps the graph's contract in plain
// JS: each row's logits come from that row's real (mask 1) tokens and their positions only,
// so a padding, masking or position mistake changes the text; and it refuses what the ONNX
// graph refuses (a cache past blockSize, a position ≥ blockSize, a mask of the wrong shape).
import { Random } from '@minigpt/random';
import { CharTokenizer } from '@minigpt/tokenizer';
import { describe, expect, it } from 'vitest';
import {
  GenerationError,
  generate,
  generateBatch,
  sampleToken,
  type BatchGenerationOptions,
  type DecoderSession,
} from './index.js';

const tokenizer = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz .\n');
const vocabSize = tokenizer.vocabSize;

/** One cache slot of one row, as the fake model keeps it. */
interface Slot {
  readonly id: number;
  readonly position: number;
  readonly real: boolean;
}

interface FakeState {
  /** (B, P) slots. */
  readonly rows: ReadonlyArray<readonly Slot[]>;
}

/** What one forward call was given. */
interface Call {
  readonly batch: number;
  /** P: cache slots before the call. */
  readonly past: number;
  /** T: new slots per row. */
  readonly added: number;
  readonly ids: number[]; // (B, T)
  readonly mask: number[]; // (B, P+T)
  readonly positions: number[]; // (B, T)
}

interface FakeSession extends DecoderSession<FakeState> {
  readonly calls: Call[];
  /** States made and not yet released. */
  readonly live: Set<FakeState>;
  readonly counts: { created: number; released: number };
  /** Misuse seen: a state released twice, or fed after its release. */
  readonly problems: string[];
}

/** Logits (V) from a hash of the row's real tokens and their positions, in order. */
function rowLogits(slots: readonly Slot[]): Float32Array {
  let hash = 7;
  for (const slot of slots) {
    if (slot.real) hash = (hash * 31 + slot.id * 131 + slot.position * 7919 + 1) % 1_000_003;
  }
  const random = new Random(hash);
  return Float32Array.from({ length: vocabSize }, () => random.nextNormal());
}

function fakeSession(blockSize: number, { failAtCall }: { failAtCall?: number } = {}): FakeSession {
  const calls: Call[] = [];
  const live = new Set<FakeState>();
  const counts = { created: 0, released: 0 };
  const problems: string[] = [];
  return {
    blockSize,
    vocabSize,
    calls,
    live,
    counts,
    problems,
    async forward(input, state) {
      if (state !== null && !live.has(state)) {
        problems.push('forward after release');
        throw new Error('forward: the state was released');
      }
      const { batch } = input;
      const past = state?.rows[0]?.length ?? 0;
      const added = input.ids.length / batch;
      const mask = Array.from(input.mask);
      calls.push({
        batch,
        past,
        added,
        ids: Array.from(input.ids),
        mask,
        positions: Array.from(input.positions),
      });
      if (calls.length - 1 === failAtCall) throw new Error('device lost');
      if (!Number.isInteger(added) || added < 1) throw new Error('ids are not (B, T)');
      if (state !== null && state.rows.length !== batch) throw new Error('batch changed');
      if (input.positions.length !== batch * added) throw new Error('positions are not (B, T)');
      const total = past + added;
      if (mask.length !== batch * total) throw new Error('mask is not (B, P+T)');
      if (total > blockSize) throw new Error(`a cache of ${total} passes blockSize ${blockSize}`);
      const rows: Slot[][] = [];
      for (let row = 0; row < batch; row++) {
        const marks = mask.slice(row * total, (row + 1) * total);
        const old = state?.rows[row] ?? [];
        old.forEach((slot, index) => {
          if (marks[index] !== (slot.real ? 1 : 0))
            throw new Error(`row ${row}: the mask of cached slot ${index} changed`);
        });
        const slots = [...old];
        for (let t = 0; t < added; t++) {
          const id = input.ids[row * added + t]!;
          const position = input.positions[row * added + t]!;
          const mark = marks[past + t];
          if (mark !== 0 && mark !== 1) throw new Error(`mask value ${mark}`);
          if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
            throw new Error(`input_ids must be below vocab_size ${vocabSize}`);
          if (!Number.isInteger(position) || position < 0 || position >= blockSize)
            throw new Error(`position_ids must be below n_positions ${blockSize}`);
          slots.push({ id, position, real: mark === 1 });
        }
        rows.push(slots);
      }
      const logits = new Float32Array(batch * vocabSize); // (B, V)
      rows.forEach((slots, row) => logits.set(rowLogits(slots), row * vocabSize));
      const next: FakeState = { rows };
      live.add(next);
      counts.created++;
      return { logits, state: next };
    },
    release(state) {
      if (!live.delete(state)) problems.push('a state released twice, or never made');
      else counts.released++;
    },
  };
}

/** Row `row` of `call`: its new ids, positions and mask marks, and its whole mask. */
function rowOf(call: Call, row: number) {
  const { added, past } = call;
  const total = past + added;
  const marks = call.mask.slice(row * total, (row + 1) * total);
  const ids = call.ids.slice(row * added, (row + 1) * added);
  const positions = call.positions.slice(row * added, (row + 1) * added);
  const fresh = marks.slice(past);
  return {
    marks,
    /** The real new tokens' ids and positions. */
    realIds: ids.filter((_, t) => fresh[t] === 1),
    realPositions: positions.filter((_, t) => fresh[t] === 1),
    padPositions: positions.filter((_, t) => fresh[t] === 0),
  };
}

/** Every session ended cleanly: each state released once, none used after release. */
function expectAllReleased(session: FakeSession) {
  expect(session.problems).toEqual([]);
  expect(session.live.size).toBe(0);
  expect(session.counts.released).toBe(session.counts.created);
}

const prompts = ['the cat', 'a', 'hello there world', 'xyz z']; // 7, 1, 17, 5 tokens
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Reference: recompute from the window each token, as nanoGPT's generate does. */
async function slidingReference(blockSize: number, prompt: string, count: number, seed: number) {
  const session = fakeSession(blockSize);
  const ids = tokenizer.encode(prompt);
  const random = new Random(seed);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const window = ids.slice(-blockSize);
    const { logits, state } = await session.forward(
      { batch: 1, ids: window, mask: window.map(() => 1), positions: range(window.length) },
      null,
    );
    session.release(state);
    const id = sampleToken(logits, random, {});
    ids.push(id);
    out.push(id);
  }
  return tokenizer.decode(out);
}

describe('generate (one prompt)', () => {
  it('prefills once, then feeds one token per step, and frees every cache state', async () => {
    const session = fakeSession(64);
    const generation = generate(session, tokenizer, 'hello there', { maxNewTokens: 20, seed: 1 });
    const text = await generation.text();
    expect(text).toHaveLength(20);
    expect(session.calls).toHaveLength(20);
    expect(session.calls[0]).toMatchObject({ batch: 1, past: 0, added: 11 });
    expect(rowOf(session.calls[0]!, 0).realPositions).toEqual(range(11));
    session.calls.slice(1).forEach((call, index) => {
      expect(call).toMatchObject({ batch: 1, past: 11 + index, added: 1 });
      expect(rowOf(call, 0).realPositions).toEqual([11 + index]);
      expect(rowOf(call, 0).realIds).toEqual([generation.stats.tokens[index]]);
    });
    expect(generation.stats).toMatchObject({ newTokens: 20, stopReason: 'length', refills: 0 });
    expect(generation.stats.firstTokenMs).toBeGreaterThanOrEqual(0);
    expectAllReleased(session);
  });

  it('same seed, same text; another seed, other text', async () => {
    const run = (seed: number) =>
      generate(fakeSession(64), tokenizer, 'abc', { maxNewTokens: 30, seed }).text();
    expect(await run(3)).toBe(await run(3));
    expect(await run(3)).not.toBe(await run(4));
  });

  it('keeps the last blockSize tokens of a longer prompt, at positions from 0', async () => {
    const session = fakeSession(16);
    const prompt = 'abcdefghijklmnopqrstuvwxyz';
    await generate(session, tokenizer, prompt, { maxNewTokens: 2 }).text();
    expect(session.calls[0]).toMatchObject({ past: 0, added: 16 });
    expect(rowOf(session.calls[0]!, 0).realIds).toEqual(tokenizer.encode(prompt.slice(-16)));
    expect(rowOf(session.calls[0]!, 0).realPositions).toEqual(range(16));
  });

  it('past blockSize, re-prefills from the last tokens; refill = blockSize is the exact sliding window', async () => {
    const blockSize = 16;
    const exact = generate(fakeSession(blockSize), tokenizer, 'the cat', {
      maxNewTokens: 40,
      seed: 2,
      refill: blockSize,
    });
    expect(await exact.text()).toBe(await slidingReference(blockSize, 'the cat', 40, 2));
    // One per token once the window is full: step k (k ≥ 1) holds 7 + k tokens, > 16 from k = 10.
    expect(exact.stats.refills).toBe(30);
    const session = fakeSession(blockSize);
    const halved = generate(session, tokenizer, 'the cat', { maxNewTokens: 40, seed: 2 });
    await halved.text();
    const refills = session.calls.filter((call) => call.past === 0).slice(1);
    expect(refills.length).toBe(halved.stats.refills);
    expect(refills.length).toBeGreaterThan(1);
    expect(refills.every((call) => call.added === blockSize / 2)).toBe(true);
    expect(session.calls.every((call) => call.past + call.added <= blockSize)).toBe(true);
    expectAllReleased(session);
  });

  it('stops before a stop string, even one split across tokens, and never yields part of it', async () => {
    const all = await generate(fakeSession(64), tokenizer, 'a', {
      maxNewTokens: 60,
      seed: 9,
    }).text();
    const stop = all.slice(20, 23); // a 3-character string the model will produce
    const pieces: string[] = [];
    const generation = generate(fakeSession(64), tokenizer, 'a', {
      maxNewTokens: 60,
      seed: 9,
      stop: [stop],
    });
    for await (const piece of generation) pieces.push(piece);
    expect(pieces.join('')).toBe(all.slice(0, all.indexOf(stop)));
    expect(generation.stats.stopReason).toBe('stop');
  });

  it('streams whole pieces that add up to the text', async () => {
    const pieces: string[] = [];
    for await (const piece of generate(fakeSession(64), tokenizer, 'a', {
      maxNewTokens: 25,
      seed: 5,
    }))
      pieces.push(piece);
    expect(pieces.length).toBe(25);
    expect(pieces.join('')).toBe(
      await generate(fakeSession(64), tokenizer, 'a', { maxNewTokens: 25, seed: 5 }).text(),
    );
  });

  it('ends on an abort signal, freeing the cache', async () => {
    const controller = new AbortController();
    const session = fakeSession(64);
    const generation = generate(session, tokenizer, 'a', {
      maxNewTokens: 100,
      seed: 1,
      signal: controller.signal,
    });
    let count = 0;
    for await (const piece of generation) {
      count += piece.length;
      if (count === 5) controller.abort();
    }
    expect(generation.stats.newTokens).toBe(5);
    expect(generation.stats.stopReason).toBe('abort');
    expectAllReleased(session);
  });
});

describe('generateBatch', () => {
  it('gives each row the text its prompt gives alone at the row seed, greedy and sampled', async () => {
    // The fake is as strict as promised: a shifted position, or a pad counted as real,
    // changes the logits.
    const slots = tokenizer.encode('ab').map((id, position) => ({ id, position, real: true }));
    const base = rowLogits(slots);
    expect(rowLogits(slots.map((slot) => ({ ...slot, position: slot.position + 1 })))).not.toEqual(
      base,
    );
    expect(rowLogits([{ id: 0, position: 0, real: true }, ...slots])).not.toEqual(base);
    expect(rowLogits([{ id: 0, position: 0, real: false }, ...slots])).toEqual(base);

    const cases: BatchGenerationOptions[] = [
      { temperature: 0 },
      { seed: 11 },
      { seed: 11, temperature: 0.8, topK: 5, topP: 0.9 },
      {}, // seeds 1337 + i
    ];
    for (const options of cases) {
      const session = fakeSession(64);
      const batch = generateBatch(session, tokenizer, prompts, { maxNewTokens: 24, ...options });
      const texts = await batch.texts();
      const alone = await Promise.all(
        prompts.map((prompt, index) =>
          generate(fakeSession(64), tokenizer, prompt, {
            maxNewTokens: 24,
            ...options,
            seed: (options.seed ?? 1337) + index,
          }).text(),
        ),
      );
      expect(texts).toEqual(alone);
      expect(new Set(texts).size).toBe(prompts.length);
      // One prefill of the longest prompt (17), then one token per row per step.
      expect(session.calls.map((call) => call.added)).toEqual([17, ...Array(23).fill(1)]);
      expect(session.calls.every((call) => call.batch === 4)).toBe(true);
      for (const [index, row] of batch.rows.entries()) {
        expect(row.stats).toMatchObject({ newTokens: 24, stopReason: 'length', refills: 0 });
        expect(tokenizer.decode(row.stats.tokens)).toBe(texts[index]);
      }
      expectAllReleased(session);
    }
  });

  it('gives one prompt twice in a batch two samples (seeds seed and seed + 1)', async () => {
    const texts = await generateBatch(fakeSession(64), tokenizer, ['abc', 'abc'], {
      maxNewTokens: 30,
      seed: 3,
    }).texts();
    expect(texts[0]).not.toBe(texts[1]);
    const alone = (seed: number) =>
      generate(fakeSession(64), tokenizer, 'abc', { maxNewTokens: 30, seed }).text();
    expect(texts).toEqual([await alone(3), await alone(4)]);
  });

  it('applies per-row seeds, sampling and maxNewTokens over the shared ones', async () => {
    const session = fakeSession(64);
    const batch = generateBatch(session, tokenizer, prompts, {
      seed: 100,
      maxNewTokens: 12,
      rows: [{ seed: 5 }, { temperature: 0 }, { topK: 1, maxNewTokens: 7 }, undefined],
    });
    const texts = await batch.texts();
    const alone = (index: number, options: BatchGenerationOptions) =>
      generate(fakeSession(64), tokenizer, prompts[index]!, {
        maxNewTokens: 12,
        ...options,
      }).text();
    expect(texts).toEqual([
      await alone(0, { seed: 5 }),
      await alone(1, { seed: 101, temperature: 0 }),
      await alone(2, { seed: 102, topK: 1, maxNewTokens: 7 }),
      await alone(3, { seed: 103 }),
    ]);
    expect(batch.rows.map((row) => row.stats.newTokens)).toEqual([12, 12, 7, 12]);
    expect(batch.rows.every((row) => row.stats.stopReason === 'length')).toBe(true);
    // The batch runs to the longest row; a finished row rides along as a pad.
    expect(session.calls).toHaveLength(12);
    for (const call of session.calls.slice(7)) {
      expect(rowOf(call, 2).realIds).toEqual([]);
      expect(rowOf(call, 0).realIds).toHaveLength(1);
    }
    expectAllReleased(session);
  });

  it('ends a row at its own stop strings while the others go on', async () => {
    const options = { maxNewTokens: 40, seed: 9 };
    const free = await generateBatch(fakeSession(64), tokenizer, prompts, options).texts();
    // A character rows 0 and 2 both produce, and a 3-character string of row 1's text.
    const shared = [...free[0]!].find((char) => free[2]!.includes(char))!;
    expect(shared).toBeDefined();
    const own = free[1]!.slice(10, 13);
    const session = fakeSession(64);
    const batch = generateBatch(session, tokenizer, prompts, {
      ...options,
      stop: [shared],
      rows: [undefined, { stop: [own] }, { stop: [] }, undefined],
    });
    const pieces = prompts.map(() => [] as string[]);
    await Promise.all(
      batch.rows.map(async (row, index) => {
        for await (const piece of row) pieces[index]!.push(piece);
      }),
    );
    const before = (text: string, stop: string) =>
      text.includes(stop) ? text.slice(0, text.indexOf(stop)) : text;
    expect(pieces.map((list) => list.join(''))).toEqual([
      before(free[0]!, shared),
      before(free[1]!, own), // its own list replaces the shared one
      free[2], // an empty list turns stops off for the row
      before(free[3]!, shared),
    ]);
    expect(batch.rows[0]!.stats.stopReason).toBe('stop');
    expect(batch.rows[1]!.stats.stopReason).toBe('stop');
    expect(batch.rows[2]!.stats).toMatchObject({ stopReason: 'length', newTokens: 40 });
    expect(batch.rows[1]!.stats.newTokens).toBeLessThan(40);
    // No piece holds any part of a stop string.
    expect(pieces[0]!.join('')).not.toContain(shared);
    expect(pieces[1]!.join('')).not.toContain(own);
    expectAllReleased(session);
  });

  it('stops every running row on one abort signal; finished rows keep their reason', async () => {
    const controller = new AbortController();
    const session = fakeSession(64);
    const batch = generateBatch(session, tokenizer, prompts, {
      maxNewTokens: 100,
      seed: 1,
      signal: controller.signal,
      rows: [undefined, { maxNewTokens: 3 }],
    });
    let count = 0;
    for await (const piece of batch.rows[0]!) {
      count += piece.length;
      if (count === 5) controller.abort();
    }
    expectAllReleased(session); // released at the abort, before the other rows are read
    const texts = await batch.texts();
    expect(session.calls).toHaveLength(5);
    expect(batch.rows.map((row) => row.stats.stopReason)).toEqual([
      'abort',
      'length',
      'abort',
      'abort',
    ]);
    expect(batch.rows.map((row) => row.stats.newTokens)).toEqual([5, 3, 5, 5]);
    const full = await generateBatch(fakeSession(64), tokenizer, prompts, {
      maxNewTokens: 5,
      seed: 1,
    }).texts();
    expect(texts.slice(2)).toEqual(full.slice(2)); // the pieces read after the abort
  });

  it('runs nothing when the signal is aborted before the first step', async () => {
    const session = fakeSession(64);
    const batch = generateBatch(session, tokenizer, prompts, { signal: AbortSignal.abort() });
    expect(await batch.texts()).toEqual(['', '', '', '']);
    expect(session.calls).toHaveLength(0);
    expect(batch.rows.every((row) => row.stats.stopReason === 'abort')).toBe(true);
  });

  it('streams each row, read concurrently or one after another, in pieces that add up to texts()', async () => {
    const options: BatchGenerationOptions = {
      maxNewTokens: 20,
      seed: 8,
      rows: [{ maxNewTokens: 6 }, undefined, { maxNewTokens: 13 }],
    };
    const expected = await generateBatch(fakeSession(64), tokenizer, prompts, options).texts();
    expect(expected.map((text) => text.length)).toEqual([6, 20, 13, 20]);

    const concurrent = generateBatch(fakeSession(64), tokenizer, prompts, options);
    const pieces = prompts.map(() => [] as string[]);
    await Promise.all(
      concurrent.rows.map(async (row, index) => {
        for await (const piece of row) pieces[index]!.push(piece);
      }),
    );
    expect(pieces.map((list) => list.join(''))).toEqual(expected);
    expect(pieces.map((list) => list.length)).toEqual([6, 20, 13, 20]); // one char per token

    // Last row first: its steps run the others, whose pieces wait for their readers.
    const session = fakeSession(64);
    const sequential = generateBatch(session, tokenizer, prompts, options);
    const texts: string[] = [];
    for (const index of [3, 1, 0, 2]) {
      texts[index] = '';
      for await (const piece of sequential.rows[index]!) texts[index] += piece;
    }
    expect(texts).toEqual(expected);
    expect(session.calls).toHaveLength(20); // steps are shared, not run once per reader
    expectAllReleased(session);
  });

  it('ends only the row whose reader breaks off; frees the cache when the last row ends', async () => {
    const options = { maxNewTokens: 15, seed: 2 };
    const expected = await generateBatch(fakeSession(64), tokenizer, prompts, options).texts();
    const session = fakeSession(64);
    const batch = generateBatch(session, tokenizer, prompts, options);
    let read = '';
    for await (const piece of batch.rows[1]!) {
      read += piece;
      if (read.length === 3) break;
    }
    expect(read).toBe(expected[1]!.slice(0, 3));
    expect(batch.rows[1]!.stats).toMatchObject({ stopReason: 'abort', newTokens: 3 });
    // The others still run on the cache.
    expect(session.live.size).toBe(1);
    expect(session.counts.released).toBe(session.counts.created - 1);
    const texts = await batch.texts();
    expect([texts[0], texts[2], texts[3]]).toEqual([expected[0], expected[2], expected[3]]);
    expect(texts[1]).toBe(''); // nothing more comes from an ended row
    // After the break the row is fed as a pad: its logits no longer matter.
    for (const call of session.calls.slice(3)) expect(rowOf(call, 1).realIds).toEqual([]);
    expectAllReleased(session);

    // Every reader breaking off frees the cache at the last one.
    const broken = fakeSession(64);
    const all = generateBatch(broken, tokenizer, prompts, options);
    for (const [index, row] of all.rows.entries()) {
      for await (const piece of row) {
        void piece;
        break;
      }
      expect(broken.live.size).toBe(index < prompts.length - 1 ? 1 : 0);
    }
    expect(all.rows.every((row) => row.stats.stopReason === 'abort')).toBe(true);
    expectAllReleased(broken);
  });

  it("hands an error of forward to every row's reader, and frees the cache", async () => {
    const session = fakeSession(64, { failAtCall: 3 });
    const batch = generateBatch(session, tokenizer, prompts, { maxNewTokens: 20 });
    const results = await Promise.allSettled(batch.rows.map((row) => row.text()));
    const reasons = results.map((result) => (result as PromiseRejectedResult).reason as Error);
    expect(results.every((result) => result.status === 'rejected')).toBe(true);
    expect(reasons[0]!.message).toBe('device lost');
    for (const reason of reasons) expect(reason).toBe(reasons[0]); // the error itself, to each
    expect(session.calls).toHaveLength(4); // no step after the failure
    expect(batch.rows.map((row) => row.stats.stopReason)).toEqual(prompts.map(() => 'error'));
    expectAllReleased(session);

    // Read one at a time: the first reader meets the error, the later ones too.
    const again = fakeSession(64, { failAtCall: 2 });
    const sequential = generateBatch(again, tokenizer, prompts, { maxNewTokens: 20 });
    for (const row of sequential.rows) await expect(row.text()).rejects.toThrow('device lost');
    expect(again.calls).toHaveLength(3);
    expectAllReleased(again);
  });

  it('feeds (B, P+T) masks and (B, T) positions: left padding, positions over real tokens only', async () => {
    const blockSize = 64;
    const session = fakeSession(blockSize);
    const batch = generateBatch(session, tokenizer, ['ab', 'abcd'], { maxNewTokens: 3, seed: 1 });
    await batch.texts();
    const [a, b, c, d] = tokenizer.encode('abcd');
    const [first, second, third] = session.calls;
    expect(session.calls).toHaveLength(3);
    // Prefill: (2, 4); row 0 is 2 pads then "ab".
    expect(first).toMatchObject({ batch: 2, past: 0, added: 4 });
    expect(first!.mask).toEqual([0, 0, 1, 1, 1, 1, 1, 1]);
    expect(rowOf(first!, 0)).toMatchObject({ realIds: [a, b], realPositions: [0, 1] });
    expect(rowOf(first!, 1)).toMatchObject({ realIds: [a, b, c, d], realPositions: [0, 1, 2, 3] });
    // Decode: mask (2, 4 + 1), one position each, counted over the row's real tokens.
    const [tokens0, tokens1] = batch.rows.map((row) => row.stats.tokens);
    expect(second).toMatchObject({ batch: 2, past: 4, added: 1, positions: [2, 4] });
    expect(second!.mask).toEqual([0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(second!.ids).toEqual([tokens0![0], tokens1![0]]);
    expect(third).toMatchObject({ past: 5, added: 1, positions: [3, 5] });
    expect(third!.mask).toEqual([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    for (const call of session.calls) {
      expect(call.ids).toHaveLength(call.batch * call.added);
      expect(call.positions).toHaveLength(call.batch * call.added);
      expect(call.mask).toHaveLength(call.batch * (call.past + call.added));
      for (let row = 0; row < call.batch; row++) {
        for (const position of rowOf(call, row).padPositions)
          expect(position).toBeLessThan(blockSize);
      }
    }
  });

  it.each([undefined, 5, 16])(
    'rebuilds the cache for all rows when the longest fills it (refill %s)',
    async (refill) => {
      const blockSize = 16;
      const kept = refill ?? blockSize / 2;
      const batchPrompts = ['ab', 'hello there', 'abcdefghijklmn', 'xyz']; // 2, 11, 14, 3
      const session = fakeSession(blockSize);
      const batch = generateBatch(session, tokenizer, batchPrompts, {
        maxNewTokens: 30,
        seed: 4,
        refill,
        rows: [undefined, undefined, undefined, { maxNewTokens: 20 }],
      });
      await batch.texts();
      expect(session.calls).toHaveLength(30);
      const refillCalls = range(30).filter(
        (index) => index > 0 && session.calls[index]!.past === 0,
      );
      expect(refillCalls.length).toBeGreaterThan(1);
      // Every row, on every call, sees a contiguous end of its own history, at positions
      // 0, 1, …: after a rebuild, its last `refill` tokens.
      const seen = batchPrompts.map(() => [] as Array<{ id: number; position: number }>);
      session.calls.forEach((call, index) => {
        expect(call.past + call.added).toBeLessThanOrEqual(blockSize);
        const rebuilt = index > 0 && call.past === 0;
        batch.rows.forEach((row, rowIndex) => {
          const { realIds, realPositions } = rowOf(call, rowIndex);
          if (rebuilt) seen[rowIndex] = [];
          seen[rowIndex]!.push(...realIds.map((id, t) => ({ id, position: realPositions[t]! })));
          const running = index < row.stats.tokens.length; // it samples at this call
          if (!running) {
            expect(realIds).toEqual([]);
            return;
          }
          const history = [...tokenizer.encode(batchPrompts[rowIndex]!), ...row.stats.tokens];
          const visible = history.slice(
            0,
            tokenizer.encode(batchPrompts[rowIndex]!).length + index,
          );
          const window = seen[rowIndex]!;
          expect(window.map((slot) => slot.position)).toEqual(range(window.length));
          expect(window.map((slot) => slot.id)).toEqual(visible.slice(-window.length));
          if (rebuilt) expect(window).toHaveLength(Math.min(kept, visible.length));
        });
      });
      // Each row counts the rebuilds it ran through.
      expect(batch.rows.map((row) => row.stats.refills)).toEqual([
        refillCalls.length,
        refillCalls.length,
        refillCalls.length,
        refillCalls.filter((index) => index < 20).length,
      ]);
      expectAllReleased(session);
    },
  );

  it('refuses prompts and settings it cannot run with, before any step', () => {
    const session = fakeSession(64);
    expect(() => generateBatch(session, tokenizer, [])).toThrow(GenerationError);
    expect(() => generateBatch(session, tokenizer, [])).toThrow(/no prompts: give at least one/);
    expect(() => generateBatch(session, tokenizer, ['ab', ''])).toThrow(
      /^prompt 2: the prompt is empty: give at least one character$/,
    );
    expect(() => generate(session, tokenizer, '')).toThrow(/^the prompt is empty/);
    // An unknown character names the prompt in a batch; alone, the tokenizer's error as is.
    expect(() => generateBatch(session, tokenizer, ['a', 'aΩ'])).toThrow(GenerationError);
    expect(() => generateBatch(session, tokenizer, ['a', 'aΩ'])).toThrow(
      /^prompt 2: .*"Ω" \(U\+03A9\) at position 1/,
    );
    expect(() => generate(session, tokenizer, 'aΩ')).toThrow(/"Ω" \(U\+03A9\) at position 1/);
    const other = CharTokenizer.fromText('xyz');
    expect(() => generate(session, other, 'x')).toThrow(GenerationError);
    expect(() => generateBatch(session, other, ['x', 'y'])).toThrow(
      /the tokenizer has 3 tokens but the model's vocabulary is 29/,
    );
    // Sampling settings are checked at the call, naming the row, not at the first token.
    expect(() => generate(session, tokenizer, 'a', { temperature: -1 })).toThrow(
      /^temperature must be ≥ 0, got -1$/,
    );
    expect(() =>
      generateBatch(session, tokenizer, ['a', 'b'], { rows: [undefined, { topK: 0 }] }),
    ).toThrow(/^prompt 2: topK must be a positive integer, got 0$/);
    expect(() => generate(session, tokenizer, 'a', { topP: 1.5 })).toThrow(GenerationError);
    expect(session.calls).toHaveLength(0);
    for (const refill of [0, 1.5, 65, -1, Number.NaN]) {
      expect(() => generate(session, tokenizer, 'a', { refill })).toThrow(
        new RegExp(`refill must be an integer from 1 to blockSize \\(64\\), got ${refill}`),
      );
    }
    for (const maxNewTokens of [0, 2.5, -1, Number.NaN]) {
      expect(() => generate(session, tokenizer, 'a', { maxNewTokens })).toThrow(
        new RegExp(`^maxNewTokens must be a positive integer, got ${maxNewTokens}$`),
      );
    }
    expect(() =>
      generateBatch(session, tokenizer, ['a', 'b', 'c'], {
        rows: [undefined, undefined, { maxNewTokens: 0 }],
      }),
    ).toThrow(/^prompt 3: maxNewTokens must be a positive integer, got 0$/);
    expect(session.calls).toHaveLength(0);
  });
});
