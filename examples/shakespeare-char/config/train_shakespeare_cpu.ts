// A CPU-sized run that finishes in a few minutes on 2 cores (wasm backend): nanoGPT's
// "baby GPT" (4 layers, 4 heads, 128 wide, context 64, batch 12) for 600 iterations.
// For the full 2000-iteration run, add --maxIters=2000 --lrDecayIters=2000.
import type { TrainConfig } from '@minigpt/trainer';

export default {
  preset: 'baby',
  nLayer: 4,
  nHead: 4,
  nEmbd: 128,
  blockSize: 64,
  dropout: 0,
  batchSize: 12,
  maxIters: 600,
  learningRate: 1e-3,
  minLr: 1e-4,
  warmupIters: 50,
  evalInterval: 200,
  evalIters: 20,
  logInterval: 50,
  checkpointInterval: 200,
} satisfies Partial<TrainConfig>;
