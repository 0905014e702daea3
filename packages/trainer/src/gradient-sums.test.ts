// A batch run as several passes sums its gradients either in tensors or in JavaScript
// memory (TrainerOptions.gradientSums: what GPT-2 on wasm's 4 GB heap needs). The two must
// train the same model, bit for bit.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TrainerEvent } from './index.js';
import { startTraining } from './node/index.js';
import { prepareData, useTempDir } from './test-helpers.js';

const tempDir = useTempDir();

describe('gradient sums of a batch in passes', () => {
  it("'memory' trains as 'tensors' does: the same losses, norms and weights, bit for bit", async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir, 120);
    const runs = [];
    for (const gradientSums of ['tensors', 'memory'] as const) {
      const trainer = await startTraining({
        dataDir,
        outDir: join(dir, gradientSums),
        backend: 'cpu',
        estimate: false,
        gradientSums,
        config: {
          preset: 'nano',
          maxIters: 4,
          gradientAccumulationSteps: 3, // three passes a step
          evalInterval: 4,
          evalIters: 1,
          checkpointInterval: 4,
        },
      });
      const steps: Array<Extract<TrainerEvent, { type: 'step' }>> = [];
      await trainer.train((event) => {
        if (event.type === 'step') steps.push(event);
      });
      const weights = await trainer.model.weightData();
      trainer.dispose();
      runs.push({ steps, weights });
    }
    const [tensors, memory] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(memory.steps.map((step) => [step.loss, step.gradNorm])).toEqual(
      tensors.steps.map((step) => [step.loss, step.gradNorm]),
    );
    // The weights moved (the steps did something) and are the same bits in both runs.
    expect(tensors.steps.at(-1)!.loss).not.toBe(tensors.steps[0]!.loss);
    for (const [name, { data }] of tensors.weights) {
      const other = memory.weights.get(name)!.data as Float32Array;
      const mine = data as Float32Array;
      expect(
        Buffer.from(other.buffer, other.byteOffset, other.byteLength).equals(
          Buffer.from(mine.buffer, mine.byteOffset, mine.byteLength),
        ),
        name,
      ).toBe(true);
    }
  });
});
