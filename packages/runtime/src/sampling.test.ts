import { Random } from '@minigpt/random';
import { describe, expect, it } from 'vitest';
import { sampleToken } from './index.js';

describe('sampleToken', () => {
  const logits = [1, 3, 2, 0.5];

  it('is greedy at temperature 0 and with topK 1', () => {
    expect(sampleToken(logits, new Random(1), { temperature: 0 })).toBe(1);
    for (let seed = 0; seed < 20; seed++)
      expect(sampleToken(logits, new Random(seed), { topK: 1 })).toBe(1);
  });

  it('samples in proportion to softmax(logits / temperature)', () => {
    const random = new Random(2);
    const counts = [0, 0, 0, 0];
    const n = 20_000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, random)]!++;
    const exps = logits.map(Math.exp);
    const total = exps.reduce((a, b) => a + b);
    counts.forEach((count, id) =>
      expect(Math.abs(count / n - exps[id]! / total)).toBeLessThan(0.015),
    );
  });

  it('keeps only the top-k, and the nucleus for top-p', () => {
    const random = new Random(3);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, random, { topK: 2 }));
    expect([...seen].sort()).toEqual([1, 2]);
    // p(1) = 0.61 after softmax: top-p 0.5 keeps only it.
    for (let i = 0; i < 100; i++) expect(sampleToken(logits, random, { topP: 0.5 })).toBe(1);
  });

  it('rejects bad settings', () => {
    expect(() => sampleToken(logits, new Random(1), { temperature: -1 })).toThrow(/temperature/);
    expect(() => sampleToken(logits, new Random(1), { topK: 0 })).toThrow(/topK/);
    expect(() => sampleToken(logits, new Random(1), { topP: 0 })).toThrow(/topP/);
  });
});
