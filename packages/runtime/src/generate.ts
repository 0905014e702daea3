// Text generation over a DecoderSession, for one prompt or a batch: prefill the prompts
// (left-padded to a common length, with an attention mask), then one token per row per step
// with the KV cache, each row sampling from its own seeded generator; each row stops on its
// own length or stop strings, all on an abort signal; each row streams text pieces as they
// become whole. It knows nothing of tfjs or onnxruntime.
import { MinigptError } from '@minigpt/errors';
import { Random } from '@minigpt/random';
import type { Tokenizer } from '@minigpt/tokenizer';
import { sampleToken, samplingProblem, type SamplingOptions } from './sampling.js';
import type { DecoderSession } from './session.js';

/** Settings one row of a batch may set for itself. */
export interface RowOptions extends SamplingOptions {
  /** Tokens to generate (default 256). */
  readonly maxNewTokens?: number;
  /**
   * Seed of the row's sampling generator. Default: `seed` + the row's index, so a prompt
   * given twice in one batch gives two samples, and a prompt alone (row 0) gives the text it
   * gives at that seed on every runner.
   */
  readonly seed?: number;
  /** Generation ends before the first of these strings (which is not returned). */
  readonly stop?: readonly string[];
}

export interface GenerationOptions extends RowOptions {
  /** Ends generation early (the iterators finish; stats.stopReason is 'abort'). */
  readonly signal?: AbortSignal;
  /**
   * When the cache would pass blockSize, it is rebuilt from each row's last `refill` tokens
   * (default blockSize / 2), with positions starting at 0 again. `refill: blockSize` gives
   * exactly nanoGPT's sliding window (but one full prefill per token once full). In a batch
   * the cache is shared, so it is rebuilt for every row when the longest row fills it.
   */
  readonly refill?: number;
}

export interface BatchGenerationOptions extends GenerationOptions {
  /** Per-row settings over the shared ones, by prompt index. */
  readonly rows?: readonly (RowOptions | undefined)[];
}

