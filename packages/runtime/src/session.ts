// The one thing generation needs from a runner: run the decoder over a batch of new token
// ids after a cached past, and free a past it no longer needs. createOnnxDecoder implements
// it over any onnxruntime (node, web) for a minigpt export; the cache state is opaque here.

/** One decoder step for B rows of T new tokens each, after a cache of P slots. */
export interface DecoderInput {
  /** Rows in the batch (B). */
  readonly batch: number;
  /** (B, T) row-major: the new ids; a pad may be any id in the vocabulary (its mask is 0). */
  readonly ids: ArrayLike<number>;
  /** (B, P+T) row-major: 1 where a cache slot (old or new) holds a real token, 0 for a pad. */
  readonly mask: ArrayLike<number>;
  /** (B, T) row-major: each new token's position in its row; any value < blockSize for pads. */
  readonly positions: ArrayLike<number>;
}

export interface DecoderSession<State = unknown> {
  /** Longest context the model takes (its position table size). */
  readonly blockSize: number;
  readonly vocabSize: number;
  /**
   * Feeds `input` after `state` (null: an empty cache) and returns the logits (B, V) of each
   * row's last new position, with the state that now includes the new slots.
   */
  forward(
    input: DecoderInput,
    state: State | null,
  ): Promise<{ logits: Float32Array; state: State }>;
  /** Frees a state (its cache tensors); it is not used again. */
  release(state: State): void;
}
