// Public entry of @minigpt/errors: the base class of minigpt's typed errors, file-system
// failures described for users, and schema checks that name the broken rule. No dependencies.
export { MinigptError, isMinigptError, type MinigptErrorOptions } from './errors.js';
export { FileSystemError, describeFileSystemError } from './file-system.js';
export { checkSchema, preview, type StandardResult, type StandardSchema } from './schema.js';
