import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  cpuName,
  describeCpu,
  goalVerdict,
  loadAverage,
  median,
  medianRange,
  ratioAgainstGoal,
  utcMinute,
} from './index.js';

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

  it('ratioAgainstGoal says whether the median meets the goal and in how many rounds', () => {
    expect(ratioAgainstGoal([1.5, 2.5, 1.9], 2)).toBe(
      '1.90 (1.50 – 2.50)× [goal ≥ 2×: MISSED at the median, 1 of 3 rounds]',
    );
    expect(ratioAgainstGoal([4, 4.2, 3.9, 5], 4)).toBe(
      '4.10 (3.90 – 5.00)× [goal ≥ 4×: met at the median, 3 of 4 rounds]',
    );
  });

  it('goalVerdict judges the median and counts the rounds that meet the goal, either way round', () => {
    expect(goalVerdict([14.8, 15.8, 18.6], (mbps) => mbps >= 30)).toBe(
      'MISSED at the median, 0 of 3 rounds',
    );
    expect(goalVerdict([142, 147, 320], (mb) => mb < 300)).toBe('met at the median, 2 of 3 rounds');
  });

  it('utcMinute writes the date and time in UTC to the minute', () => {
    expect(utcMinute(new Date(Date.UTC(2026, 11, 2, 16, 2, 59)))).toBe('2026-12-02 16:02 UTC');
    expect(utcMinute()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
  });

  it('loadAverage names the three load averages', () => {
    expect(loadAverage()).toMatch(/^load average \d+\.\d\d, \d+\.\d\d, \d+\.\d\d$/);
  });

  it('describeCpu adds the family, model and widest vector set that cpuinfo gives', () => {
    const zen5 = [
      'processor\t: 0',
      'vendor_id\t: AuthenticAMD',
      'cpu family\t: 26',
      'model\t\t: 2',
      'model name\t: AMD EPYC',
      'flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni',
      '',
      'processor\t: 1',
      'cpu family\t: 26',
      'model\t\t: 2',
    ].join('\n');
    expect(describeCpu('AMD EPYC', zen5)).toBe('AMD EPYC (family 26 model 2, AVX-512)');
    const zen3 = 'cpu family\t: 25\nmodel\t\t: 1\nflags\t\t: sse2 avx avx2 fma\n';
    expect(describeCpu('AMD EPYC ', zen3)).toBe('AMD EPYC (family 25 model 1, AVX2)');
    // Arm: no family line, features under "Features".
    const arm = 'processor\t: 0\nFeatures\t: fp asimd evtstrm aes\nCPU part\t: 0xd0c\n';
    expect(describeCpu('Neoverse-N1', arm)).toBe('Neoverse-N1 (NEON)');
    // No cpuinfo (not Linux), or an empty model name.
    expect(describeCpu('Apple M2', '')).toBe('Apple M2');
    expect(describeCpu('', '')).toBe('unknown CPU');
  });

  it("cpuName starts with this machine's model name", () => {
    expect(cpuName().startsWith(cpus()[0]?.model.trim() || 'unknown CPU')).toBe(true);
  });
});
