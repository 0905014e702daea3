// Public entry of the minigpt CLI package, for running the commands from code.
export { createProgram, main } from './program.js';
export { CliError } from './errors.js';
export { DATASETS, DEFAULT_DATASET, SHAKESPEARE, type BuiltInDataset } from './datasets.js';
