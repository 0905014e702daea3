// One vitest run for the whole monorepo: a project per package, each reading the other
// packages' TypeScript sources through the `@minigpt/source` export condition (no build).
import { readdirSync, existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Tests tagged slow (`*.slow.test.ts`: the example pages in Chromium, packing, killed
 * training runs) start first, so the two workers overlap them with the short ones instead
 * of ending the run on one long file. Within each group, vitest's own order.
 */
class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const slow = (file: TestSpecification) => file.moduleId.endsWith('.slow.test.ts');
    return [...sorted.filter(slow), ...sorted.filter((file) => !slow(file))];
  }
}

const repoRoot = fileURLToPath(new URL('.', import.meta.url));
const packageDirs = ['packages', 'tooling', 'examples'].flatMap((group) =>
  existsSync(join(repoRoot, group))
    ? readdirSync(join(repoRoot, group))
        .map((name) => `${group}/${name}`)
        .filter((dir) => existsSync(join(repoRoot, dir, 'package.json')))
    : [],
);

const sourceConditions = ['@minigpt/source', ...defaultServerConditions];

export default defineConfig({
  resolve: { conditions: sourceConditions },
  ssr: { resolve: { conditions: sourceConditions, externalConditions: ['@minigpt/source'] } },
  test: {
    // In CI, also write a JSON report: .ci/run prints its pass/fail counts.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: process.env.CI ? { json: '.vitest-results.json' } : undefined,
    // Slow tests (`*.slow.test.ts`: packing, large files) get room; fast ones stay fast.
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Much of the suite waits on child processes (the CLI, training children, Chromium, vite
    // builds): vitest's default of cores − 1 workers ran it one file at a time on 2 cores.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: SlowFirstSequencer },
    projects: packageDirs.map((dir) => ({
      extends: true,
      test: {
        name: dir.split('/')[1],
        root: join(repoRoot, dir),
        include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      },
    })),
  },
});
