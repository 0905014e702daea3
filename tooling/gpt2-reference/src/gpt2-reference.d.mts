// Types of gpt2-reference.mjs (a plain module so that the benchmark can run it on Node).
export declare const GPT2_RANKS: {
  pat_str: string;
  special_tokens: Record<string, number>;
  bpe_ranks: string;
};
/** GPT-2's byte → printable character table. */
export declare function byteToUnicode(): string[];
export interface Gpt2Files {
  /** tokenizer.json as the hub has it (merges as "a b" strings). */
  readonly tokenizerJson: {
    model: { vocab: Record<string, number>; merges: string[]; [key: string]: unknown };
    [key: string]: unknown;
  };
  /** vocab.json (= encoder.json). */
  readonly vocabJson: Record<string, number>;
  /** merges.txt (= vocab.bpe). */
  readonly mergesTxt: string;
}
export declare function gpt2Files(): Gpt2Files;
/** Deterministic varied text of at least `bytes` UTF-8 bytes. */
export declare function variedText(bytes?: number, seed?: number): string;
