// '@minigpt/trainer/config': what describes a run, without TensorFlow.js: the training
// configuration and its presets, the run-time arithmetic, the backends' names and what to
// install for each. A command line that only describes or checks a run (its --help, a config
// file's errors) loads this in a fraction of the time the full entry takes.
export {
  DEFAULT_TRAIN_CONFIG,
  RESUME_OVERRIDABLE_KEYS,
  ResumeConfigError,
  TRAIN_PRESETS,
  TrainConfigError,
  modelConfigOf,
  resolveTrainConfig,
  resumeTrainConfig,
  type ResumeConflict,
  type TrainConfig,
} from './config.js';
export {
  ALWAYS_AFFORDED_EVAL_SECONDS,
  MIN_CAPPED_EVAL_ITERS,
  affordableEvalIters,
  countEvaluations,
  estimateRunTime,
  type RunTimeEstimate,
  type RunTimingInput,
} from './estimate.js';
export { BACKEND_ORDER, installHint, type BackendName } from './backend-names.js';
