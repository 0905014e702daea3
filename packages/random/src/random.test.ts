import { describe, expect, it } from 'vitest';
import { Random } from './index.js';

describe('Random', () => {
  it('gives the same sequence for the same seed and a different one for another seed', () => {
    const a = new Random(42);
    const b = new Random(42);
    const c = new Random(43);
    const seqA = Array.from({ length: 8 }, () => a.nextUint32());
    const seqB = Array.from({ length: 8 }, () => b.nextUint32());
    const seqC = Array.from({ length: 8 }, () => c.nextUint32());
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
  });

  it('distinguishes seeds that differ only above 32 bits', () => {
    expect(new Random(1).nextUint32()).not.toBe(new Random(2 ** 32 + 1).nextUint32());
  });

  it('continues exactly from a saved state', () => {
    const random = new Random(7);
    for (let i = 0; i < 100; i++) random.nextUint32();
    const restored = Random.fromState(JSON.parse(JSON.stringify(random.getState())));
    const expected = Array.from({ length: 16 }, () => random.nextFloat());
    expect(Array.from({ length: 16 }, () => restored.nextFloat())).toEqual(expected);
  });

  it('keeps nextInt in range and roughly uniform', () => {
    const random = new Random(3);
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < 60_000; i++) {
      const value = random.nextInt(6);
      expect(value >= 0 && value < 6).toBe(true);
      counts[value]!++;
    }
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it('keeps floats in [0, 1) with mean about 1/2 and normals with mean 0, variance 1', () => {
    const random = new Random(11);
    let sum = 0;
    let normalSum = 0;
    let normalSquares = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const value = random.nextFloat();
      expect(value >= 0 && value < 1).toBe(true);
      sum += value;
      const normal = random.nextNormal();
      normalSum += normal;
      normalSquares += normal * normal;
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(normalSum / n)).toBeLessThan(0.02);
    expect(Math.abs(normalSquares / n - 1)).toBeLessThan(0.03);
  });

  it('rejects bad seeds, states and ranges with clear errors', () => {
    expect(() => new Random(Number.NaN)).toThrow(/finite number/);
    expect(() => Random.fromState([1, 2, 3] as never)).toThrow(/four uint32/);
    expect(() => Random.fromState([0, 0, 0, 0])).toThrow(/all-zero/);
    expect(() => new Random(1).nextInt(0)).toThrow(/integer in \[1, 2\^32\]/);
  });
});
