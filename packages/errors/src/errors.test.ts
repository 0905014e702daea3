import { describe, expect, it } from 'vitest';
import { MinigptError, isMinigptError } from './index.js';

class DamagedFileError extends MinigptError {
  override name = 'DamagedFileError';
}

describe('MinigptError', () => {
  it('carries the file and the rule, and its subclasses are MinigptErrors', () => {
    const error = new DamagedFileError('a.json: bad', { file: 'a.json', rule: 'json' });
    expect(error).toBeInstanceOf(MinigptError);
    expect(error).toBeInstanceOf(DamagedFileError);
    expect(error).toBeInstanceOf(Error);
    expect([error.name, error.message, error.file, error.rule]).toEqual([
      'DamagedFileError',
      'a.json: bad',
      'a.json',
      'json',
    ]);
    expect(isMinigptError(error)).toBe(true);
  });

  it('is told apart from plain errors and from sibling classes', () => {
    class OtherError extends MinigptError {}
    expect(new TypeError('x')).not.toBeInstanceOf(MinigptError);
    expect(isMinigptError(new RangeError('x'))).toBe(false);
    expect(isMinigptError(null)).toBe(false);
    expect(isMinigptError('MinigptError')).toBe(false);
    expect(new OtherError('x')).not.toBeInstanceOf(DamagedFileError);
  });

  it('recognises an error made by a second copy of the package (same brand symbol)', () => {
    const foreign = new Error('from another copy');
    Object.defineProperty(foreign, Symbol.for('@minigpt/errors.MinigptError'), { value: true });
    expect(foreign).toBeInstanceOf(MinigptError);
    expect(foreign).not.toBeInstanceOf(DamagedFileError);
  });

  it('keeps the cause', () => {
    const cause = new Error('root');
    expect(new MinigptError('wrapped', { cause }).cause).toBe(cause);
  });
});

describe('the browser-safe core', () => {
  it('imports no Node APIs outside src/node', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const dir = new URL('.', import.meta.url);
    const core = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.includes('.test.'));
    expect(core.length).toBeGreaterThanOrEqual(4);
    for (const file of core)
      expect(readFileSync(new URL(file, dir), 'utf8')).not.toMatch(/from 'node:/);
  });
});
