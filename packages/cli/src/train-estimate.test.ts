import {
  estimateRunTime,
  resolveTrainConfig,
  type RunTimingInput,
  type TrainerEvent,
} from '@minigpt/trainer';
import { describe, expect, it } from 'vitest';
import { CPU_CONFIG, estimateReport, type EstimateContext } from './commands/train.js';

type EstimateEvent = Extract<TrainerEvent, { type: 'estimate' }>;

/** An estimate event as the trainer makes it, from its timings. */
function estimate(
  timing: RunTimingInput,
  evalIters: { requested: number; used: number; affordable: number },
): EstimateEvent {
  return {
    type: 'estimate',
    timedSteps: 3,
    msPerStep: timing.msPerStep,
    msPerEvalBatch: timing.msPerEvalBatch,
    evalIters,
    run: estimateRunTime({ ...timing, evalIters: evalIters.used }),
  };
}

const seedTiming: RunTimingInput = {
  startIteration: 0,
  maxIters: 5000,
  evalInterval: 500,
  evalIters: 200,
  evaluatesAtStart: true,
  msPerStep: 16_300,
  msPerEvalBatch: 5_100,
};
const seedContext: EstimateContext = {
  backend: 'wasm',
  config: resolveTrainConfig({ preset: 'seed' }),
  evalItersGiven: false,
  cpuConfigHere: true,
};

describe('estimateReport', () => {
  it('warns about a long run with the projected total and flags that shorten it', () => {
    const lines = estimateReport(
      estimate(seedTiming, { requested: 200, used: 200, affordable: 200 }),
      seedContext,
    );
    expect(lines).toEqual([
      "time estimate: 28h52m on wasm: 5000 steps × 16.3 s + 11 evaluations × 2 × 200 batches × 5.1 s (timed on this run's first 3 steps)",
      'warning: this run will take about 28h52m on wasm, over 30m00s. To finish sooner, try:',
      `  - the CPU-sized example config: --config ${CPU_CONFIG}`,
      '  - a smaller model: --preset baby (4 layers × 128, CPU-sized) or --preset nano (2 layers × 32, for smoke runs)',
      '  - fewer steps: --max-iters=86 fits in 30m00s at this speed',
      '  - an NVIDIA GPU: --backend tensorflow-gpu (On a Linux machine with an NVIDIA GPU, CUDA and cuDNN: npm i @tensorflow/tfjs-node-gpu)',
      '  - any other GPU: --backend webgpu (npm i webgpu @tensorflow/tfjs-backend-webgpu, on a machine with a Vulkan, Metal or D3D12 GPU driver)',
      '  Ctrl-C stops it now; a run stopped later continues from its last checkpoint with --resume.',
    ]);
  });

  it('suggests only what applies: no GPU backends on a GPU, no example config outside the clone', () => {
    const lines = estimateReport(
      estimate(seedTiming, { requested: 200, used: 200, affordable: 200 }),
      { ...seedContext, backend: 'webgpu', cpuConfigHere: false },
    ).join('\n');
    expect(lines).toMatch(/^warning: this run will take about 28h52m on webgpu/m);
    expect(lines).not.toMatch(/--backend|--config/);
    expect(lines).toMatch(/--preset baby/);
  });

  it('prints the estimate alone for a run under the threshold', () => {
    const short = { ...seedTiming, maxIters: 20 };
    const lines = estimateReport(estimate(short, { requested: 200, used: 200, affordable: 200 }), {
      ...seedContext,
      longRunSeconds: 7200,
    });
    expect(lines).toEqual([
      "time estimate: 1h13m on wasm: 20 steps × 16.3 s + 2 evaluations × 2 × 200 batches × 5.1 s (timed on this run's first 3 steps)",
    ]);
  });

  it('says when --eval-iters was lowered, from what to what and why', () => {
    const tiny = { ...seedTiming, maxIters: 3 };
    const [note] = estimateReport(estimate(tiny, { requested: 200, used: 10, affordable: 10 }), {
      ...seedContext,
      longRunSeconds: 1e9,
    });
    expect(note).toBe(
      'note: --eval-iters lowered from 200 to 10 for this run: 2 evaluations of 2 × 200 batches would take 1h08m, longer than its 3 steps (49s). Give --eval-iters=200 to keep it.',
    );
  });

  it('says why --eval-iters was not lowered when it was given on the command line', () => {
    const tiny = { ...seedTiming, maxIters: 3 };
    const [note] = estimateReport(estimate(tiny, { requested: 200, used: 200, affordable: 10 }), {
      ...seedContext,
      evalItersGiven: true,
      longRunSeconds: 1e9,
    });
    expect(note).toBe(
      'note: evaluation takes 1h08m of this run, longer than its 3 steps (49s); --eval-iters=200 is kept because it was given on the command line (lowered, it would be 10).',
    );
  });
});
