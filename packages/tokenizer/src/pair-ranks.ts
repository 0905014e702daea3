// The merge rank of a pair of token ids, looked up for every adjacent pair while encoding: an
// open-addressing hash table over typed arrays, which allocates nothing per lookup. The Map
// keyed by first · 2^24 + second it replaces needed a heap number for most keys (they exceed
// V8's small integers once the first id passes 63), one allocated per lookup.

/** What `get` returns for a pair that is not a merge; larger than any rank. */
export const NO_RANK = 0x7fffffff;

export class PairRanks {
  private readonly firsts: Int32Array;
  private readonly seconds: Int32Array;
  private readonly ranks: Int32Array;
  private readonly mask: number;

  /** A table for up to `capacity` pairs (kept at most half full, so probes stay short). */
  constructor(capacity: number) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.firsts = new Int32Array(size).fill(-1);
    this.seconds = new Int32Array(size);
    this.ranks = new Int32Array(size);
    this.mask = size - 1;
  }

  private slot(first: number, second: number): number {
    let hash = Math.imul(first, 0x9e3779b1) ^ Math.imul(second, 0x85ebca77);
    hash ^= hash >>> 15;
    hash = Math.imul(hash, 0x2c1b3c6d);
    hash ^= hash >>> 13;
    return hash & this.mask;
  }

  /** The rank of the merge of `first` then `second`, or NO_RANK. */
  get(first: number, second: number): number {
    const firsts = this.firsts;
    for (let slot = this.slot(first, second); ; slot = (slot + 1) & this.mask) {
      const stored = firsts[slot]!;
      if (stored === -1) return NO_RANK;
      if (stored === first && this.seconds[slot] === second) return this.ranks[slot]!;
    }
  }

  /** Adds the pair with `rank`; returns the rank it already had instead, if any. */
  add(first: number, second: number, rank: number): number | undefined {
    for (let slot = this.slot(first, second); ; slot = (slot + 1) & this.mask) {
      const stored = this.firsts[slot]!;
      if (stored === -1) {
        this.firsts[slot] = first;
        this.seconds[slot] = second;
        this.ranks[slot] = rank;
        return undefined;
      }
      if (stored === first && this.seconds[slot] === second) return this.ranks[slot]!;
    }
  }
}
