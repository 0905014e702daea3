import { describe, expect, it } from 'vitest';
import { loadAverage, median, medianRange } from './index.js';

describe('bench summaries', () => {
  it('median: the middle value, or the mean of the middle two; the input left as it was', () => {
    const values = [9, 1, 5];
    expect(median(values)).toBe(5);
    expect(values).toEqual([9, 1, 5]);
    expect(median([4, 1, 3, 10])).toBe(3.5);
    expect(median([2])).toBe(2);
    // Numbers, not strings: 10 sorts after 9.
    expect(median([10, 9, 1])).toBe(9);
    expect(() => median([])).toThrow(RangeError);
  });

  it('medianRange writes "median (min – max)" with the decimals or the formatter given', () => {
    expect(medianRange([2.5, 1.25, 4])).toBe('3 (1 – 4)');
    expect(medianRange([2.5, 1.25, 4], 2)).toBe('2.50 (1.25 – 4.00)');
    expect(medianRange([1200, 900], (value) => `${value / 100}`)).toBe('10.5 (9 – 12)');
  });

  it('loadAverage names the three load averages', () => {
    expect(loadAverage()).toMatch(/^load average \d+\.\d\d, \d+\.\d\d, \d+\.\d\d$/);
  });
});
