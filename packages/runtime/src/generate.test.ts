import { Random } from '@minigpt/random';
import { CharTokenizer } from '@minigpt/tokenizer';
import { describe, expect, it } from 'vitest';
import { GenerationError, generate, type DecoderSession } from './index.js';

const tokenizer = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz .\n');

/**
 * A pure-JS "model": the next token is a deterministic function of the whole visible window
 * (hash of ids with positions), so any cache or position bug changes the text.
 */
function fakeSession(blockSize: number): DecoderSession<{ ids: number[] }> & {
  calls: Array<{ fed: number; cached: number }>;
  live: Set<object>;
} {
  const vocabSize = tokenizer.vocabSize;
  const calls: Array<{ fed: number; cached: number }> = [];
  const live = new Set<object>();
  return {
    blockSize,
    vocabSize,
    calls,
    live,
    async forward(ids, state) {
      const window = [...(state?.ids ?? []), ...ids];
      if (window.length > blockSize) throw new Error(`window ${window.length} > blockSize`);
      calls.push({ fed: ids.length, cached: state?.ids.length ?? 0 });
      let hash = 7;
      window.forEach((id, position) => (hash = (hash * 31 + id * (position + 1)) % 1000003));
      const logits = new Float32Array(vocabSize);
      const random = new Random(hash);
      for (let i = 0; i < vocabSize; i++) logits[i] = random.nextNormal();
      const next = { ids: window };
      live.add(next);
      return { logits, state: next };
    },
    release(state) {
      live.delete(state);
    },
  };
}

/** Reference: recompute from the window each token, as nanoGPT's generate does. */
async function slidingReference(
  session: DecoderSession<{ ids: number[] }>,
  prompt: string,
  count: number,
  seed: number,
) {
  const ids = tokenizer.encode(prompt);
  const random = new Random(seed);
  const { sampleToken } = await import('./index.js');
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const { logits } = await session.forward(ids.slice(-session.blockSize), null);
    const id = sampleToken(logits, random, {});
    ids.push(id);
    out.push(id);
  }
  return tokenizer.decode(out);
}

describe('generate', () => {
  it('prefills once, then feeds one token per step, and frees every cache state', async () => {
    const session = fakeSession(64);
    const generation = generate(session, tokenizer, 'hello there', { maxNewTokens: 20, seed: 1 });
    const text = await generation.text();
    expect(text).toHaveLength(20);
    expect(session.calls[0]).toEqual({ fed: 11, cached: 0 });
    expect(session.calls.slice(1).every((c, i) => c.fed === 1 && c.cached === 11 + i)).toBe(true);
    expect(generation.stats).toMatchObject({ newTokens: 20, stopReason: 'length', refills: 0 });
    expect(generation.stats.firstTokenMs).toBeGreaterThanOrEqual(0);
    expect(session.live.size).toBe(0);
  });

  it('same seed, same text; another seed, other text', async () => {
    const run = (seed: number) =>
      generate(fakeSession(64), tokenizer, 'abc', { maxNewTokens: 30, seed }).text();
    expect(await run(3)).toBe(await run(3));
    expect(await run(3)).not.toBe(await run(4));
  });

  it('past blockSize, re-prefills from the last tokens; refill = blockSize is the exact sliding window', async () => {
    const blockSize = 16;
    const exact = generate(fakeSession(blockSize), tokenizer, 'the cat', {
      maxNewTokens: 40,
      seed: 2,
      refill: blockSize,
    });
    expect(await exact.text()).toBe(
      await slidingReference(fakeSession(blockSize), 'the cat', 40, 2),
    );
    // One per token once the window is full: step k (k ≥ 1) holds 7 + k tokens, > 16 from k = 10.
    expect(exact.stats.refills).toBe(30);
    const session = fakeSession(blockSize);
    const halved = generate(session, tokenizer, 'the cat', { maxNewTokens: 40, seed: 2 });
    await halved.text();
    const refills = session.calls.filter((c) => c.cached === 0).slice(1);
    expect(refills.length).toBe(halved.stats.refills);
    expect(refills.every((c) => c.fed === blockSize / 2)).toBe(true);
    expect(session.calls.every((c) => c.fed + c.cached <= blockSize)).toBe(true);
    expect(session.live.size).toBe(0);
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
    expect(session.live.size).toBe(0);
  });

  it('rejects bad settings and prompts with clear errors', () => {
    const session = fakeSession(64);
    expect(() => generate(session, tokenizer, 'a', { maxNewTokens: 0 })).toThrow(
      /maxNewTokens must be a positive integer, got 0/,
    );
    expect(() => generate(session, tokenizer, '')).toThrow(/the prompt is empty/);
    expect(() => generate(session, tokenizer, 'aΩ')).toThrow(/"Ω" \(U\+03A9\) at position 1/);
    expect(() => generate(session, tokenizer, 'a', { refill: 65 })).toThrow(
      /refill must be an integer from 1 to blockSize \(64\)/,
    );
    const other = CharTokenizer.fromText('xyz');
    expect(() => generate(session, other, 'x')).toThrow(GenerationError);
    expect(() => generate(session, other, 'x')).toThrow(
      /the tokenizer has 3 tokens but the model's vocabulary is 29/,
    );
  });
});
