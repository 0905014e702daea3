// Trains byte-level BPE merges with incremental pair counts: after each merge only the
// words that contained the merged pair are re-counted, and a lazy max-heap finds the next
// most frequent pair, so a merge costs O(words touched), not O(corpus).
import { SafeCutter, compileSplitPattern, forEachPiece } from './pretokenize.js';
import { TokenizerError } from './tokenizer.js';

/** Ids are < 2^24, so a pair packs into one exact double: first · 2^24 + second. */
export const PAIR_KEY_BASE = 16777216;
export const MAX_VOCAB_SIZE = PAIR_KEY_BASE;

export function pairKey(first: number, second: number): number {
  return first * PAIR_KEY_BASE + second;
}

/** Max-heap of (count, pair) ordered by count, then smaller pair key first (determinism). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top; returns [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let best = i;
        if (left < this.keys.length && this.before(left, best)) best = left;
        if (right < this.keys.length && this.before(right, best)) best = right;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }

  private before(a: number, b: number): boolean {
    const countA = this.counts[a]!;
    const countB = this.counts[b]!;
    return countA > countB || (countA === countB && this.keys[a]! < this.keys[b]!);
  }

  private swap(a: number, b: number): void {
    [this.counts[a], this.counts[b]] = [this.counts[b]!, this.counts[a]!];
    [this.keys[a], this.keys[b]] = [this.keys[b]!, this.keys[a]!];
  }
}

export interface BpeTrainerOptions {
  /** Split pattern source (see SPLIT_PATTERNS). */
  readonly pattern: string;
  /** Strings that are cut out of the training text, so no merge learns them. */
  readonly specialTokens?: readonly string[];
}

/**
 * Counts pre-tokens of a text fed in pieces, then learns merges. Memory grows with the
 * number of distinct pre-tokens, not with the text.
 */
export class BpeTrainer {
  private readonly pattern: RegExp;
  private readonly specialSplitter: RegExp | undefined;
  private readonly cutter = new SafeCutter();
  private readonly wordCounts = new Map<string, number>();

  constructor(options: BpeTrainerOptions) {
    this.pattern = compileSplitPattern(options.pattern);
    const specials = options.specialTokens ?? [];
    this.specialSplitter = specials.length > 0 ? specialTokenSplitter(specials) : undefined;
  }

  push(piece: string): void {
    this.count(this.cutter.push(piece, this.pattern));
  }

  private count(text: string): void {
    const parts = this.specialSplitter ? text.split(this.specialSplitter) : [text];
    for (const part of parts) {
      forEachPiece(part, this.pattern, (word) => {
        this.wordCounts.set(word, (this.wordCounts.get(word) ?? 0) + 1);
      });
    }
  }

  /**
   * Learns up to `mergeCount` merges, most frequent pair first. Stops early when no pair
   * occurs at least `minFrequency` times. Returns the merges as [first, second] id pairs;
   * merge `i` creates id 256 + i.
   */
  train(mergeCount: number, minFrequency = 2): Array<[number, number]> {
    this.count(this.cutter.end());
    const encoder = new TextEncoder();
    const words: number[][] = [];
    const frequencies: number[] = [];
    for (const [word, frequency] of this.wordCounts) {
      words.push(Array.from(encoder.encode(word)));
      frequencies.push(frequency);
    }
    this.wordCounts.clear();

    const pairCounts = new Map<number, number>();
    // Words that held a pair at some point; entries may be stale and are re-checked.
    const pairWords = new Map<number, number[]>();
    words.forEach((symbols, wordIndex) => {
      const frequency = frequencies[wordIndex]!;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = pairKey(symbols[i]!, symbols[i + 1]!);
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + frequency);
        const holders = pairWords.get(key);
        if (holders === undefined) pairWords.set(key, [wordIndex]);
        else if (holders[holders.length - 1] !== wordIndex) holders.push(wordIndex);
      }
    });
    const heap = new PairHeap();
    for (const [key, count] of pairCounts) heap.push(count, key);

    const merges: Array<[number, number]> = [];
    const touched = new Set<number>();
    while (merges.length < mergeCount && heap.size > 0) {
      const [count, key] = heap.pop();
      const current = pairCounts.get(key) ?? 0;
      if (current !== count) {
        if (current > 0) heap.push(current, key); // stale entry: requeue at its true count
        continue;
      }
      if (count < minFrequency) break;
      const first = Math.floor(key / PAIR_KEY_BASE);
      const second = key % PAIR_KEY_BASE;
      const newId = 256 + merges.length;
      merges.push([first, second]);
      touched.clear();
      for (const wordIndex of pairWords.get(key) ?? []) {
        const symbols = words[wordIndex]!;
        if (!containsPair(symbols, first, second)) continue;
        const frequency = frequencies[wordIndex]!;
        // Re-count this word's pairs around the merge: remove old pairs, merge, add new ones.
        addPairs(symbols, -frequency, pairCounts, touched);
        const merged = mergePair(symbols, first, second, newId);
        words[wordIndex] = merged;
        addPairs(merged, frequency, pairCounts, touched);
        for (let i = 0; i + 1 < merged.length; i++) {
          if (merged[i] === newId || merged[i + 1] === newId) {
            const newKey = pairKey(merged[i]!, merged[i + 1]!);
            const holders = pairWords.get(newKey);
            if (holders === undefined) pairWords.set(newKey, [wordIndex]);
            else if (holders[holders.length - 1] !== wordIndex) holders.push(wordIndex);
          }
        }
      }
      pairWords.delete(key);
      for (const touchedKey of touched) {
        const touchedCount = pairCounts.get(touchedKey) ?? 0;
        if (touchedCount <= 0) pairCounts.delete(touchedKey);
        else if (touchedKey !== key) heap.push(touchedCount, touchedKey);
      }
      pairCounts.delete(key);
    }
    return merges;
  }
}

function containsPair(symbols: readonly number[], first: number, second: number): boolean {
  for (let i = 0; i + 1 < symbols.length; i++) {
    if (symbols[i] === first && symbols[i + 1] === second) return true;
  }
  return false;
}

function addPairs(
  symbols: readonly number[],
  delta: number,
  pairCounts: Map<number, number>,
  touched: Set<number>,
): void {
  for (let i = 0; i + 1 < symbols.length; i++) {
    const key = pairKey(symbols[i]!, symbols[i + 1]!);
    pairCounts.set(key, (pairCounts.get(key) ?? 0) + delta);
    touched.add(key);
  }
}

/** Replaces each non-overlapping (first, second), left to right, by `newId`. */
export function mergePair(
  symbols: readonly number[],
  first: number,
  second: number,
  newId: number,
): number[] {
  const merged: number[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === first && symbols[i + 1] === second) {
      merged.push(newId);
      i++;
    } else {
      merged.push(symbols[i]!);
    }
  }
  return merged;
}

/** A regex whose `split` keeps text between the special tokens (longest token first). */
export function specialTokenSplitter(specialTokens: readonly string[], capture = false): RegExp {
  const escaped = [...specialTokens]
    .sort((a, b) => b.length - a.length)
    .map((token) => token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(capture ? `(${escaped.join('|')})` : escaped.join('|'), 'u');
}

export function checkMergeCount(vocabSize: number): number {
  if (!Number.isInteger(vocabSize) || vocabSize < 256 || vocabSize > MAX_VOCAB_SIZE) {
    throw new TokenizerError(
      `bpe tokenizer: vocabSize must be an integer from 256 (the byte alphabet) to ${MAX_VOCAB_SIZE}, got ${vocabSize}`,
    );
  }
  return vocabSize - 256;
}
