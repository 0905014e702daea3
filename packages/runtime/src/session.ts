// The one thing generation needs from a runner: run the decoder over new token ids after a
// cached past, and free a past it no longer needs. Runners (onnxruntime-node, -web) implement
// it; the cache state is theirs and opaque here.

export interface DecoderSession<State = unknown> {
  /** Longest context the model takes (its position table size). */
  readonly blockSize: number;
  readonly vocabSize: number;
  /**
   * Feeds `ids` (positions `cacheLength(state)` … onward) after `state` (null: empty cache).
   * Returns the logits (V) of the last position and the state that now includes `ids`.
   */
  forward(
    ids: readonly number[],
    state: State | null,
  ): Promise<{ logits: Float32Array; state: State }>;
  /** Frees a state (its cache tensors); it is not used again. */
  release(state: State): void;
}