export interface GenerationStats {
  newTokens: number;
  /** From the call to the first sampled token (prefill included). */
  firstTokenMs: number;
  /** New tokens per second over the row's generation. */
  tokensPerSec: number;
  /** Times the cache was rebuilt because the context passed blockSize. */
  refills: number;
  /** 'error': the session failed (the error reaches the row's iterator). */
  stopReason: 'length' | 'stop' | 'abort' | 'error' | 'running';
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

export interface BatchGeneration {
  /** One generation per prompt, in order: iterate any of them, in any order. */
  readonly rows: readonly Generation[];
  /** Runs every row to its end; the texts in prompt order. */
  texts(): Promise<string[]>;
}

/** One prompt: row 0 of a batch of one. */
export function generate<State>(
  session: DecoderSession<State>,
  tokenizer: Tokenizer,
  prompt: string,
  options: GenerationOptions = {},
): Generation {
  return generateBatch(session, tokenizer, [prompt], options).rows[0]!;
}

interface Row {
  readonly maxNewTokens: number;
  readonly stops: readonly string[];
  readonly sampling: SamplingOptions;
  readonly random: Random;
  readonly stats: GenerationStats;
  /** Every real token the cache holds for this row, in order, then the ones not yet fed. */
  context: number[];
  /** Tokens of `context` not yet fed. */
  pending: number;
  /** Real tokens fed since the cache was last (re)built: the next token's position. */
  position: number;
  /** Per cache slot: 1 for a real token of this row, 0 for a pad. */
  slots: number[];
  done: boolean;
  /** Text pieces ready for the row's iterator. */
  readonly queue: string[];
  emitted: number;
  decodedText: string;
  decodedTokens: number;
}

export function generateBatch<State>(
  session: DecoderSession<State>,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  options: BatchGenerationOptions = {},
): BatchGeneration {
  if (prompts.length === 0) throw new GenerationError('no prompts: give at least one');
  if (tokenizer.vocabSize !== session.vocabSize) {
    throw new GenerationError(
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${session.vocabSize}: they do not belong together`,
    );
  }
  const { blockSize } = session;
  const refill = options.refill ?? Math.max(1, Math.floor(blockSize / 2));
  if (!Number.isInteger(refill) || refill < 1 || refill > blockSize) {
    throw new GenerationError(
      `refill must be an integer from 1 to blockSize (${blockSize}), got ${refill}`,
    );
  }
  const which = (index: number) => (prompts.length === 1 ? '' : `prompt ${index + 1}: `);
  const rows: Row[] = prompts.map((prompt, index) => {
    const settings = { ...options, ...options.rows?.[index] };
    const maxNewTokens = settings.maxNewTokens ?? 256;
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
      throw new GenerationError(
        `${which(index)}maxNewTokens must be a positive integer, got ${maxNewTokens}`,
      );
    }
    const sampling = {
      temperature: settings.temperature,
      topK: settings.topK,
      topP: settings.topP,
    };
    const problem = samplingProblem(sampling);
    if (problem !== undefined) throw new GenerationError(`${which(index)}${problem}`);
    let ids: number[];
    try {
      ids = tokenizer.encode(prompt); // unknown characters throw here, with position
    } catch (error) {
      if (prompts.length === 1) throw error;
      throw new GenerationError(`${which(index)}${(error as Error).message}`, { cause: error });
    }
    if (ids.length === 0)
      throw new GenerationError(`${which(index)}the prompt is empty: give at least one character`);
    const context = ids.slice(-blockSize);
    return {
      maxNewTokens,
      stops: (settings.stop ?? []).filter((stop) => stop.length > 0),
      sampling,
      random: new Random(options.rows?.[index]?.seed ?? (options.seed ?? 1337) + index),
      stats: {
        newTokens: 0,
        firstTokenMs: 0,
        tokensPerSec: 0,
        refills: 0,
        stopReason: 'running',
        tokens: [],
      },
      context,
      pending: context.length,
      position: 0,
      slots: [],
      done: false,
      queue: [],
      emitted: 0,
      decodedText: '',
      decodedTokens: 0,
    };
  });
  const batch = rows.length;
  const { vocabSize } = session;
  let state: State | null = null;
  let started = 0;
  let inFlight: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;

  const finish = (row: Row, reason: GenerationStats['stopReason']) => {
    if (row.done) return;
    row.done = true;
    row.stats.stopReason = reason;
    const seconds = (performance.now() - started) / 1000;
    row.stats.tokensPerSec = seconds > 0 ? row.stats.newTokens / seconds : 0;
    if (rows.every((other) => other.done) && state !== null) {
      session.release(state);
      state = null;
    }
  };

  /** One step of the whole batch: feed every row's pending tokens, sample one per row. */
  async function step(): Promise<void> {
    if (started === 0) started = performance.now();
    if (options.signal?.aborted) {
      for (const row of rows) finish(row, 'abort');
      return;
    }
    const cached = rows[0]!.slots.length;
    const added = Math.max(...rows.map((row) => (row.done ? 0 : row.pending)));
    if (cached + added > blockSize) {
      // Rebuild the cache from each row's most recent tokens; positions restart at 0.
      if (state !== null) session.release(state);
      state = null;
      for (const row of rows) {
        row.context.splice(0, row.context.length - refill);
        row.pending = row.done ? 0 : row.context.length;
        row.position = 0;
        row.slots = [];
        if (!row.done) row.stats.refills++;
      }
      return step();
    }
    const width = Math.max(1, added); // T: rows with fewer new tokens are left-padded
    const ids = new Array<number>(batch * width).fill(0);
    const positions = new Array<number>(batch * width).fill(0);
    rows.forEach((row, index) => {
      const count = row.done ? 0 : row.pending;
      const fresh = row.context.slice(row.context.length - count);
      for (let t = 0; t < width; t++) {
        const real = t >= width - count;
        row.slots.push(real ? 1 : 0);
        if (!real) continue;
        ids[index * width + t] = fresh[t - (width - count)]!;
        positions[index * width + t] = row.position++;
      }
      row.pending = 0;
    });
    // (B, P+T): a typed array filled row by row (flatMap was a twentieth of a batch-16 step).
    const total = cached + width;
    const mask = new Uint8Array(batch * total);
    rows.forEach((row, index) => mask.set(row.slots, index * total));
    const result: { logits: Float32Array; state: State } = await session.forward(
      { batch, ids, mask, positions },
      state,
    );
    if (state !== null && result.state !== state) session.release(state);
    state = result.state;
    rows.forEach((row, index) => {
      if (row.done) return;
      const logits = result.logits.subarray(index * vocabSize, (index + 1) * vocabSize);
      const id = sampleToken(logits, row.random, row.sampling);
      if (row.stats.newTokens === 0) row.stats.firstTokenMs = performance.now() - started;
      row.stats.tokens.push(id);
      row.stats.newTokens++;
      row.context.push(id);
      row.pending = 1;
      emit(row);
    });
    // Every row was abandoned while this step ran: finish() freed the state before it, so
    // the one this step made is freed here.
    if (rows.every((row) => row.done) && state !== null) {
      session.release(state);
      state = null;
    }
  }

  /** Queues the row's new text that is whole and cannot still become a stop string. */
  function emit(row: Row): void {
    const { stats, stops } = row;
    // Decode only the tokens since the last whole character: O(1) per step, not O(n).
    const tail = tokenizer.decode(stats.tokens.slice(row.decodedTokens));
    const text = row.decodedText + tail;
    if (!tail.endsWith('\uFFFD')) {
      row.decodedText = text;
      row.decodedTokens = stats.tokens.length;
    }
    const stopAt = firstStop(text, stops, row.emitted);
    if (stopAt >= 0) {
      if (stopAt > row.emitted) row.queue.push(text.slice(row.emitted, stopAt));
      finish(row, 'stop');
      return;
    }
    if (stats.newTokens >= row.maxNewTokens) {
      if (text.length > row.emitted) row.queue.push(text.slice(row.emitted));
      finish(row, 'length');
      return;
    }
    // Hold back a partial character (BPE) and what could still become a stop string.
    const safe = text.endsWith('\uFFFD')
      ? text.length - 1
      : text.length - stopPrefixOverlap(text, stops);
    if (safe > row.emitted) {
      row.queue.push(text.slice(row.emitted, safe));
      row.emitted = safe;
    }
  }

  /** Runs one step, or waits for the one already running (rows iterate concurrently). */
  function advance(): Promise<void> {
    if (failure) return Promise.reject(failure.error);
    inFlight ??= step()
      .catch((error: unknown) => {
        failure = { error };
        for (const row of rows) finish(row, 'error'); // the last one frees the cache
        throw error;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  }

  const generations = rows.map((row): Generation => {
    async function* run(): AsyncGenerator<string> {
      try {
        for (;;) {
          if (row.queue.length > 0) {
            yield row.queue.shift()!;
            continue;
          }
          if (row.done) {
            if (row.stats.stopReason === 'error') throw failure!.error;
            return;
          }
          await advance();
        }
      } finally {
        // A consumer that stops iterating early ends its row (and frees the cache when it
        // was the last one running).
        finish(row, 'abort');
      }
    }
    const iterable = run();
    return {
      stats: row.stats,
      [Symbol.asyncIterator]: () => iterable,
      async text() {
        let out = '';
        for await (const piece of iterable) out += piece;
        return out;
      },
    };
  });
  return {
    rows: generations,
    texts: () => Promise.all(generations.map((generation) => generation.text())),
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
