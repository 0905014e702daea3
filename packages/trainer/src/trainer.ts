// The training loop: sample batches, forward + backward, AdamW with warmup + cosine LR and
// clipping, periodic evaluation, atomic checkpoints, resume. Nothing GPT-specific happens
// here beyond calling the model's loss; progress is reported as events. The checkpoint
// format (files, schemas, pointers) is @minigpt/checkpoint's, and so is where a run's files
// go (a RunStorage: a directory in Node, OPFS in a browser, memory). No Node API is used
// here: the same loop runs in Node and in a browser tab (the `./node` entry adds directories,
// the native kernels and Dawn).
import * as tf from '@tensorflow/tfjs';
import {
  CHECKPOINTS_DIR,
  CHECKPOINT_FILES,
  checkpointName,
  encodeCheckpoint,
  pruneRunCheckpoints,
  readRunCheckpoint,
  readRunPointer,
  setRunPointer,
  writeRunCheckpoint,
  type DecodedCheckpoint,
  type RunLock,
  type RunStorage,
} from '@minigpt/checkpoint';
import type { PreparedData, TokenDataset } from '@minigpt/data';
import { MinigptError, describeFileSystemError } from '@minigpt/errors';
import {
  GPT,
  activationOf,
  countParameters,
  hasFusedAttention,
  type GPTConfig,
  type WeightToCheck,
} from '@minigpt/model';
import { Random } from '@minigpt/random';
import type { TokenizerJSON } from '@minigpt/tokenizer';
import { heapFloats, installWasmKernels } from '@minigpt/wasm-kernels';
import { AdamW, decaysWeight } from './adamw.js';
import type { BackendName } from './backend-names.js';
import { selectBackend, type BackendCandidate } from './backend.js';
import {
  modelConfigOf,
  resolveTrainConfig,
  resumeTrainConfig,
  type TrainConfig,
} from './config.js';
import { affordableEvalIters, estimateRunTime, type RunTimeEstimate } from './estimate.js';
import {
  LOSS_CURVE_FILE,
  METRICS_FILE,
  appendMetrics,
  lossCurveSvg,
  readMetrics,
  truncateMetrics,
} from './metrics.js';
import { learningRateAt } from './schedule.js';

export interface TrainerOptions {
  /**
   * The tokens to train on and their tokenizer: `prepareText` from @minigpt/data (in
   * memory, any platform) or `openPreparedData` from @minigpt/data/node (a directory made
   * by `minigpt prepare` / `binarize`). The trainer owns it from here: dispose() — or a
   * start or resume that fails — closes it.
   */
  readonly data: PreparedData;
  /**
   * Where checkpoints/, metrics.jsonl and loss.svg go: directoryStorage (Node), opfsStorage
   * (a browser) or memoryStorage, from @minigpt/checkpoint. The trainer holds its lock from
   * start or resume until dispose: one writer per run.
   */
  readonly storage: RunStorage;
  /** Overrides of the defaults / preset (see TrainConfig); on resume, see Trainer.resume. */
  readonly config?: Record<string, unknown>;
  readonly backend?: BackendName | 'auto';
  /** The backends to choose from, fastest first (default BROWSER_CANDIDATES; Node's entry passes NODE_CANDIDATES). */
  readonly backendCandidates?: readonly BackendCandidate[];
  /**
   * Called once the backend is active, before the model is built: the Node entry installs
   * the native kernels there on wasm. What it returns is reported in the start event.
   * Absent, the wasm backend gets @minigpt/wasm-kernels (tfjs's own wasm BatchMatMul runs
   * batched and transposed products 5–20× slower).
   */
  readonly afterBackend?: (
    backend: BackendName,
  ) => NativeKernelsStatus | undefined | Promise<NativeKernelsStatus | undefined>;
  /**
   * Time the run's first steps (up to 3) and two evaluation batches, and send an `estimate`
   * event before any evaluation (default true). A fresh run then evaluates its starting
   * weights (iteration 0) right after those steps, on a copy of them, so the timed steps
   * are the run's own and nothing is repeated. false: evaluate first, no estimate.
   */
  readonly estimate?: boolean;
  /**
   * Lower `evalIters` for this run when its evaluations would take longer than its training
   * steps and over ALWAYS_AFFORDED_EVAL_SECONDS (a tiny maxIters with a config's evalIters
   * 200), to no fewer than MIN_CAPPED_EVAL_ITERS (see affordableEvalIters; default false:
   * evaluate as configured). Needs `estimate`. An object sets the seconds always afforded.
   */
  readonly capEvalIters?: boolean | { readonly alwaysAffordedSeconds: number };
  /** Told of things worth a line, e.g. the lock of a killed run taken over. */
  readonly onNotice?: (message: string) => void;
  /**
   * A fresh run starts from these weights instead of a random init — a pretrained GPT-2
   * (readGpt2Directory in @minigpt/model), or any model's. The model's shape (nLayer, nHead,
   * nEmbd, blockSize, bias, activation) is theirs: a key of `config` that says otherwise is
   * refused, naming the key. The data's vocabulary must be theirs too (prepare it with their
   * tokenizer). The optimizer starts fresh; a resume continues from its checkpoint as always.
   */
  readonly initFrom?: InitialWeights;
  /**
   * Where a batch run as several passes (gradientAccumulationSteps, or micro-batches on
   * wasm) sums its gradients: 'tensors' on the backend, or 'memory', JavaScript arrays
   * outside it — for wasm's 4 GB heap, which then holds one pass's gradients at a time. The
   * sums are the same, bit for bit. Default: 'memory' on wasm for a model whose four float32
   * copies of its parameters (weights, gradients, two moments) take over a quarter of the
   * heap (over 67 M parameters, e.g. GPT-2's 124 M), 'tensors' otherwise.
   */
  readonly gradientSums?: 'tensors' | 'memory';
}

