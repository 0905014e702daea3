// Node entry of @minigpt/checkpoint: a run's storage in a directory on disk (directoryStorage,
// a RunStorage), and the directory functions under it — checkpoints in directories, pointer
// files, atomic file writes, and the one-run-per-directory lock.
export { directoryStorage, type DirectoryStorage } from './storage.js';
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
  type DirectoryLock,
  /** acquireRunLock's lock under its earlier name: a DirectoryLock (a core RunLock and more). */
  type DirectoryLock as RunLock,
} from './lock.js';
