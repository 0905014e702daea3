// The training loop: sample batches, forward + backward, AdamW with warmup + cosine LR and
// clipping, periodic evaluation, atomic checkpoints, resume. Nothing GPT-specific happens
// here beyond calling the model's loss; progress is reported as events.
import { MinigptError } from '@minigpt/errors';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { TokenDataset, readMeta, type DataMeta } from '@minigpt/data';
import {
  GPT,
  countParameters,
  decodeSafetensors,
  encodeSafetensors,
  type GPTConfig,
} from '@minigpt/model';
import { Random } from '@minigpt/random';
import { AdamW, decaysWeight } from './adamw.js';
import { installNativeKernels, uninstallNativeKernels } from '@minigpt/native-kernels';
import { selectBackend, type BackendCandidate, type BackendName } from './backend.js';
import {
  CHECKPOINT_FILES,
  CHECKPOINT_FORMAT_VERSION,
  checkpointName,
  pruneCheckpoints,
  readPointer,
  setPointer,
  writeCheckpoint,
  type CheckpointState,
} from './checkpoint.js';
import { modelConfigOf, resolveTrainConfig, type TrainConfig } from './config.js';
import {
  appendMetrics,
  lossCurveSvg,
  readMetrics,
  truncateMetrics,
  writeAtomic,
} from './metrics.js';
import { learningRateAt } from './schedule.js';

export interface TrainerOptions {
  /** A directory prepared by `minigpt prepare` / `binarize`. */
  readonly dataDir: string;
  /** Where checkpoints/, metrics.jsonl and loss.svg go. */
  readonly outDir: string;
  /** Overrides of the defaults / preset (see TrainConfig). */
  readonly config?: Record<string, unknown>;
  readonly backend?: BackendName | 'auto';
  /** Continue from `outDir/checkpoints/latest`. */
  readonly resume?: boolean;
  /** For tests: the backend candidates to try. */
  readonly backendCandidates?: readonly BackendCandidate[];
  /**
   * On the wasm backend, run matMuls in @minigpt/native-kernels' addon when it is built
   * (default true; same math, all cores). false keeps tfjs's own wasm kernels.
   */
  readonly nativeKernels?: boolean;
}

/** What the native kernels are doing in this run (wasm backend only). */
export interface NativeKernelsStatus {
  readonly installed: boolean;
  /** Why not, when requested but not installed. */
  readonly reason?: string;
  readonly kernels: readonly string[];
  readonly threads?: number;
  readonly vectorLanes?: number;
}

export type TrainerEvent =
  | {
      readonly type: 'start';
      readonly backend: BackendName;
      readonly skippedBackends: ReadonlyArray<{ name: BackendName; reason: string }>;
      /** Set on the wasm backend. */
      readonly nativeKernels?: NativeKernelsStatus;
      readonly config: TrainConfig;
      readonly model: GPTConfig;
      readonly parameters: number;
      /** Rows per forward/backward pass (< batchSize when split to fit wasm memory). */
      readonly microBatchRows: number;
      readonly startIteration: number;
      readonly resumedFrom?: string;
    }
  | {
      readonly type: 'step';
      readonly iter: number;
      readonly loss: number;
      readonly lr: number;
      readonly gradNorm: number;
      readonly msPerIter: number;
      readonly tokensPerSec: number;
    }
  | {
      readonly type: 'eval';
      readonly iter: number;
      readonly trainLoss: number;
      readonly valLoss: number;
      readonly best: boolean;
    }
  | {
      readonly type: 'checkpoint';
      readonly iter: number;
      readonly dir: string;
      readonly reason: 'interval' | 'best' | 'final';
    }
  | {
      readonly type: 'done';
      readonly iter: number;
      readonly bestValLoss: number | null;
      readonly seconds: number;
    };

/** A problem that stops training: bad data or config, a mismatched resume, NaN loss. */
export class TrainingError extends MinigptError {
  override name = 'TrainingError';
}

export class Trainer {
  /** Iteration of the newest checkpoint this run wrote (to not write the same one twice). */
  private lastSaved = -1;
  /** Rows per forward/backward pass: the batch is split when it would not fit wasm memory. */
  readonly microBatchRows: number;

