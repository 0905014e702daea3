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
 * Files that start first, in this order. The web demo's e2e (150 s: its model build is
 * 2,000 `baby` iterations on one thread) was the last file to run and ran alone at the end;
 * first, it overlaps short tests on the other core. Then three long files that start no
 * browser, on that other core while the demo's e2e runs; by the time they are done the demo's
 * e2e is too, and the train-in-browser e2e (90 s) starts — it had started at 519 s and ended
 * the suite at 634 s. The two browser e2e tests never run at once, and no more than these
 * start early: starting every slow file first made them contend (742 s instead of 652 s).
 * The rest keep vitest's order.
 */
const EARLY_FILES = [
  'examples/web-demo/test/e2e.slow.test.ts',
  'tooling/pack-check/src/pack.slow.test.ts',
  'packages/cli/src/train.test.ts',
  'tooling/pack-check/src/example-readmes.slow.test.ts',
  'examples/train-in-browser/test/e2e.slow.test.ts',
];

class LongFilesEarlySequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification) =>
      EARLY_FILES.findIndex((early) => file.moduleId.endsWith(early));
    const early = sorted.filter((file) => rank(file) >= 0).sort((a, b) => rank(a) - rank(b));
    return [...early, ...sorted.filter((file) => rank(file) < 0)];
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
    sequence: { sequencer: LongFilesEarlySequencer },
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
