// A small seeded PRNG (xoshiro128**, seeded through splitmix32) whose whole state can be
// saved and restored, so batches, init, dropout and sampling are reproducible across resumes.
// It knows nothing of tensors or files: callers store `getState()` wherever they like, and
// name the file when they hand a saved state back (it is checked like any untrusted input).
import { MinigptError } from '@minigpt/errors';

/** The saved form of a {@link Random}: four uint32 words. */
export type RandomState = readonly [number, number, number, number];

const UINT32_RANGE = 4294967296; // 2^32

/** A seed or saved state the generator cannot use: a damaged checkpoint, a bad config value. */
export class RandomError extends MinigptError {
  override name = 'RandomError';
}

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * Seeded pseudo-random numbers (xoshiro128**): fast, 2^128 − 1 period, not cryptographic.
 * The same seed gives the same sequence on every platform.
 */
export class Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** @param seed any finite number; its low 32 bits and high bits are both mixed in. */
  constructor(seed: number = 1337) {
    if (!Number.isFinite(seed)) {
      throw new RandomError(
        `Random: seed must be a finite number, got ${describe(seed)}; pass an integer such as 1337`,
        { rule: 'seed' },
      );
    }
    // Fold the high part of a large integer seed in, so seeds 1 and 2^32 + 1 differ.
    const low = seed >>> 0;
    const high = Math.floor(seed / UINT32_RANGE) >>> 0;
    const next = splitmix32(low ^ Math.imul(high, 0x27d4eb2d));
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // all-zero state is a fixed point
  }

  /**
   * A generator continuing exactly from a state returned by {@link getState}. The state
   * usually comes from a checkpoint file, so it is checked word by word; `source` names where
   * it came from (the file) in the error. Throws a {@link RandomError} for anything else than
   * four integers in [0, 2^32) that are not all zero.
   */
  static fromState(state: RandomState, source = 'Random.fromState'): Random {
    const words: unknown = state;
    const fail = (problem: string, rule: string): never => {
      throw new RandomError(
        `${source}: the saved generator state ${problem}. It must be four integers from 0 to ` +
          '4294967295 (uint32s, as getState() returns), not all zero; the checkpoint is damaged: ' +
          'resume from another one, or start the run again',
        source === 'Random.fromState' ? { rule } : { rule, file: source },
      );
    };
    if (!Array.isArray(words)) fail(`is ${describe(words)}, not an array`, 'state-shape');
    const array = words as unknown[];
    if (array.length !== 4) fail(`has ${array.length} words, not 4`, 'state-shape');
    for (let i = 0; i < 4; i++) {
      const word = array[i];
      if (typeof word !== 'number' || !Number.isInteger(word) || word < 0 || word >= UINT32_RANGE) {
        fail(`word ${i} is ${describe(word)}, not a uint32`, 'state-word');
      }
    }
    if (array.every((word) => word === 0)) {
      fail('is all zero, which xoshiro128** never leaves (every draw would be 0)', 'state-zero');
    }
    const random = new Random(0);
    [random.s0, random.s1, random.s2, random.s3] = array as [number, number, number, number];
    return random;
  }

  /** The full generator state, JSON-serializable. */
  getState(): RandomState {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias. `n` must be an integer in [1, 2^32]. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > UINT32_RANGE) {
      throw new RangeError(`Random.nextInt: n must be an integer in [1, 2^32], got ${n}`);
    }
    // Reject the top sliver of [0, 2^32) that does not divide evenly by n.
    const limit = UINT32_RANGE - (UINT32_RANGE % n);
    for (;;) {
      const value = this.nextUint32();
      if (value < limit) return value % n;
    }
  }

  /** Standard normal sample (Box–Muller; one value per call, for simplicity of state). */
  nextNormal(): number {
    let u = 0;
    while (u === 0) u = this.nextFloat();
    const v = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

function rotl(value: number, shift: number): number {
  return ((value << shift) | (value >>> (32 - shift))) >>> 0;
}

/** A found value in a message: short whatever it is (a state field may hold anything). */
function describe(value: unknown): string {
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'string') {
    return value.length > 20
      ? `the string ${JSON.stringify(value.slice(0, 20))}…`
      : `the string ${JSON.stringify(value)}`;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value === 'object' ? 'an object' : String(typeof value);
}
