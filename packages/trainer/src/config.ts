// Training configuration: defaults in code, presets by name, overrides as data. Every key
// is checked against the defaults' types; unknown keys are errors that list the valid ones.
// Model hyperparameters live in the same flat object (as in nanoGPT's config files).
import { MinigptError } from '@minigpt/errors';
import {
  GPT_ACTIVATIONS,
  GPT_PRESETS,
  resolveGPTConfig,
  type GPTActivation,
  type GPTConfig,
  type GPTPresetName,
} from '@minigpt/model/config';

export interface TrainConfig {
  /** Model size preset: `nano`, `baby` or `seed`; the model keys below override it. */
  readonly preset: GPTPresetName;
  readonly nLayer: number;
  readonly nHead: number;
  readonly nEmbd: number;
  readonly blockSize: number;
  readonly dropout: number;
  readonly bias: boolean;
  /**
   * The MLP's GELU: 'gelu' (exact, erf) or 'gelu_tanh' (the tanh approximation GPT-2 was
   * trained with, Hugging Face's `gelu_new`; set by `initFrom` a GPT-2).
   */
  readonly activation: GPTActivation;

  readonly batchSize: number;
  /** Micro-batches summed into one optimizer step (effective batch = batchSize × this). */
  readonly gradientAccumulationSteps: number;
  readonly maxIters: number;
  readonly learningRate: number;
  /** Linear warmup from 0 over this many iterations… */
  readonly warmupIters: number;
  /** …then cosine decay to minLr at lrDecayIters (0: = maxIters), constant after. */
  readonly lrDecayIters: number;
  readonly minLr: number;
  readonly decayLr: boolean;
  /** AdamW; decay applies to 2-D weights only (not biases, LayerNorm or embeddings). */
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  /** Clip gradients to this global L2 norm (0: no clipping). */
  readonly gradClip: number;

  readonly logInterval: number;
  readonly evalInterval: number;
  readonly evalIters: number;
  readonly checkpointInterval: number;
  /** How many periodic checkpoints to keep besides the best one (0: keep all). */
  readonly keepCheckpoints: number;
  readonly seed: number;
}

const MODEL_KEYS = [
  'nLayer',
  'nHead',
  'nEmbd',
  'blockSize',
  'dropout',
  'bias',
  'activation',
] as const;

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  preset: 'baby',
  ...pickModel(GPT_PRESETS.baby),
  batchSize: 12,
  gradientAccumulationSteps: 1,
  maxIters: 2000,
  learningRate: 1e-3,
  warmupIters: 100,
  lrDecayIters: 0,
  minLr: 1e-4,
  decayLr: true,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.99,
  gradClip: 1.0,
  logInterval: 10,
  evalInterval: 250,
  evalIters: 20,
  checkpointInterval: 500,
  keepCheckpoints: 3,
  seed: 1337,
};

/** Training presets: a model preset plus the training settings that go with it. */
export const TRAIN_PRESETS: Record<GPTPresetName, Partial<TrainConfig>> = {
  /** nanoGPT's CPU run for shakespeare-char: 4 layers, 128 wide, 2000 iters. */
  baby: { preset: 'baby' },
  /** The seed's "Mini GPT": 6 layers, 256 wide, batch 64, 5000 iters at lr 3e-4. */
  seed: {
    preset: 'seed',
    batchSize: 64,
    maxIters: 5000,
    learningRate: 3e-4,
    minLr: 3e-5,
    warmupIters: 100,
    logInterval: 500,
    evalInterval: 500,
    evalIters: 200,
    checkpointInterval: 1000,
  },
  /** Tiny, for tests and smoke runs. */
  nano: {
    preset: 'nano',
    batchSize: 4,
    maxIters: 50,
    logInterval: 1,
    evalInterval: 25,
    evalIters: 2,
    checkpointInterval: 25,
    warmupIters: 5,
  },
};

