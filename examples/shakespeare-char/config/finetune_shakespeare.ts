// Fine-tune a pretrained GPT-2 on tinyshakespeare, after nanoGPT's finetune_shakespeare: a
// small constant learning rate for a few iterations, so the model takes on the style
// without forgetting English. The model's shape comes from the weights (--init-from); the
// data must be tokenized with GPT-2's tokenizer:
//   minigpt prepare --input shakespeare.txt --tokenizer models/gpt2     → data/shakespeare-gpt2
//   minigpt train --config examples/shakespeare-char/config/finetune_shakespeare.ts \
//     --init-from models/gpt2 --data data/shakespeare-gpt2 --out out/shakespeare-gpt2
// models/gpt2 holds the three files of the Hugging Face `gpt2` repository (config.json,
// model.safetensors, tokenizer.json); see the @minigpt/model README, "Start from GPT-2".
import type { TrainConfig } from '@minigpt/trainer';

export default {
  // GPT-2 saw 1,024 positions; 256 keeps an iteration affordable on a CPU (the position
  // table is cropped to its first 256 rows, as nanoGPT's crop_block_size does).
  blockSize: 256,
  dropout: 0,
  // 8 sequences of 256 tokens per optimizer step: 4 per pass, 2 passes summed.
  batchSize: 4,
  gradientAccumulationSteps: 2,
  maxIters: 20,
  learningRate: 3e-5,
  minLr: 3e-5,
  decayLr: false,
  warmupIters: 0,
  evalInterval: 5,
  evalIters: 10,
  logInterval: 1,
  checkpointInterval: 10,
} satisfies Partial<TrainConfig>;
