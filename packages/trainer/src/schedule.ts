// Learning rate at an iteration: linear warmup, cosine decay to minLr, then constant
// (nanoGPT's get_lr). Pure arithmetic.
import type { TrainConfig } from './config.js';

export function learningRateAt(iteration: number, config: TrainConfig): number {
  const { learningRate, minLr, warmupIters, decayLr } = config;
  if (!decayLr) return learningRate;
  const decayIters = config.lrDecayIters > 0 ? config.lrDecayIters : config.maxIters;
  if (iteration < warmupIters) return (learningRate * (iteration + 1)) / (warmupIters + 1);
  if (iteration > decayIters) return minLr;
  const ratio = (iteration - warmupIters) / Math.max(1, decayIters - warmupIters);
  const coefficient = 0.5 * (1 + Math.cos(Math.PI * ratio)); // 1 → 0
  return minLr + coefficient * (learningRate - minLr);
}