export class TrainConfigError extends MinigptError {
  override name = 'TrainConfigError';
}

function pickModel(preset: Omit<GPTConfig, 'vocabSize'>) {
  const { nLayer, nHead, nEmbd, blockSize, dropout, bias } = preset;
  return { nLayer, nHead, nEmbd, blockSize, dropout, bias, activation: 'gelu' as const };
}

/**
 * The full config: defaults, then the preset (the one in `overrides.preset`, else the
 * default's), then `overrides`. Types must match the defaults'; unknown keys throw.
 */
export function resolveTrainConfig(overrides: Record<string, unknown> = {}): TrainConfig {
  const validKeys = Object.keys(DEFAULT_TRAIN_CONFIG);
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in DEFAULT_TRAIN_CONFIG)) {
      throw new TrainConfigError(
        `unknown config key "${key}"; valid keys: ${validKeys.join(', ')}`,
      );
    }
    const expected = typeof DEFAULT_TRAIN_CONFIG[key as keyof TrainConfig];
    if (typeof value !== expected || (expected === 'number' && !Number.isFinite(value))) {
      throw new TrainConfigError(
        `config key "${key}" must be a ${expected}, got ${JSON.stringify(value)}`,
      );
    }
  }
  const presetName = (overrides['preset'] ?? DEFAULT_TRAIN_CONFIG.preset) as GPTPresetName;
  if (!(presetName in TRAIN_PRESETS)) {
    throw new TrainConfigError(
      `unknown preset "${presetName}"; presets: ${Object.keys(TRAIN_PRESETS).join(', ')}`,
    );
  }
  const config: TrainConfig = {
    ...DEFAULT_TRAIN_CONFIG,
    ...pickModel(GPT_PRESETS[presetName]),
    ...TRAIN_PRESETS[presetName],
    ...(overrides as Partial<TrainConfig>),
  };
  const positiveIntegers: Array<keyof TrainConfig> = [
    'batchSize',
    'gradientAccumulationSteps',
    'maxIters',
    'logInterval',
    'evalInterval',
    'evalIters',
    'checkpointInterval',
  ];
  for (const key of positiveIntegers) {
    const value = config[key] as number;
    if (!Number.isInteger(value) || value < 1) {
      throw new TrainConfigError(`config key "${key}" must be a positive integer, got ${value}`);
    }
  }
  for (const key of ['warmupIters', 'lrDecayIters', 'keepCheckpoints'] as const) {
    if (!Number.isInteger(config[key]) || config[key] < 0) {
      throw new TrainConfigError(`config key "${key}" must be an integer ≥ 0, got ${config[key]}`);
    }
  }
  if (!(config.learningRate > 0) || !(config.minLr >= 0) || config.minLr > config.learningRate) {
    throw new TrainConfigError(
      `need learningRate > 0 and 0 ≤ minLr ≤ learningRate, got ${config.learningRate} and ${config.minLr}`,
    );
  }
  if (!(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 && config.beta2 < 1)) {
    throw new TrainConfigError(
      `beta1 and beta2 must be in [0, 1), got ${config.beta1} and ${config.beta2}`,
    );
  }
  if (!(GPT_ACTIVATIONS as readonly string[]).includes(config.activation)) {
    throw new TrainConfigError(
      `config key "activation" must be one of ${GPT_ACTIVATIONS.map((name) => `"${name}"`).join(', ')}, got ${JSON.stringify(config.activation)}`,
    );
  }
  if (!(config.weightDecay >= 0) || !(config.gradClip >= 0)) {
    throw new TrainConfigError('weightDecay and gradClip must be ≥ 0');
  }
  return config;
}

/**
 * Keys a resumed run may change: how long it runs and how often it evaluates, logs and
 * saves. Everything else — the model's shape and the optimizer's settings — continues as
 * the checkpoint's run was (as nanoGPT's resume does for the model). `lrDecayIters` is here
 * so a longer run can keep its schedule's end: with 0 (= maxIters) the cosine stretches to
 * the new maxIters.
 */
