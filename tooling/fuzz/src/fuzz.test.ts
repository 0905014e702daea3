// The CI slice of `pnpm fuzz`: 5,000 mutated inputs per reader, each accepted or refused
// with a typed error (MinigptError) — never another exception — and none slow enough to
// count as a hang. Same targets, mutators and case generators as the full run.
import { describe, expect, it } from 'vitest';
import { runCase } from './engine.mjs';
import { TARGETS } from './targets.mjs';

const CASES = 5_000;
const SEED = 20_261_129;

describe('fuzzed readers (CI slice)', () => {
  for (const target of Object.values(TARGETS)) {
    it(`${target.what}: ${CASES} mutated inputs, no untyped error, no hang`, async () => {
      const context = await target.prepare();
      const counts = { accepted: 0, typed: 0, other: 0 };
      const findings: string[] = [];
      let slowest = 0;
      for (let index = 0; index < CASES; index++) {
        const result = await runCase(target as never, context as never, SEED, index);
        counts[result.outcome as keyof typeof counts]++;
        slowest = Math.max(slowest, result.ms);
        if (result.outcome === 'other' && findings.length < 3) {
          findings.push(
            `case ${index}: ${String((result.error as Error)?.stack ?? result.error).slice(0, 400)}`,
          );
        }
      }
      expect(findings).toEqual([]);
      expect(counts.other).toBe(0);
      expect(slowest).toBeLessThan(2000);
      // The mutations reach past the first check: some inputs pass, most are refused.
      expect(counts.typed).toBeGreaterThan(CASES / 2);
      expect(counts.accepted + counts.typed).toBe(CASES);
    }, 300_000);
  }
});
