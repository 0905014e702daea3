// The seed's "Mini GPT" on tinyshakespeare, character level: 6 layers, 8 heads, 256 wide,
// context 128, dropout 0.1; batch 64, 5000 iterations at learning rate 3e-4.
// 4.77 M parameters (4.74 M without position embeddings). Sized for a GPU.
import type { TrainConfig } from '@minigpt/trainer';

export default {
  preset: 'seed',
  nLayer: 6,
  nHead: 8,
  nEmbd: 256,
  blockSize: 128,
  dropout: 0.1,
  batchSize: 64,
  maxIters: 5000,
  learningRate: 3e-4,
  minLr: 3e-5,
  warmupIters: 100,
  evalInterval: 500,
  evalIters: 200,
  logInterval: 500,
  checkpointInterval: 1000,
} satisfies Partial<TrainConfig>;