export const RESUME_OVERRIDABLE_KEYS = [
  'maxIters',
  'lrDecayIters',
  'evalInterval',
  'evalIters',
  'logInterval',
  'checkpointInterval',
  'keepCheckpoints',
] as const satisfies ReadonlyArray<keyof TrainConfig>;

/** A key given for a resumed run that differs from the checkpoint's and may not change. */
export interface ResumeConflict {
  readonly key: keyof TrainConfig;
  readonly checkpoint: unknown;
  readonly given: unknown;
}

/** A resume asked to change what the checkpoint's run fixes (its model or optimizer settings). */
export class ResumeConfigError extends TrainConfigError {
  override name = 'ResumeConfigError';
  constructor(
    message: string,
    /** The checkpoint's config.json. */
    file: string,
    readonly conflicts: readonly ResumeConflict[],
  ) {
    super(message, { file, rule: 'resume-override' });
  }
}

/**
 * The config a resumed run uses: the checkpoint's saved settings, then those of `overrides`
 * that may change (RESUME_OVERRIDABLE_KEYS). Other keys are accepted when they equal the
 * checkpoint's (so the original command line plus `resume` works) and refused otherwise.
 * `source` names the checkpoint's config.json in errors.
 */
export function resumeTrainConfig(
  saved: Readonly<Record<string, unknown>>,
  overrides: Readonly<Record<string, unknown>>,
  source: string,
): TrainConfig {
  let base: TrainConfig;
  try {
    base = resolveTrainConfig({ ...saved });
  } catch (error) {
    throw new TrainConfigError(`${source}: "train": ${(error as Error).message}`, {
      file: source,
      cause: error,
    });
  }
  resolveTrainConfig({ ...overrides }); // unknown keys and wrong types, as for a fresh run
  const overridable = new Set<string>(RESUME_OVERRIDABLE_KEYS);
  const conflicts: ResumeConflict[] = Object.entries(overrides)
    .filter(([key, value]) => !overridable.has(key) && base[key as keyof TrainConfig] !== value)
    .map(([key, given]) => ({
      key: key as keyof TrainConfig,
      checkpoint: base[key as keyof TrainConfig],
      given,
    }));
  if (conflicts.length > 0) {
    const model = new Set<string>(['preset', ...MODEL_KEYS]);
    const listed = (list: ResumeConflict[]) =>
      list
        .map(
          (c) =>
            `${c.key} (checkpoint ${JSON.stringify(c.checkpoint)}, now ${JSON.stringify(c.given)})`,
        )
        .join(', ');
    const shape = conflicts.filter((c) => model.has(c.key));
    const training = conflicts.filter((c) => !model.has(c.key));
    const parts = [
      ...(shape.length > 0
        ? [`the checkpoint's model differs from this run's in ${listed(shape)}`]
        : []),
      ...(training.length > 0 ? [`its training settings differ in ${listed(training)}`] : []),
    ];
    throw new ResumeConfigError(
      `${source}: cannot resume — ${parts.join('; ')}. A resumed run keeps the checkpoint's model and training settings; only ${RESUME_OVERRIDABLE_KEYS.join(', ')} may change. Start a new run (another outDir) to change the others.`,
      source,
      conflicts,
    );
  }
  return resolveTrainConfig({ ...base, ...overrides });
}

/** The model config a train config describes, for a given vocabulary size. */
export function modelConfigOf(config: TrainConfig, vocabSize: number): GPTConfig {
  const model: Record<string, unknown> = { vocabSize };
  for (const key of MODEL_KEYS) model[key] = config[key];
  // The exact GELU is the model's default: its config (and every file holding it) stays as
  // it was before the option existed.
  if (config.activation === 'gelu') delete model['activation'];
  return resolveGPTConfig(model, config.preset);
}
