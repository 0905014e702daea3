// Node entry of @minigpt/checkpoint: checkpoints in directories on disk, pointer files,
// atomic file writes, and the one-run-per-directory lock.
export {
  directorySource,
  newRunId,
  pruneCheckpoints,
  readCheckpointDir,
  readPointer,
  removeLeftoverTemps,
  resolveCheckpointDir,
  setPointer,
  writeCheckpointDir,
} from './directory.js';
export { TEMP_PREFIX, readBoundedFile, writeFileAtomic } from './files.js';
export {
  DirectoryLockedError,
  LOCK_FILE,
  acquireRunLock,
  type AcquireLockOptions,
  type RunLock,
} from './lock.js';
