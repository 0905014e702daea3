// Text generation over a DecoderSession: prefill the prompt, then one token per step with
// the KV cache, sampling with a seeded generator; stop on length, stop strings or an abort
// signal; stream text pieces as they become whole. It knows nothing of tfjs or onnxruntime.
import { MinigptError } from '@minigpt/errors';
import { Random } from '@minigpt/random';
import type { Tokenizer } from '@minigpt/tokenizer';
import { sampleToken, type SamplingOptions } from './sampling.js';
import type { DecoderSession } from './session.js';

export interface GenerationOptions extends SamplingOptions {
  /** Tokens to generate (default 256). */
  readonly maxNewTokens?: number;
  /** Seed of the sampling generator (default 1337): same seed, same text, on every runner. */
  readonly seed?: number;
  /** Generation ends before the first of these strings (which is not returned). */
  readonly stop?: readonly string[];
  /** Ends generation early (the iterator finishes; stats.stopReason is 'abort'). */
  readonly signal?: AbortSignal;
  /**
   * When the context would pass blockSize, the cache is rebuilt from the last `refill`
   * tokens (default blockSize / 2), with positions starting at 0 again. `refill: blockSize`
   * gives exactly nanoGPT's sliding window (but one full prefill per token once full).
   */
  readonly refill?: number;
}

export interface GenerationStats {
  newTokens: number;
  /** From the call to the first sampled token (prefill included). */
  firstTokenMs: number;
  /** New tokens per second over the whole generation. */
  tokensPerSec: number;
  /** Times the cache was rebuilt because the context passed blockSize. */
  refills: number;
  stopReason: 'length' | 'stop' | 'abort' | 'running';
  /** The generated token ids (not the prompt's). */
  readonly tokens: number[];
}

/** Thrown for settings or prompts generation cannot run with. */
export class GenerationError extends MinigptError {
  override name = 'GenerationError';
}

export interface Generation extends AsyncIterable<string> {
  readonly stats: GenerationStats;
  /** Runs to the end and returns the whole generated text. */
  text(): Promise<string>;
}

export function generate<State>(
  session: DecoderSession<State>,
  tokenizer: Tokenizer,
  prompt: string,
  options: GenerationOptions = {},
): Generation {
  const maxNewTokens = options.maxNewTokens ?? 256;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new GenerationError(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  }
  if (tokenizer.vocabSize !== session.vocabSize) {
    throw new GenerationError(
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${session.vocabSize}: they do not belong together`,
    );
  }
  const refill = options.refill ?? Math.max(1, Math.floor(session.blockSize / 2));
  if (!Number.isInteger(refill) || refill < 1 || refill > session.blockSize) {
    throw new GenerationError(
      `refill must be an integer from 1 to blockSize (${session.blockSize}), got ${refill}`,
    );
  }
  const promptIds = tokenizer.encode(prompt); // unknown characters throw here, with position
  if (promptIds.length === 0)
    throw new GenerationError('the prompt is empty: give at least one character');
  const stats: GenerationStats = {
    newTokens: 0,
    firstTokenMs: 0,
    tokensPerSec: 0,
    refills: 0,
    stopReason: 'running',
    tokens: [],
  };
  const stops = (options.stop ?? []).filter((s) => s.length > 0);

  async function* run(): AsyncGenerator<string> {
    const started = performance.now();
    const random = new Random(options.seed ?? 1337);
    const context = promptIds.slice(-session.blockSize); // all tokens the cache holds, in order
    let state: State | null = null;
    let pending = context.slice(); // tokens not yet fed
    let emitted = 0; // characters of the generated text already yielded
    let decodedText = ''; // text of stats.tokens[0, decodedTokens), which ends on a whole character
    let decodedTokens = 0;
    try {
      for (let step = 0; step < maxNewTokens; step++) {
        if (options.signal?.aborted) {
          stats.stopReason = 'abort';
          return;
        }
        const cached = context.length - pending.length;
        if (cached + pending.length > session.blockSize) {
          // Rebuild the cache from the most recent tokens; positions restart at 0.
          if (state !== null) session.release(state);
          state = null;
          context.splice(0, context.length - refill);
          pending = context.slice();
          stats.refills++;
        }
        const result: { logits: Float32Array; state: State } = await session.forward(
          pending,
          state,
        );
        if (state !== null && result.state !== state) session.release(state);
        state = result.state;
        const id = sampleToken(result.logits, random, options);
        if (step === 0) stats.firstTokenMs = performance.now() - started;
        stats.tokens.push(id);
        stats.newTokens++;
        context.push(id);
        pending = [id];

        // Decode only the tokens since the last whole character: O(1) per step, not O(n).
        const tail = tokenizer.decode(stats.tokens.slice(decodedTokens));
        const text = decodedText + tail;
        if (!tail.endsWith('\uFFFD')) {
          decodedText = text;
          decodedTokens = stats.tokens.length;
        }
        const stopAt = firstStop(text, stops, emitted);
        if (stopAt >= 0) {
          if (stopAt > emitted) yield text.slice(emitted, stopAt);
          stats.stopReason = 'stop';
          return;
        }
        // Hold back a partial character (BPE) and what could still become a stop string.
        const safe = text.endsWith('\uFFFD')
          ? text.length - 1
          : text.length - stopPrefixOverlap(text, stops);
        if (safe > emitted) {
          yield text.slice(emitted, safe);
          emitted = safe;
        }
      }
      const text = decodedText + tokenizer.decode(stats.tokens.slice(decodedTokens));
      if (text.length > emitted) yield text.slice(emitted);
      stats.stopReason = 'length';
    } finally {
      if (state !== null) session.release(state);
      const seconds = (performance.now() - started) / 1000;
      stats.tokensPerSec = seconds > 0 ? stats.newTokens / seconds : 0;
    }
  }

  const iterable = run();
  return {
    stats,
    [Symbol.asyncIterator]: () => iterable,
    async text() {
      let out = '';
      for await (const piece of iterable) out += piece;
      return out;
    },
  };
}

/** Index of the earliest stop string that ends after `from` (−1 if none). */
function firstStop(text: string, stops: readonly string[], from: number): number {
  let best = -1;
  for (const stop of stops) {
    const index = text.indexOf(stop, Math.max(0, from - stop.length + 1));
    if (index >= 0 && (best < 0 || index < best)) best = index;
  }
  return best;
}

/** Length of the longest end of `text` that is a proper prefix of some stop string. */
function stopPrefixOverlap(text: string, stops: readonly string[]): number {
  let longest = 0;
  for (const stop of stops) {
    for (let length = Math.min(stop.length - 1, text.length); length > longest; length--) {
      if (text.endsWith(stop.slice(0, length))) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}
