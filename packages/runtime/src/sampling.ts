// Picks the next token from a row of logits: greedy, temperature, top-k and top-p, with a
// seeded generator. Plain arrays in, an id out; it knows nothing of tensors. The tfjs model
// and every runner use this one function, so the same seed gives the same text everywhere.
import type { Random } from '@minigpt/random';

export interface SamplingOptions {
  /** 0 = greedy (argmax); default 1. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens (default: all). */
  readonly topK?: number;
  /** Keep the smallest set of tokens whose probability sums to ≥ p (default 1: all). */
  readonly topP?: number;
}

export function sampleToken(
  logits: ArrayLike<number>,
  random: Random,
  options: SamplingOptions = {},
): number {
  const temperature = options.temperature ?? 1;
  const topK = options.topK ?? logits.length;
  const topP = options.topP ?? 1;
  const problem = samplingProblem(options);
  if (problem !== undefined) throw new RangeError(problem);
  if (temperature === 0) return argmax(logits);
  if (topK >= logits.length && topP >= 1) return sampleAll(logits, random, temperature);

  // Candidates sorted by logit, best first; ties keep the lower id first (deterministic).
  const order = Array.from({ length: logits.length }, (_, id) => id).sort(
    (a, b) => logits[b]! - logits[a]! || a - b,
  );
  const kept = order.slice(0, Math.min(topK, order.length));
  const max = logits[kept[0]!]!;
  let probabilities = kept.map((id) => Math.exp((logits[id]! - max) / temperature));
  let total = probabilities.reduce((a, b) => a + b, 0);
  if (topP < 1) {
    let cumulative = 0;
    let cut = probabilities.length;
    for (let i = 0; i < probabilities.length; i++) {
      cumulative += probabilities[i]! / total;
      if (cumulative >= topP) {
        cut = i + 1;
        break;
      }
    }
    probabilities = probabilities.slice(0, cut);
    total = probabilities.reduce((a, b) => a + b, 0);
  }
  let threshold = random.nextFloat() * total;
  for (let i = 0; i < probabilities.length; i++) {
    threshold -= probabilities[i]!;
    if (threshold < 0) return kept[i]!;
  }
  return kept[probabilities.length - 1]!;
}

/** What is wrong with sampling settings, or undefined when they are fine. */
export function samplingProblem(options: SamplingOptions): string | undefined {
  const { temperature = 1, topK = 1, topP = 1 } = options;
  if (!(temperature >= 0)) return `temperature must be ≥ 0, got ${temperature}`;
  if (!Number.isInteger(topK) || topK < 1) return `topK must be a positive integer, got ${topK}`;
  if (!(topP > 0 && topP <= 1)) return `topP must be in (0, 1], got ${topP}`;
  return undefined;
}

/** Plain softmax sampling over every id, in id order: no sort (the common case, per token). */
function sampleAll(logits: ArrayLike<number>, random: Random, temperature: number): number {
  const max = logits[argmax(logits)]!;
  let total = 0;
  for (let id = 0; id < logits.length; id++) total += Math.exp((logits[id]! - max) / temperature);
  let threshold = random.nextFloat() * total;
  for (let id = 0; id < logits.length; id++) {
    threshold -= Math.exp((logits[id]! - max) / temperature);
    if (threshold < 0) return id;
  }
  return logits.length - 1;
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