  private constructor(
    readonly config: TrainConfig,
    readonly modelConfig: GPTConfig,
    readonly model: GPT,
    private readonly optimizer: AdamW,
    private readonly trainSplit: TokenDataset,
    private readonly valSplit: TokenDataset,
    private readonly dataMeta: DataMeta,
    private readonly tokenizerJson: string,
    private readonly outDir: string,
    private readonly backend: {
      name: BackendName;
      skipped: ReadonlyArray<{ name: BackendName; reason: string }>;
      native?: NativeKernelsStatus;
    },
    private random: Random,
    private iteration: number,
    private bestValLoss: number | null,
    private readonly resumedFrom: string | undefined,
  ) {
    this.microBatchRows =
      backend.name === 'wasm' ? rowsThatFit(config, WASM_ACTIVATION_BUDGET) : config.batchSize;
  }

  get checkpointsDir(): string {
    return join(this.outDir, 'checkpoints');
  }

  /** Loads the data, picks a backend, builds (or resumes) the model and optimizer. */
  static async create(options: TrainerOptions): Promise<Trainer> {
    const config = resolveTrainConfig(options.config ?? {});
    const dataDir = resolve(options.dataDir);
    const outDir = resolve(options.outDir);
    const dataMeta = await readMeta(dataDir);
    const tokenizerJson = await readFile(join(dataDir, 'vocab.json'), 'utf8');
    const train = await TokenDataset.open(dataDir, 'train');
    const val = await TokenDataset.open(dataDir, 'val');
    for (const split of [train, val]) {
      if (split.length < config.blockSize + 1) {
        throw new TrainingError(
          `${join(dataDir, `${split.split}.bin`)}: the ${split.split} split has ${split.length} tokens, fewer than blockSize + 1 = ${config.blockSize + 1}. ` +
            'Use a smaller --blockSize, or prepare more text (or a smaller --val-fraction).',
        );
      }
    }
    const modelConfig = modelConfigOf(config, dataMeta.vocabSize);
    const selected = await selectBackend(options.backend ?? 'auto', options.backendCandidates);
    const backend = {
      ...selected,
      ...(selected.name === 'wasm'
        ? { native: useNativeKernels(options.nativeKernels ?? true) }
        : {}),
    };
    const checkpoints = join(outDir, 'checkpoints');

    if (options.resume) {
      const latest = await readPointer(checkpoints, 'latest');
      if (!latest) {
        throw new TrainingError(
          `${join(checkpoints, 'latest')}: no checkpoint to resume from. Run without --resume to start training.`,
        );
      }
      const dir = join(checkpoints, latest);
      const saved = JSON.parse(await readFile(join(dir, CHECKPOINT_FILES.config), 'utf8')) as {
        model: GPTConfig;
      };
      const state = JSON.parse(
        await readFile(join(dir, CHECKPOINT_FILES.state), 'utf8'),
      ) as CheckpointState;
      if (state.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
        throw new TrainingError(
          `${join(dir, CHECKPOINT_FILES.state)}: checkpoint format ${state.formatVersion}, this trainer reads ${CHECKPOINT_FORMAT_VERSION}`,
        );
      }
      const mismatched = (Object.keys(modelConfig) as Array<keyof GPTConfig>).filter(
        (key) => saved.model[key] !== modelConfig[key],
      );
      if (mismatched.length > 0) {
        throw new TrainingError(
          `${dir}: cannot resume — the checkpoint's model differs from this run's in ${mismatched
            .map((key) => `${key} (checkpoint ${saved.model[key]}, now ${modelConfig[key]})`)
            .join(', ')}. Resume with the same data and model settings, or train into a new --out.`,
        );
      }
      if (state.dataSha256 !== dataMeta.source.sha256) {
        throw new TrainingError(
          `${dir}: cannot resume — it was trained on data with sha256 ${state.dataSha256.slice(0, 12)}…, ${dataDir} holds ${dataMeta.source.sha256.slice(0, 12)}…. Use the same --data.`,
        );
      }
      const modelPath = join(dir, CHECKPOINT_FILES.model);
      const model = GPT.fromSafetensors(modelConfig, await readFile(modelPath), modelPath);
      const optimizer = new AdamW(model.weights, optimizerOptions(config));
      const moments = decodeSafetensors(
        await readFile(join(dir, CHECKPOINT_FILES.optimizer)),
        join(dir, CHECKPOINT_FILES.optimizer),
      );
      optimizer.setState(
        {
          step: Number(moments.metadata['step']),
          moments: new Map(
            [...model.weights.keys()].map((name) => [
              name,
              {
                m: moments.tensors.get(`m.${name}`)?.data as Float32Array,
                v: moments.tensors.get(`v.${name}`)?.data as Float32Array,
                shape: moments.tensors.get(`m.${name}`)?.shape ?? [],
              },
            ]),
          ),
        },
        join(dir, CHECKPOINT_FILES.optimizer),
      );
      await truncateMetrics(join(outDir, 'metrics.jsonl'), state.iteration);
      return new Trainer(
        config,
        modelConfig,
        model,
        optimizer,
        train,
        val,
        dataMeta,
        tokenizerJson,
        outDir,
        backend,
        Random.fromState(state.random),
        state.iteration,
        state.bestValLoss,
        dir,
      );
    }

    if (await readPointer(checkpoints, 'latest')) {
      throw new TrainingError(
        `${checkpoints}: already holds a training run. Pass --resume to continue it, or choose another --out.`,
      );
    }
    await mkdir(checkpoints, { recursive: true });
    await writeAtomic(join(outDir, 'metrics.jsonl'), '');
    // Init and training draw from separate generators, both derived from the seed.
    const model = GPT.create(modelConfig, { random: new Random(config.seed), log: null });
    const optimizer = new AdamW(model.weights, optimizerOptions(config));
    return new Trainer(
      config,
      modelConfig,
      model,
      optimizer,
      train,
      val,
      dataMeta,
      tokenizerJson,
      outDir,
      backend,
      new Random(config.seed + 1),
      0,
      null,
      undefined,
    );
  }

