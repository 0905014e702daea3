// Public entry of @minigpt/checkpoint: the checkpoint format — names, pointer files, the
// schemas of config.json and state.json, and encoding/reading a checkpoint's five files
// from any storage — and a run's storage (RunStorage) in memory or the browser's OPFS, with
// the run-level checkpoint helpers over any of them. No TensorFlow.js and no Node APIs: it
// runs in browsers too. Directories on disk are in '@minigpt/checkpoint/node'.
export { CheckpointError, RunLockedError } from './errors.js';
export {
  CHECKPOINTS_DIR,
  CHECKPOINT_FILES,
  CHECKPOINT_FORMAT_VERSION,
  POINTER_MAX_BYTES,
  POINTER_NAMES,
  checkpointName,
  isCheckpointName,
  parsePointer,
  type CheckpointFile,
  type PointerName,
} from './layout.js';
export {
  parseCheckpointConfig,
  parseCheckpointState,
  type CheckpointConfig,
  type CheckpointState,
} from './schema.js';
export {
  JSON_FILE_LIMIT,
  TOKENIZER_FILE_LIMIT,
  checkpointFileLimits,
  encodeCheckpoint,
  memorySource,
  readCheckpoint,
  type CheckpointContents,
  type CheckpointSource,
  type DecodedCheckpoint,
  type OptimizerMoments,
  type ReadCheckpointOptions,
} from './codec.js';
export {
  LOCK_FILE,
  TEMP_PREFIX,
  checkStorageName,
  type RunLock,
  type RunStorage,
} from './storage.js';
export { memoryStorage } from './memory-storage.js';
export {
  opfsStorage,
  type OpfsDirectoryHandle,
  type OpfsFileHandle,
  type OpfsHandle,
  type OpfsStorageOptions,
  type OpfsWritable,
  type WebLocks,
} from './opfs-storage.js';
export {
  pruneRunCheckpoints,
  readRunCheckpoint,
  readRunPointer,
  removeRunTemps,
  runCheckpointSource,
  setRunPointer,
  writeRunCheckpoint,
} from './run.js';
