// Node entry of @minigpt/errors: directory creation and cleanup that keep file-system errors
// accurate for describeFileSystemError.
export { makeDirectory, removeCreatedDirectories, withPath } from './directories.js';