  /** Runs to `maxIters`, yielding events as it goes. */
  async *run(): AsyncGenerator<TrainerEvent> {
    const { config } = this;
    const started = performance.now();
    yield {
      type: 'start',
      backend: this.backend.name,
      skippedBackends: this.backend.skipped,
      ...(this.backend.native ? { nativeKernels: this.backend.native } : {}),
      config,
      model: this.modelConfig,
      parameters: countParameters(this.modelConfig),
      microBatchRows: this.microBatchRows,
      startIteration: this.iteration,
      ...(this.resumedFrom ? { resumedFrom: this.resumedFrom } : {}),
    };
    if (this.iteration === 0) yield* this.evaluateAndKeepBest();
    const tokensPerIter = config.batchSize * config.blockSize * config.gradientAccumulationSteps;
    while (this.iteration < config.maxIters) {
      const lr = learningRateAt(this.iteration, config);
      const stepStart = performance.now();
      const { loss, gradNorm } = await this.step(lr);
      const msPerIter = performance.now() - stepStart;
      if (!Number.isFinite(loss)) {
        const latest = await readPointer(this.checkpointsDir, 'latest');
        throw new TrainingError(
          `loss became ${loss} at iteration ${this.iteration + 1}; stopped without saving. ` +
            `The last good checkpoint is ${latest ? join(this.checkpointsDir, latest) : 'none (no checkpoint yet)'}. ` +
            'Try a lower learningRate, a smaller gradClip, or check the data.',
        );
      }
      this.iteration++;
      const tokensPerSec = (tokensPerIter / msPerIter) * 1000;
      yield { type: 'step', iter: this.iteration, loss, lr, gradNorm, msPerIter, tokensPerSec };
      if (this.iteration % config.logInterval === 0) {
        await appendMetrics(join(this.outDir, 'metrics.jsonl'), {
          iter: this.iteration,
          loss,
          lr,
          msPerIter,
          tokensPerSec,
        });
      }
      const last = this.iteration === config.maxIters;
      if (this.iteration % config.evalInterval === 0 || last) yield* this.evaluateAndKeepBest();
      // An evaluation may just have saved this iteration as the best one: not twice.
      const alreadySaved = this.lastSaved === this.iteration;
      if ((this.iteration % config.checkpointInterval === 0 || last) && !alreadySaved) {
        const dir = await this.saveCheckpoint();
        yield {
          type: 'checkpoint',
          iter: this.iteration,
          dir,
          reason: last ? 'final' : 'interval',
        };
      }
    }
    await this.writeLossCurve();
    yield {
      type: 'done',
      iter: this.iteration,
      bestValLoss: this.bestValLoss,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** Runs to the end, calling `onEvent` for each event. */
  async train(onEvent: (event: TrainerEvent) => void = () => {}): Promise<void> {
    for await (const event of this.run()) onEvent(event);
  }

  /**
   * One optimizer step: `gradientAccumulationSteps` batches, each run as one or more
   * micro-batches of `microBatchRows` rows; gradients of the per-pass mean losses are
   * summed with weights that make the result the gradient of the mean over all rows.
   */
  private async step(lr: number): Promise<{ loss: number; gradNorm: number }> {
    const { batchSize, blockSize, gradientAccumulationSteps, gradClip } = this.config;
    const rows = this.microBatchRows;
    const passes = gradientAccumulationSteps * (batchSize / rows);
    const variables = this.model.trainableVariables;
    let summed: Map<string, tf.Tensor> | undefined;
    let lossSum: tf.Scalar | undefined;
    for (let pass = 0; pass < passes; pass++) {
      const batch = this.trainSplit.sampleBatch(this.random, rows, blockSize);
      const { value, grads } = tf.tidy(() => {
        const x = tf.tensor2d(batch.x, [rows, blockSize], 'int32'); // (B, T)
        const y = tf.tensor2d(batch.y, [rows, blockSize], 'int32'); // (B, T)
        return tf.variableGrads(
          () =>
            tf.div(
              this.model.loss(x, y, { training: true, random: this.random }),
              passes,
            ) as tf.Scalar,
          variables,
        );
      });
      const named = new Map(
        [...this.model.weights].map(([name, variable]) => [name, grads[variable.name]!]),
      );
      if (!summed || !lossSum) {
        summed = named;
        lossSum = value;
        continue;
      }
      for (const [name, grad] of named) {
        const total = tf.add(summed.get(name)!, grad);
        tf.dispose([summed.get(name)!, grad]);
        summed.set(name, total);
      }
      const total = tf.add(lossSum, value) as tf.Scalar;
      tf.dispose([lossSum, value]);
      lossSum = total;
    }
    const norm = this.optimizer.apply(summed!, lr, gradClip);
    const both = tf.stack([lossSum!, norm]);
    // The one read-back per step; asynchronous, since WebGPU in Node cannot read synchronously.
    const [loss, gradNorm] = await both.data();
    tf.dispose([both, norm, lossSum!, ...summed!.values()]);
    return { loss: loss!, gradNorm: gradNorm! };
  }

  /** Mean loss over `evalIters` batches of each split, from a fixed generator (same batches each time). */
  async evaluate(): Promise<{ trainLoss: number; valLoss: number }> {
    const { batchSize, blockSize, evalIters, seed } = this.config;
    const result = { trainLoss: 0, valLoss: 0 };
    for (const [key, split] of [
      ['trainLoss', this.trainSplit],
      ['valLoss', this.valSplit],
    ] as const) {
      const random = new Random(seed + 2);
      let total = 0;
      for (let i = 0; i < evalIters; i++) {
        const batch = split.sampleBatch(random, batchSize, blockSize);
        const loss = tf.tidy(() =>
          this.model.loss(
            tf.tensor2d(batch.x, [batchSize, blockSize], 'int32'),
            tf.tensor2d(batch.y, [batchSize, blockSize], 'int32'),
          ),
        );
        total += (await loss.data())[0]!;
        loss.dispose();
      }
      result[key] = total / evalIters;
    }
    return result;
  }

  private async *evaluateAndKeepBest(): AsyncGenerator<TrainerEvent> {
    const { trainLoss, valLoss } = await this.evaluate();
    const best = this.iteration > 0 && (this.bestValLoss === null || valLoss < this.bestValLoss);
    if (best) this.bestValLoss = valLoss;
    await appendMetrics(join(this.outDir, 'metrics.jsonl'), {
      iter: this.iteration,
      trainLoss,
      valLoss,
    });
    await this.writeLossCurve();
    yield { type: 'eval', iter: this.iteration, trainLoss, valLoss, best };
    if (best) {
      const dir = await this.saveCheckpoint({ best: true });
      yield { type: 'checkpoint', iter: this.iteration, dir, reason: 'best' };
    }
  }

  /** Writes checkpoint `ckpt-<iteration>` whole, then points `latest` at it. */
  private async saveCheckpoint(options: { best?: boolean } = {}): Promise<string> {
    this.lastSaved = this.iteration;
    const name = checkpointName(this.iteration);
    const optimizerState = await this.optimizer.getState();
    const moments = [...optimizerState.moments].flatMap(([weightName, { m, v, shape }]) => [
      [`m.${weightName}`, { dtype: 'F32' as const, shape, data: m }] as const,
      [`v.${weightName}`, { dtype: 'F32' as const, shape, data: v }] as const,
    ]);
    const state: CheckpointState = {
      formatVersion: CHECKPOINT_FORMAT_VERSION,
      iteration: this.iteration,
      bestValLoss: this.bestValLoss,
      random: this.random.getState(),
      backend: this.backend.name,
      savedAt: new Date().toISOString(),
      dataSha256: this.dataMeta.source.sha256,
    };
    const dir = await writeCheckpoint(this.checkpointsDir, name, {
      [CHECKPOINT_FILES.model]: await this.model.toSafetensors({
        format: 'pt',
        producer: 'minigpt',
      }),
      [CHECKPOINT_FILES.optimizer]: encodeSafetensors(moments, {
        step: String(optimizerState.step),
      }),
      [CHECKPOINT_FILES.config]: `${JSON.stringify({ formatVersion: CHECKPOINT_FORMAT_VERSION, model: this.modelConfig, train: this.config }, null, 2)}\n`,
      [CHECKPOINT_FILES.tokenizer]: this.tokenizerJson,
      [CHECKPOINT_FILES.state]: `${JSON.stringify(state, null, 2)}\n`,
    });
    await setPointer(this.checkpointsDir, 'latest', name);
    if (options.best) await setPointer(this.checkpointsDir, 'best', name);
    const best = await readPointer(this.checkpointsDir, 'best');
    await pruneCheckpoints(
      this.checkpointsDir,
      this.config.keepCheckpoints,
      new Set([name, ...(best ? [best] : [])]),
    );
    return dir;
  }

  private async writeLossCurve(): Promise<void> {
    const records = await readMetrics(join(this.outDir, 'metrics.jsonl'));
    await writeAtomic(join(this.outDir, 'loss.svg'), lossCurveSvg(records));
  }

  /** Frees the model's and optimizer's tensors and closes the data files. */
  dispose(): void {
    this.model.dispose();
    this.optimizer.dispose();
    this.trainSplit.close();
    this.valSplit.close();
  }
}

/** tfjs's wasm heap tops out at 4 GB; keep a train step's activations to about half. */
const WASM_ACTIVATION_BUDGET = 2 * 1024 ** 3;

/**
 * The largest divisor of batchSize whose rows' activations fit `budget` bytes. Estimate
 * per row, from measurements of this model: nLayer · T · (48·C + 4·nh·T) float32 values
 * (the (T, C)-sized tensors kept for backprop, and the (nh, T, T) attention ones).
 */
export function rowsThatFit(config: TrainConfig, budget: number): number {
  const { nLayer, blockSize: time, nEmbd, nHead, batchSize } = config;
  const bytesPerRow = nLayer * time * (48 * nEmbd + 4 * nHead * time) * 4;
  const fit = Math.max(1, Math.floor(budget / bytesPerRow));
  for (let rows = Math.min(fit, batchSize); rows > 1; rows--)
    if (batchSize % rows === 0) return rows;
  return 1;
}

function optimizerOptions(config: TrainConfig) {
  return {
    beta1: config.beta1,
    beta2: config.beta2,
    weightDecay: config.weightDecay,
    decay: decaysWeight,
  };
}

/** Installs (or removes) the native matMul on the wasm backend for this process. */
function useNativeKernels(wanted: boolean): NativeKernelsStatus {
  if (!wanted) {
    uninstallNativeKernels();
    return { installed: false, reason: 'turned off', kernels: [] };
  }
  return installNativeKernels();
}
