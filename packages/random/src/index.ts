// Public entry of @minigpt/random.
export { Random, type RandomState } from './random.js';
