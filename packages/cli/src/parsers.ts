// Argument parsers shared by the commands: each turns a string into a checked number or
// says what was expected (commander prints it with the option's name).
import { MAX_INTRA_OP_THREADS, MAX_SPIN_MICROSECONDS } from '@minigpt/runner-node';
import { InvalidArgumentError } from 'commander';

function parsed(value: string, ok: (n: number) => boolean, expected: string): number {
  const n = Number(value);
  if (value.trim() === '' || !ok(n)) throw new InvalidArgumentError(`expected ${expected}.`);
  return n;
}

export const integer = (value: string) => parsed(value, Number.isInteger, 'an integer');
export const positiveInteger = (value: string) =>
  parsed(value, (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
export const nonNegative = (value: string) => parsed(value, (n) => n >= 0, 'a number ≥ 0');
export const probability = (value: string) =>
  parsed(value, (n) => n > 0 && n <= 1, 'a number in (0, 1]');
export const fraction = (value: string) =>
  parsed(value, (n) => n > 0 && n < 1, 'a number between 0 and 1, such as 0.1');

/** `generate --threads`: adaptive, default (onnxruntime's pool) or a whole number of threads. */
export const intraOpThreads = (value: string): number | 'adaptive' | 'default' => {
  if (value === 'adaptive' || value === 'default') return value;
  return parsed(
    value,
    (n) => Number.isInteger(n) && n >= 1 && n <= MAX_INTRA_OP_THREADS,
    `adaptive, default, or a whole number of threads from 1 to ${MAX_INTRA_OP_THREADS}`,
  );
};

/** `generate --spinning`: off, on (onnxruntime's own spinning) or whole microseconds. */
export const spinBound = (value: string): boolean | number => {
  if (value === 'off') return false;
  if (value === 'on') return true;
  return parsed(
    value,
    (n) => Number.isInteger(n) && n >= 1 && n <= MAX_SPIN_MICROSECONDS,
    `off, on, or whole microseconds from 1 to ${MAX_SPIN_MICROSECONDS}`,
  );
};
