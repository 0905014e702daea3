// The facts scripts/build-model.mjs writes to public/model/about.json beside the export:
// what the page shows about its model, and what the e2e test checks against it.

/** public/model/about.json, written by scripts/build-model.mjs beside the export. */
export interface About {
  /** The training recipe's hash: the run is .model-work/run-<recipe>/ (build-model.mjs). */
  recipe: string;
  prompt: string;
  model: {
    preset: string;
    parameters: number;
    nLayer: number;
    nHead: number;
    nEmbd: number;
    blockSize: number;
    vocabSize: number;
    tokenizer: string;
  };
  corpus: {
    name: string;
    bytes: number;
    trainTokens: number;
    valTokens: number;
    fallback?: string;
  };
  training: {
    iterations: number;
    batchSize: number;
    tokens: number;
    seconds: number;
    backend: string;
    nativeKernels: { threads: number } | { reason: string } | null;
    machine: string;
    finishedAt: string;
  };
  evaluation: { iteration: number; batches: number; trainLoss: number; valLoss: number };
}