/** Weights to start a run from, and the model config they are for. */
export interface InitialWeights {
  readonly config: GPTConfig;
  readonly weights: ReadonlyMap<string, WeightToCheck>;
  /** Where they came from, as messages show it (a directory, a file). */
  readonly source: string;
}

/** The run config's model keys that starting from given weights fixes, and their values. */
function initialModelKeys(init: InitialWeights): Record<string, unknown> {
  const { nLayer, nHead, nEmbd, blockSize, bias } = init.config;
  return { nLayer, nHead, nEmbd, blockSize, bias, activation: init.config.activation ?? 'gelu' };
}

/**
 * The run's config overrides with the model keys of `init`; a key given otherwise is refused,
 * since the weights cannot take another shape.
 */
function overridesWithInit(
  overrides: Record<string, unknown>,
  init: InitialWeights | undefined,
): Record<string, unknown> {
  if (!init) return overrides;
  const fixed = initialModelKeys(init);
  const conflicts = Object.entries(fixed).filter(
    ([key, value]) => key in overrides && overrides[key] !== value,
  );
  if (conflicts.length > 0) {
    throw new TrainingError(
      `${init.source}: the starting weights fix the model's ${conflicts
        .map(
          ([key, value]) =>
            `${key} (${JSON.stringify(value)}, not ${JSON.stringify(overrides[key])})`,
        )
        .join(
          ', ',
        )}; leave ${conflicts.length === 1 ? 'it' : 'them'} out of the config (blockSize may be smaller than the weights' positions only when they are read: readGpt2Directory's blockSize option)`,
      { file: init.source, rule: 'init-config' },
    );
  }
  return { ...overrides, ...fixed };
}

/** What the native kernels are doing in this run (wasm backend in Node only). */
/** The default afterBackend: @minigpt/wasm-kernels on the wasm backend. */
async function installWasmKernelsOnWasm(
  backend: BackendName,
): Promise<NativeKernelsStatus | undefined> {
  if (backend !== 'wasm') return undefined;
  return { ...(await installWasmKernels()), kind: 'wasm' };
}

