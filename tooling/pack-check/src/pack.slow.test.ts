// Packs each public package, installs the tarballs with npm into a temporary project outside
// the workspace, then imports, runs and type-checks them there. Catches what only shows up
// after publishing: missing files, a wrong exports map, types that point nowhere, a
// `workspace:` range left in a manifest.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const packagesDir = join(root, 'packages');
const publicPackages = readdirSync(packagesDir)
  .map((dir) => join(packagesDir, dir))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ manifest }) => manifest.private !== true);

const work = mkdtempSync(join(tmpdir(), 'minigpt-pack-check-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const SNIPPET = `
import { BpeTokenizer, CharTokenizer, tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import { binarize, TokenDataset, type DataMeta } from '@minigpt/data';
import { Random } from '@minigpt/random';
import { DATASETS, main } from 'minigpt';
import { GPT_PRESETS } from '@minigpt/model';
import { resolveTrainConfig } from '@minigpt/trainer';
import { exportModel } from '@minigpt/export-onnx';
import { generate, parseManifest } from '@minigpt/runtime';
import { loadModel } from '@minigpt/runner-node';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const char: Tokenizer = CharTokenizer.fromText('hello world');
const bpe = BpeTokenizer.train('hello world, hello there. '.repeat(20), 270);
const reloaded = tokenizerFromJSON(JSON.parse(JSON.stringify(bpe.toJSON())));
const dir = mkdtempSync(join(tmpdir(), 'snippet-'));
writeFileSync(join(dir, 'in.txt'), 'to be or not to be\\n'.repeat(30));
const { meta }: { meta: DataMeta } = await binarize({ input: join(dir, 'in.txt'), outDir: join(dir, 'out') });
const train = await TokenDataset.open(join(dir, 'out'), 'train');
const batch = train.sampleBatch(new Random(1), 2, 8);
const runsCli: boolean = typeof main === 'function';
const wired: boolean = [exportModel, generate, parseManifest, loadModel].every((f) => typeof f === 'function');
console.log(JSON.stringify({
  char: char.decode(char.encode('hello')),
  bpe: reloaded.decode(reloaded.encode('hello there')),
  vocabSize: meta.vocabSize,
  batch: batch.x.length,
  datasets: [...DATASETS.keys()],
  runsCli,
  wired,
  seedLayers: GPT_PRESETS.seed.nLayer,
  babyBatch: resolveTrainConfig({ preset: 'baby' }).batchSize,
}));
`;

describe('published packages', () => {
  it('install from their tarballs, import as ESM, run, and type-check', () => {
    expect(publicPackages.map(({ manifest }) => manifest.name).sort()).toEqual(
      expect.arrayContaining([
        '@minigpt/data',
        '@minigpt/random',
        '@minigpt/tokenizer',
        '@minigpt/model',
        '@minigpt/trainer',
        '@minigpt/export-onnx',
        '@minigpt/runtime',
        '@minigpt/runner-node',
        'minigpt',
      ]),
    );
    const tarballs: Record<string, string> = {};
    for (const { dir, manifest } of publicPackages) {
      expect(existsSync(join(dir, 'dist')), `${manifest.name} is not built: run pnpm build`).toBe(
        true,
      );
      const output = execFileSync('pnpm', ['pack', '--pack-destination', work], {
        cwd: dir,
        encoding: 'utf8',
      });
      const tarball = output.trim().split('\n').pop()!.trim();
      tarballs[manifest.name] = resolve(work, tarball);
    }
    const project = join(work, 'app');
    execFileSync('mkdir', ['-p', project]);
    const fileSpecs = Object.fromEntries(
      Object.entries(tarballs).map(([name, path]) => [name, `file:${path}`]),
    );
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({
        name: 'app',
        private: true,
        type: 'module',
        dependencies: fileSpecs,
        // Unpublished versions: make inter-package dependencies resolve to the tarballs too.
        overrides: fileSpecs,
      }),
    );
    execFileSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
      {
        cwd: project,
        stdio: 'pipe',
        // onnxruntime-node's install script would fetch CUDA files; its CPU build is in the package.
        env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
      },
    );
    for (const name of Object.keys(tarballs)) {
      const installed = JSON.parse(
        readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8'),
      );
      expect(JSON.stringify(installed)).not.toMatch(/workspace:/);
      expect(existsSync(join(project, 'node_modules', name, 'src', 'index.ts'))).toBe(true);
      expect(
        readdirSync(join(project, 'node_modules', name, 'src')).some((f) => f.endsWith('.test.ts')),
      ).toBe(false);
    }

    // Run: the snippet as plain ESM JavaScript (its few type annotations stripped).
    const javascript = SNIPPET.replace(', type Tokenizer', '')
      .replace(', type DataMeta', '')
      .replace(': Tokenizer', '')
      .replace(': { meta: DataMeta }', '')
      .replace(': boolean', '')
      .replace(': boolean', '');
    writeFileSync(join(project, 'snippet.mjs'), javascript);
    const printed = JSON.parse(
      execFileSync('node', ['snippet.mjs'], { cwd: project, encoding: 'utf8' }),
    );
    expect(printed).toEqual({
      char: 'hello',
      bpe: 'hello there',
      vocabSize: 8, // t o b e r n, space, newline
      batch: 16,
      datasets: ['moby-dick', 'shakespeare'],
      runsCli: true,
      wired: true,
      seedLayers: 6,
      babyBatch: 12,
    });

    // Type-check the TypeScript snippet against the installed .d.ts files.
    writeFileSync(join(project, 'snippet.ts'), SNIPPET);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          // tfjs's own .d.ts files do not pass strict checks; ours are checked when built.
          skipLibCheck: true,
          typeRoots: [join(root, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['snippet.ts'],
      }),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      execFileSync('node', [tsc, '-p', project], { cwd: project, encoding: 'utf8' });
    } catch (error) {
      throw new Error(
        `the snippet does not type-check against the published types:\n${(error as { stdout?: string }).stdout}`,
      );
    }

    // The bin works from the installed package.
    const help = execFileSync(
      join(project, 'node_modules', '.bin', 'minigpt'),
      ['prepare', '--help'],
      {
        encoding: 'utf8',
      },
    );
    expect(help).toMatch(/--tokenizer <kind>/);
  }, 240_000);
});
