// Public entry of @minigpt/random: the seeded generator and its typed error.
export { Random, RandomError, type RandomState } from './random.js';