export interface NativeKernelsStatus {
  readonly installed: boolean;
  /** Which kernels: the Node addon (@minigpt/native-kernels) or WebAssembly (@minigpt/wasm-kernels). */
  readonly kind?: 'native' | 'wasm';
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
      /** How the backend runs, where that matters (wasm in a browser: threads or not). */
      readonly backendDetail?: string;
      /** Set on the wasm backend in Node. */
      readonly nativeKernels?: NativeKernelsStatus;
      readonly config: TrainConfig;
      readonly model: GPTConfig;
      readonly parameters: number;
      /** Rows per forward/backward pass (< batchSize when split to fit wasm memory). */
      readonly microBatchRows: number;
      readonly startIteration: number;
      readonly resumedFrom?: string;
      /** A fresh run's starting weights (TrainerOptions.initFrom's source). */
      readonly initFrom?: string;
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
      /** Before an evaluation's first batch and after each one. */
      readonly type: 'eval-progress';
      /** The iteration being evaluated. */
      readonly iter: number;
      readonly split: 'train' | 'val';
      /** Batches done in this split, of `batches` (evalIters). */
      readonly batch: number;
      readonly batches: number;
      /** Batches done in both splits together, of `total` (2 × evalIters). */
      readonly done: number;
      readonly total: number;
      /** Since this evaluation began. */
      readonly elapsedMs: number;
    }
  | {
      /** Once, after the run's first steps were timed (see TrainerOptions.estimate). */
      readonly type: 'estimate';
      /** How many of the run's first steps were timed (up to 3). */
      readonly timedSteps: number;
      /** The fastest timed step after the first (the first warms up), or the first alone. */
      readonly msPerStep: number;
      /** One evaluation batch (a forward pass of batchSize rows). */
      readonly msPerEvalBatch: number;
      /**
       * Batches per split per evaluation: as configured, as this run uses them (lower when
       * capped), and what its training time affords (see affordableEvalIters).
       */
      readonly evalIters: {
        readonly requested: number;
        readonly used: number;
        readonly affordable: number;
      };
      /** This run, from its start iteration to maxIters, at evalIters.used. */
      readonly run: RunTimeEstimate;
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

/** A problem that stops training: bad data or config, a mismatched resume, NaN loss, a full disk. */
export class TrainingError extends MinigptError {
  override name = 'TrainingError';
}

/** The data, config and backend a run needs, checked before the storage is written. */
interface Setup {
  readonly config: TrainConfig;
  readonly modelConfig: GPTConfig;
  readonly data: PreparedData;
  readonly backend: {
    readonly name: BackendName;
    readonly skipped: ReadonlyArray<{ name: BackendName; reason: string }>;
    readonly detail?: string;
    readonly native?: NativeKernelsStatus;
  };
}

/** What a Trainer is made of, whether it starts fresh or resumes: its setup and its state. */
interface TrainerParts extends Setup {
  readonly options: TrainerOptions;
  readonly lock: RunLock;
  readonly model: GPT;
  readonly optimizer: AdamW;
  readonly random: Random;
  readonly iteration: number;
  readonly bestValLoss: number | null;
  /** The checkpoint resumed from, as messages show it. */
  readonly resumedFrom?: string;
}

export class Trainer {
  readonly config: TrainConfig;
  readonly modelConfig: GPTConfig;
  readonly model: GPT;
  /** Where this run's files go. */
  readonly storage: RunStorage;
  /** Rows per forward/backward pass: the batch is split when it would not fit wasm memory. */
  readonly microBatchRows: number;
  private readonly optimizer: AdamW;
  private readonly data: PreparedData;
  private readonly tokenizerJson: TokenizerJSON;
  private readonly lock: RunLock;
  private readonly backend: Setup['backend'];
  private readonly resumedFrom: string | undefined;
  private readonly initFrom: string | undefined;
  private readonly measure: boolean;
  private readonly capEvalIters: TrainerOptions['capEvalIters'];
  /**
   * Sum the gradients of a batch's passes in JavaScript memory rather than in tensors
   * (TrainerOptions.gradientSums). The heap then holds one pass's gradients at a time: with
   * the sums on it too, a pass of one GPT-2 row at block 256 (a 2.2 GB peak over the 1.4 GB
   * of weights and moments) ran wasm's 4 GB out of memory.
   */
  private readonly sumsOutsideHeap: boolean;
  private sumArrays: Map<string, Float32Array> | undefined;
  /** Batches per split per evaluation in this run: config.evalIters, or fewer when capped. */
  private evalIters: number;
  private random: Random;
  private iteration: number;
  private bestValLoss: number | null;
  /** Iteration of the newest checkpoint this run wrote (to not write the same one twice). */
  private lastSaved = -1;
  /** While the model holds other weights than this iteration's (see swapWeights). */
  private weightsSwapped = false;
  private disposed = false;

  private constructor(parts: TrainerParts) {
    this.config = parts.config;
    this.modelConfig = parts.modelConfig;
    this.model = parts.model;
    this.storage = parts.options.storage;
    this.optimizer = parts.optimizer;
    this.data = parts.data;
    this.tokenizerJson = parts.data.tokenizer.toJSON();
    this.lock = parts.lock;
    this.backend = parts.backend;
    this.random = parts.random;
    this.iteration = parts.iteration;
    this.bestValLoss = parts.bestValLoss;
    this.resumedFrom = parts.resumedFrom;
    this.initFrom = parts.options.initFrom?.source;
    this.measure = parts.options.estimate ?? true;
    this.capEvalIters = parts.options.capEvalIters;
    this.evalIters = parts.config.evalIters;
    this.sumsOutsideHeap =
      (parts.options.gradientSums ??
        (parts.backend.name === 'wasm' &&
        16 * countParameters(parts.modelConfig, true) > WASM_HEAP_BYTES / 4
          ? 'memory'
          : 'tensors')) === 'memory';
    this.microBatchRows =
      parts.backend.name === 'wasm'
        ? rowsThatFit(
            parts.config,
            wasmActivationBudget(parts.modelConfig),
            parts.modelConfig.vocabSize,
            hasFusedAttention(),
          )
        : parts.config.batchSize;
  }

  /** The checkpoints folder, as messages show it (a directory path in Node). */
  get checkpointsDir(): string {
    return this.storage.pathOf(CHECKPOINTS_DIR);
  }

  /**
   * A fresh run: checks the data and config, picks a backend, takes the storage's lock and
   * initialises the model from the config's seed. Refuses a storage that already holds a
   * run (resume it instead). A second run into the same storage is refused while this one
   * holds it (until `dispose`).
   */
  static async start(options: TrainerOptions): Promise<Trainer> {
    let lock: RunLock | undefined;
    try {
      const setup = await Trainer.setUp(
        options,
        resolveTrainConfig(overridesWithInit(options.config ?? {}, options.initFrom)),
      );
      lock = await Trainer.lock(options);
      const { storage } = options;
      if (await readRunPointer(storage, 'latest')) {
        throw new TrainingError(
          `${storage.pathOf(CHECKPOINTS_DIR)}: already holds a training run. Continue it with Trainer.resume, or start in another storage.`,
          { file: storage.pathOf(CHECKPOINTS_DIR), rule: 'run-exists' },
        );
      }
      await storage.writeFile(METRICS_FILE, '', lock);
      // Init and training draw from separate generators, both derived from the seed.
      const model = options.initFrom
        ? GPT.fromWeights(setup.modelConfig, options.initFrom.weights, options.initFrom.source)
        : GPT.create(setup.modelConfig, { random: new Random(setup.config.seed), log: null });
      return new Trainer({
        ...setup,
        options,
        lock,
        model,
        optimizer: new AdamW(model.weights, optimizerOptions(setup.config)),
        random: new Random(setup.config.seed + 1),
        iteration: 0,
        bestValLoss: null,
      });
    } catch (error) {
      lock?.release();
      closeData(options.data);
      throw error;
    }
  }

  /**
   * Continues the run in `storage` from its `checkpoints/latest`, with the checkpoint's
   * model and training settings; `config` may then change only RESUME_OVERRIDABLE_KEYS
   * (maxIters and the intervals), other keys must equal the checkpoint's. The checkpoint is
   * read under the lock (no other run may be writing it), and every file is checked —
   * schemas, weights and moments against the config, the data against the one it was
   * trained on — before anything in the storage changes.
   */
  static async resume(options: TrainerOptions): Promise<Trainer> {
    let lock: RunLock | undefined;
    try {
      lock = await Trainer.lock(options);
      const { storage } = options;
      const latest = await readRunPointer(storage, 'latest');
      if (!latest) {
        throw new TrainingError(
          `${storage.pathOf(`${CHECKPOINTS_DIR}/latest`)}: no checkpoint to resume from. Start a fresh run with Trainer.start.`,
          { file: storage.pathOf(`${CHECKPOINTS_DIR}/latest`), rule: 'no-checkpoint' },
        );
      }
      const checkpoint = `${CHECKPOINTS_DIR}/${latest}`;
      const saved = await readRunCheckpoint(storage, { optimizer: true, name: latest });
      const config = resumeTrainConfig(
        saved.config.train,
        options.config ?? {},
        storage.pathOf(`${checkpoint}/${CHECKPOINT_FILES.config}`),
      );
      const setup = await Trainer.setUp(options, config);
      const dir = storage.pathOf(checkpoint);
      checkResumable(saved, setup, dir);
      const model = GPT.fromWeights(
        setup.modelConfig,
        saved.weights,
        storage.pathOf(`${checkpoint}/${CHECKPOINT_FILES.model}`),
      );
      const optimizer = new AdamW(model.weights, optimizerOptions(setup.config));
      optimizer.setState(saved.optimizer!);
      await truncateMetrics(storage, saved.state.iteration, lock);
      return new Trainer({
        ...setup,
        options,
        lock,
        model,
        optimizer,
        random: Random.fromState(saved.state.random),
        iteration: saved.state.iteration,
        bestValLoss: saved.state.bestValLoss,
        resumedFrom: dir,
      });
    } catch (error) {
      lock?.release();
      closeData(options.data);
      throw error;
    }
  }

  private static lock(options: TrainerOptions): Promise<RunLock> {
    return options.storage.lock({
      command: 'minigpt train',
      ...(options.onNotice ? { onNotice: options.onNotice } : {}),
    });
  }

  /** Checks the data against the config and picks the backend; writes nothing. */
  private static async setUp(options: TrainerOptions, config: TrainConfig): Promise<Setup> {
    const { data } = options;
    for (const split of [data.train, data.val]) {
      if (split.length < config.blockSize + 1) {
        throw new TrainingError(
          `${split.source}: the ${split.split} split has ${split.length} tokens, fewer than blockSize + 1 = ${config.blockSize + 1}. ` +
            'Use a smaller blockSize, or more text (or a smaller validation fraction).',
        );
      }
    }
    const init = options.initFrom;
    if (init && init.config.vocabSize !== data.meta.vocabSize) {
      throw new TrainingError(
        `${init.source}: its weights are for a vocabulary of ${init.config.vocabSize} tokens, the data's tokenizer has ${data.meta.vocabSize} (${data.train.source}): prepare the data with the same tokenizer as the weights`,
        { file: init.source, rule: 'init-vocab' },
      );
    }
    const modelConfig = modelConfigOf(config, data.meta.vocabSize);
    const selected = await selectBackend(options.backend ?? 'auto', options.backendCandidates);
    if (selected.name === 'wasm') checkFitsWasm(modelConfig);
    const native = await (options.afterBackend ?? installWasmKernelsOnWasm)(selected.name);
    return { config, modelConfig, data, backend: { ...selected, ...(native ? { native } : {}) } };
  }

  /** Runs to `maxIters`, yielding events as it goes. */
  async *run(): AsyncGenerator<TrainerEvent> {
    const { config } = this;
    const started = performance.now();
    const startIteration = this.iteration;
    yield {
      type: 'start',
      backend: this.backend.name,
      skippedBackends: this.backend.skipped,
      ...(this.backend.detail ? { backendDetail: this.backend.detail } : {}),
      ...(this.backend.native ? { nativeKernels: this.backend.native } : {}),
      config,
      model: this.modelConfig,
      parameters: countParameters(this.modelConfig),
      microBatchRows: this.microBatchRows,
      startIteration,
      ...(this.resumedFrom ? { resumedFrom: this.resumedFrom } : {}),
      ...(this.initFrom && !this.resumedFrom ? { initFrom: this.initFrom } : {}),
    };
    const fresh = startIteration === 0;
    const timedSteps = this.measure ? stepsToTime(startIteration, config) : 0;
    // A fresh run evaluates its starting weights. When the first steps are timed, that
    // evaluation comes after them, on a copy of the weights taken now: the estimate (and a
    // warning about a long run) then comes before the first evaluation, however long.
    let startWeights = fresh && timedSteps > 0 ? await this.model.weightData() : undefined;
    if (fresh && !startWeights) yield* this.evaluateAndKeepBest(0);
    const tokensPerIter = config.batchSize * config.blockSize * config.gradientAccumulationSteps;
    const stepTimes: number[] = [];
    let estimated = false;
    while (this.iteration < config.maxIters) {
      const lr = learningRateAt(this.iteration, config);
      const stepStart = performance.now();
      const { loss, gradNorm } = await this.step(lr);
      const msPerIter = performance.now() - stepStart;
      if (!Number.isFinite(loss)) {
        const latest = await readRunPointer(this.storage, 'latest').catch(() => undefined);
        const newest = latest ? this.storage.pathOf(`${CHECKPOINTS_DIR}/${latest}`) : undefined;
        const fromStart = newest !== undefined && newest === this.resumedFrom;
        throw new TrainingError(
          `loss became ${loss} at iteration ${this.iteration + 1}; stopped without saving. ` +
            (newest
              ? `The newest checkpoint, ${newest}, is unchanged${fromStart ? ' (this run resumed from it)' : ''}. `
              : 'No checkpoint was saved yet. ') +
            'Try a lower learningRate, a smaller gradClip, or check the data.',
        );
      }
      this.iteration++;
      if (stepTimes.length < timedSteps) stepTimes.push(msPerIter);
      const tokensPerSec = (tokensPerIter / msPerIter) * 1000;
      yield { type: 'step', iter: this.iteration, loss, lr, gradNorm, msPerIter, tokensPerSec };
      if (this.iteration % config.logInterval === 0) {
        await this.onDisk('writing metrics.jsonl', () =>
          appendMetrics(
            this.storage,
            { iter: this.iteration, loss, lr, msPerIter, tokensPerSec },
            this.lock,
          ),
        );
      }
      if (stepTimes.length === timedSteps && timedSteps > 0 && !estimated) {
        estimated = true;
        // The first step warms up (allocations, threads, shader compiles): the fastest of
        // the others is the steady pace, when there are others.
        const warm = stepTimes.length > 1 ? stepTimes.slice(1) : stepTimes;
        yield await this.estimate(startIteration, timedSteps, Math.min(...warm));
        if (startWeights) {
          const weights = startWeights;
          startWeights = undefined;
          yield* this.evaluateAndKeepBest(0, weights);
        }
      }
      const last = this.iteration === config.maxIters;
      if (this.iteration % config.evalInterval === 0 || last) yield* this.evaluateAndKeepBest();
      // An evaluation may just have saved this iteration as the best one: not twice.
      const alreadySaved = this.lastSaved === this.iteration;
      if ((this.iteration % config.checkpointInterval === 0 || last) && !alreadySaved) {
        const dir = await this.writeCheckpoint();
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

  /**
   * The estimate event, after the timed steps: times evaluation batches (two, the second
   * warm), then caps this run's evalIters when asked to and its training cannot afford them.
   */
  private async estimate(
    startIteration: number,
    timedSteps: number,
    msPerStep: number,
  ): Promise<TrainerEvent> {
    const { config } = this;
    const random = new Random(config.seed + 2);
    let msPerEvalBatch = 0;
    for (let i = 0; i < 2; i++) {
      const begun = performance.now();
      await this.evalBatchLoss(this.data.train, random);
      msPerEvalBatch = performance.now() - begun;
    }
    const timing = {
      startIteration,
      maxIters: config.maxIters,
      evalInterval: config.evalInterval,
      evalIters: config.evalIters,
      evaluatesAtStart: startIteration === 0,
      msPerStep,
      msPerEvalBatch,
    };
    const cap = this.capEvalIters;
    const affordable = affordableEvalIters(
      timing,
      typeof cap === 'object' ? cap.alwaysAffordedSeconds : undefined,
    );
    this.evalIters = cap ? affordable : config.evalIters;
    return {
      type: 'estimate',
      timedSteps,
      msPerStep,
      msPerEvalBatch,
      evalIters: { requested: config.evalIters, used: this.evalIters, affordable },
      run: estimateRunTime({ ...timing, evalIters: this.evalIters }),
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
    // A large model's passes sum their gradients in JavaScript memory (see sumsOutsideHeap).
    const outside = passes > 1 && this.sumsOutsideHeap ? this.gradientSumArrays() : null;
    for (let pass = 0; pass < passes; pass++) {
      const batch = this.data.train.sampleBatch(this.random, rows, blockSize);
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
      if (outside) {
        for (const [name, grad] of named) {
          // Read in place on wasm (dataSync would copy 0.5 GB a pass at GPT-2's size).
          const values = heapFloats(grad) ?? (grad.dataSync() as Float32Array);
          const sum = outside.get(name)!;
          if (pass === 0) sum.set(values);
          // A float32 store of the double sum of two float32s is their float32 sum (53 ≥ 2·24 + 2
          // bits: no double rounding), so this adds as tf.add does on the heap, pass by pass.
          else for (let i = 0; i < sum.length; i++) sum[i]! += values[i]!;
          grad.dispose();
        }
        if (lossSum) {
          const total = tf.add(lossSum, value) as tf.Scalar;
          tf.dispose([lossSum, value]);
          lossSum = total;
        } else lossSum = value;
        continue;
      }
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
    if (outside) {
      summed = new Map(
        [...this.model.weights].map(([name, variable]) => [
          name,
          tf.tensor(outside.get(name)!, variable.shape),
        ]),
      );
    }
    const norm = this.optimizer.apply(summed!, lr, gradClip);
    const both = tf.stack([lossSum!, norm]);
    // The one read-back per step; asynchronous, since WebGPU in Node cannot read synchronously.
    const [loss, gradNorm] = await both.data();
    tf.dispose([both, norm, lossSum!, ...summed!.values()]);
    return { loss: loss!, gradNorm: gradNorm! };
  }

  /**
   * One array per weight for gradientSums 'memory', made on first use and kept for the
   * run: fresh ones each step would page in 0.5 GB at GPT-2's size.
   */
  private gradientSumArrays(): Map<string, Float32Array> {
    this.sumArrays ??= new Map(
      [...this.model.weights].map(([name, variable]) => [name, new Float32Array(variable.size)]),
    );
    return this.sumArrays;
  }

  /** Mean loss over `evalIters` batches of each split, from a fixed generator (same batches each time). */
  async evaluate(): Promise<{ trainLoss: number; valLoss: number }> {
    const batches = this.evaluateBatches(this.iteration);
    for (;;) {
      const next = await batches.next();
      if (next.done) return next.value;
    }
  }

  /** evaluate(), with an eval-progress event before the first batch and after each one. */
  private async *evaluateBatches(
    iter: number,
  ): AsyncGenerator<TrainerEvent, { trainLoss: number; valLoss: number }> {
    const batches = this.evalIters;
    const begun = performance.now();
    const result = { trainLoss: 0, valLoss: 0 };
    const splits = [
      ['train', 'trainLoss', this.data.train],
      ['val', 'valLoss', this.data.val],
    ] as const;
    for (const [index, [split, key, data]] of splits.entries()) {
      const random = new Random(this.config.seed + 2);
      let total = 0;
      for (let batch = 0; batch <= batches; batch++) {
        if (batch > 0) total += await this.evalBatchLoss(data, random);
        // The first split's start is the evaluation's start; the second's is the first's end.
        if (batch === 0 && index > 0) continue;
        yield {
          type: 'eval-progress',
          iter,
          split,
          batch,
          batches,
          done: index * batches + batch,
          total: splits.length * batches,
          elapsedMs: performance.now() - begun,
        };
      }
      result[key] = total / batches;
    }
    return result;
  }

  /**
   * The loss of one evaluation batch (batchSize rows, no dropout) drawn with `random`, in
   * passes of microBatchRows rows as training runs it: a forward pass keeps every
   * intermediate until it ends, and a whole batch of GPT-2's (T, V) logits alone would
   * not fit wasm's heap beside the weights and Adam's moments.
   */
  private async evalBatchLoss(split: TokenDataset, random: Random): Promise<number> {
    const { batchSize, blockSize } = this.config;
    const batch = split.sampleBatch(random, batchSize, blockSize);
    const rows = this.microBatchRows;
    const passes = batchSize / rows;
    let total = 0;
    for (let pass = 0; pass < passes; pass++) {
      const part = (ids: Int32Array) =>
        ids.subarray(pass * rows * blockSize, (pass + 1) * rows * blockSize);
      const loss = tf.tidy(() =>
        this.model.loss(
          tf.tensor2d(part(batch.x), [rows, blockSize], 'int32'), // (rows, T)
          tf.tensor2d(part(batch.y), [rows, blockSize], 'int32'),
        ),
      );
      total += (await loss.data())[0]!;
      loss.dispose();
    }
    // Each pass's loss is the mean over its rows: their mean is the batch's.
    return total / passes;
  }

  /**
   * Evaluates iteration `iter` (the current one unless given), logs it and keeps the best.
   * `weights`: evaluate these instead of the model's current ones (a fresh run's starting
   * weights, evaluated after its timed steps); the current ones are back before the event.
   */
  private async *evaluateAndKeepBest(
    iter = this.iteration,
    weights?: ReadonlyMap<string, { readonly data: Float32Array }>,
  ): AsyncGenerator<TrainerEvent> {
    const restore = weights ? this.swapWeights(weights) : undefined;
    let losses: { trainLoss: number; valLoss: number };
    try {
      losses = yield* this.evaluateBatches(iter);
    } finally {
      restore?.();
    }
    const { trainLoss, valLoss } = losses;
    const best = iter > 0 && (this.bestValLoss === null || valLoss < this.bestValLoss);
    if (best) this.bestValLoss = valLoss;
    await this.onDisk('writing metrics.jsonl', () =>
      appendMetrics(this.storage, { iter, trainLoss, valLoss }, this.lock),
    );
    await this.writeLossCurve();
    yield { type: 'eval', iter, trainLoss, valLoss, best };
    if (best) {
      const dir = await this.writeCheckpoint({ best: true });
      yield { type: 'checkpoint', iter: this.iteration, dir, reason: 'best' };
    }
  }

  /** Puts `weights` into the model; the function returned puts the current ones back. */
  private swapWeights(weights: ReadonlyMap<string, { readonly data: Float32Array }>): () => void {
    // tfjs tensors are immutable and assign() rebinds a variable, so a clone keeps the
    // current values without copying them.
    const current = new Map<string, tf.Tensor>();
    this.weightsSwapped = true;
    for (const [name, variable] of this.model.weights) {
      current.set(name, tf.clone(variable));
      const replacement = tf.tensor(weights.get(name)!.data, variable.shape);
      variable.assign(replacement);
      replacement.dispose();
    }
    return () => {
      for (const [name, variable] of this.model.weights) {
        variable.assign(current.get(name)!);
        current.get(name)!.dispose();
      }
      this.weightsSwapped = false;
    };
  }

  /**
   * Saves a checkpoint of the current iteration now, as the loop's own interval checkpoint
   * (`ckpt-<iteration>`, written whole, then `latest` points at it; older ones pruned), and
   * returns its location: e.g. for a download of the current weights mid-run. Call it between
   * two events of `run()` or after it ends (not after it threw: the weights may be broken),
   * never while a `run().next()` is pending. An iteration already saved is not written again
   * (nothing changed since); the loop then does not write it again either.
   */
  async saveCheckpoint(): Promise<{ readonly iter: number; readonly dir: string }> {
    if (this.disposed) throw new Error('saveCheckpoint: this trainer was disposed');
    if (this.weightsSwapped) {
      // Only while run() is suspended in the starting weights' evaluation: those weights
      // are not this iteration's, and a checkpoint of them would be a wrong resume point.
      throw new Error(
        'saveCheckpoint: the model holds the starting weights for their evaluation; call it after the eval event',
      );
    }
    const dir =
      this.lastSaved === this.iteration
        ? this.storage.pathOf(`${CHECKPOINTS_DIR}/${checkpointName(this.iteration)}`)
        : await this.writeCheckpoint();
    return { iter: this.iteration, dir };
  }

  /** Writes checkpoint `ckpt-<iteration>` whole, then points `latest` at it. */
  private async writeCheckpoint(options: { best?: boolean } = {}): Promise<string> {
    this.lastSaved = this.iteration;
    const name = checkpointName(this.iteration);
    const optimizerState = await this.optimizer.getState();
    const files = encodeCheckpoint({
      config: { model: this.modelConfig, train: { ...this.config } },
      state: {
        iteration: this.iteration,
        bestValLoss: this.bestValLoss,
        random: this.random.getState(),
        backend: this.backend.name,
        savedAt: new Date().toISOString(),
        dataSha256: this.data.meta.source.sha256,
      },
      tokenizer: this.tokenizerJson,
      weights: await this.model.weightData(),
      optimizer: optimizerState,
    });
    const { storage, lock } = this;
    return this.onDisk(`saving checkpoint ${name}`, async () => {
      const dir = await writeRunCheckpoint(storage, name, files, lock);
      await setRunPointer(storage, 'latest', name, lock);
      if (options.best) await setRunPointer(storage, 'best', name, lock);
      const best = await readRunPointer(storage, 'best');
      await pruneRunCheckpoints(
        storage,
        this.config.keepCheckpoints,
        new Set([name, ...(best ? [best] : [])]),
        lock,
      );
      return dir;
    });
  }

  private async writeLossCurve(): Promise<void> {
    await this.onDisk(`drawing ${LOSS_CURVE_FILE}`, async () => {
      const records = await readMetrics(this.storage);
      await this.storage.writeFile(LOSS_CURVE_FILE, lossCurveSvg(records), this.lock);
    });
  }

  /**
   * Runs a write; a full, read-only or forbidden disk (or a browser's storage quota) stops
   * training with one line that names the path, what to do, and the checkpoint that is
   * still intact (writes are atomic: a failed one leaves the previous checkpoint and
   * pointers as they were).
   */
  private async onDisk<T>(context: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      const described =
        describeFileSystemError(error, context) ?? describeQuotaError(error, context, this.storage);
      if (!described) throw error;
      const latest = await readRunPointer(this.storage, 'latest').catch(() => undefined);
      throw new TrainingError(
        `${described.message}. Training stopped at iteration ${this.iteration}; ` +
          (latest
            ? `the last complete checkpoint, ${this.storage.pathOf(`${CHECKPOINTS_DIR}/${latest}`)}, is intact and loadable: fix this, then continue with --resume.`
            : 'no checkpoint had been saved yet.'),
        { file: described.file, rule: described.code, cause: error },
      );
    }
  }

  /** Frees the model's and optimizer's tensors, closes the data, releases the storage's lock. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
    this.optimizer.dispose();
    closeData(this.data);
    this.lock.release();
  }
}

function closeData(data: PreparedData): void {
  data.train.close();
  data.val.close();
}

/** A browser's storage quota running out (OPFS), in the words of a full disk. */
function describeQuotaError(
  error: unknown,
  context: string,
  storage: RunStorage,
): { message: string; file: string; code: string } | undefined {
  if ((error as { name?: unknown } | null)?.name !== 'QuotaExceededError') return undefined;
  return {
    message: `${storage.location}: the browser's storage quota is full (${context}). To fix: free space in this site's storage (older runs), or allow the site more`,
    file: storage.location,
    code: 'ENOSPC',
  };
}

/** Refuses a resume whose checkpoint is not of this run's model, data and tokenizer. */
function checkResumable(saved: DecodedCheckpoint, setup: Setup, dir: string): void {
  const { modelConfig, data } = setup;
  const savedModel = saved.config.model;
  // activation may be absent on either side: absent is the exact GELU.
  const keys = new Set([...Object.keys(modelConfig), 'activation'] as Array<keyof GPTConfig>);
  const valueOf = (config: GPTConfig, key: keyof GPTConfig) =>
    key === 'activation' ? activationOf(config) : config[key];
  const mismatched = [...keys].filter(
    (key) => valueOf(savedModel, key) !== valueOf(modelConfig, key),
  );
  if (mismatched.length > 0) {
    throw new TrainingError(
      `${dir}: cannot resume — the checkpoint's model differs from this run's in ${mismatched
        .map(
          (key) =>
            `${key} (checkpoint ${valueOf(savedModel, key)}, now ${valueOf(modelConfig, key)})`,
        )
        .join(', ')}. Resume with the same data and model settings, or train into a new --out.`,
    );
  }
  if (saved.state.dataSha256 !== data.meta.source.sha256) {
    throw new TrainingError(
      `${dir}: cannot resume — it was trained on data with sha256 ${saved.state.dataSha256.slice(0, 12)}…, ${data.location} holds ${data.meta.source.sha256.slice(0, 12)}…. Use the same data (--data in the CLI).`,
    );
  }
  if (JSON.stringify(saved.tokenizer.toJSON()) !== JSON.stringify(data.tokenizer.toJSON())) {
    throw new TrainingError(
      `${dir}/${CHECKPOINT_FILES.tokenizer}: cannot resume — the checkpoint's tokenizer differs from the tokenizer of ${data.location}. Use the data it was trained on.`,
    );
  }
}

/**
 * Weights, gradients and Adam's two moments are four float32 copies of the parameters; on
 * wasm they must fit its 4 GB heap beside the activations, or the run dies out of memory
 * minutes in. Refuse such a model up front.
 */
function checkFitsWasm(model: GPTConfig): void {
  const bytes = 16 * countParameters(model, true);
  if (bytes > WASM_HEAP_BYTES - WASM_ACTIVATION_BUDGET / 2) {
    throw new TrainingError(
      `the model has ${(countParameters(model, true) / 1e6).toFixed(1)}M parameters: weights, gradients and Adam moments need ${(bytes / 1024 ** 3).toFixed(1)} GiB, ` +
        `more than the wasm backend's ${WASM_HEAP_BYTES / 1024 ** 3} GiB heap holds. Use a smaller nLayer / nEmbd / blockSize, or a tfjs-node backend.`,
      { rule: 'model-size' },
    );
  }
}

const WASM_HEAP_BYTES = 4 * 1024 ** 3;

/** tfjs's wasm heap tops out at 4 GB; keep a train step's activations to about half. */
const WASM_ACTIVATION_BUDGET = 2 * 1024 ** 3;

/** Heap kept free of every estimate: tfjs's own buffers, fragmentation. */
const WASM_HEAP_MARGIN = 256 * 1024 ** 2;

/**
 * Bytes a train step's activations may take on wasm: half the heap, and never more than
 * what the parameters leave — weights, gradients and Adam's two moments (16 bytes each),
 * plus the running sum of a batch split into passes (4 more). At GPT-2's 124 M parameters
 * that is 2.5 GB, and 2 GB of activations on top ran the heap out at batch 4.
 */
function wasmActivationBudget(model: GPTConfig): number {
  const parameterBytes = 20 * countParameters(model, true);
  return Math.max(
    0,
    Math.min(WASM_ACTIVATION_BUDGET, WASM_HEAP_BYTES - parameterBytes - WASM_HEAP_MARGIN),
  );
}

/**
 * The largest divisor of batchSize whose rows' activations fit `budget` bytes. Estimate
 * per row, from measurements of this model: nLayer · T · (48·C + 4·nh·T) float32 values
 * (the (T, C)-sized tensors kept for backprop, and the (nh, T, T) attention ones) with tfjs's
 * attention; nLayer · T · 32·C with the fused attention kernels (`fusedAttention`), which keep
 * no (T, T) tensor and copy no saved tensor (bench:train's `seed` run in one pass of 64 rows
 * peaked at 2.04 GiB of RSS in all, 2026-11-30: ≤ 25 MB a row, where this gives 25.2); plus
 * 4·T·V for the (T, V) logits, their softmax and gradients (`vocabSize`; small at vocab 65, 51 MB a row each at
 * GPT-2's 50,257 and block 256).
 */
export function rowsThatFit(
  config: TrainConfig,
  budget: number,
  vocabSize = 0,
  fusedAttention = false,
): number {
  const { nLayer, blockSize: time, nEmbd, nHead, batchSize } = config;
  const perPosition = fusedAttention ? 32 * nEmbd : 48 * nEmbd + 4 * nHead * time;
  const bytesPerRow = (nLayer * time * perPosition + 4 * time * vocabSize) * 4;
  const fit = Math.max(1, Math.floor(budget / bytesPerRow));
  for (let rows = Math.min(fit, batchSize); rows > 1; rows--)
    if (batchSize % rows === 0) return rows;
  return 1;
}

/**
 * Steps timed for the estimate: three (the first warms up), fewer when an evaluation or a
 * checkpoint comes sooner (the estimate comes before it) or the run ends.
 */
function stepsToTime(startIteration: number, config: TrainConfig): number {
  let steps = 0;
  for (let iter = startIteration + 1; iter <= config.maxIters && steps < 3; iter++) {
    steps++;
    if (iter % config.evalInterval === 0 || iter % config.checkpointInterval === 0) break;
  }
  return steps;
}

function optimizerOptions(config: TrainConfig) {
  return {
    beta1: config.beta1,
    beta2: config.beta2,
    weightDecay: config.weightDecay,
    decay: decaysWeight,
  };
}
