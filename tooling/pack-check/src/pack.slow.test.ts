// What the root README's "Use the packages" section tells a user to do, done as a user would:
// each public package is packed (`pnpm pack`), then, in a fresh directory outside the
// workspace, the section's own blocks run: its setup block (`npm init -y`, the
// `"type": "module"` step, the install command with ONNXRUNTIME_NODE_INSTALL=skip), its
// `app.js`, and its run command, whose output must have the shape of the README's output block
// (the numbers and the sampled text vary). Changing the README changes this test. Then every
// package the section lists is installed there too, imported, run and type-checked, and the
// `minigpt` bin runs with `npx`. Catches what only shows up after publishing: missing files, a
// wrong exports map, types that point nowhere, a `workspace:` range left in a manifest.
//
// What the test changes in the README's setup block, and only this: the package names of its
// `npm i` command become the tarballs packed here (this commit, not the registry's), and, just
// before it, `npm pkg set overrides...` points the @minigpt packages they depend on at their
// tarballs too (version 0.0.0 is not published). npm's own settings come from the environment
// (prefer the local cache, no audit or fund, errors only): the README's command line is run as
// written. ONNXRUNTIME_NODE_INSTALL is removed from the environment, so the README's variable is
// what keeps the install offline.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { markedBlock, shellCommands } from './markdown.js';

const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const packagesDir = join(root, 'packages');
const publicPackages = readdirSync(packagesDir)
  .map((dir) => join(packagesDir, dir))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ manifest }) => manifest.private !== true);
const publicNames = new Set<string>(publicPackages.map(({ manifest }) => manifest.name));

const readmePath = join(root, 'README.md');
const readme = readFileSync(readmePath, 'utf8');
const block = (name: string) => markedBlock(readme, name, readmePath).body;

const work = mkdtempSync(join(tmpdir(), 'minigpt-pack-check-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The environment of every command: npm quiet and cache-first; no ONNXRUNTIME_NODE_INSTALL. */
const userEnv: NodeJS.ProcessEnv = {
  ...process.env,
  npm_config_prefer_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
  npm_config_loglevel: 'error',
};
delete userEnv['ONNXRUNTIME_NODE_INSTALL'];
delete userEnv['ONNXRUNTIME_NODE_INSTALL_CUDA'];
// The variables of the npx/pnpm that started vitest describe the workspace's root package and
// its script: a user's shell in a new directory has none of them.
for (const key of Object.keys(userEnv))
  if (
    /^npm_(package|lifecycle)_/.test(key) ||
    ['npm_config_local_prefix', 'npm_command', 'INIT_CWD', 'PNPM_PACKAGE_NAME'].includes(key)
  )
    delete userEnv[key];

/** Runs a bash script; on failure, throws with everything it printed. */
function bash(script: string, cwd: string): string {
  return bashOutput(script, cwd).stdout;
}

function bashOutput(script: string, cwd: string): { stdout: string; stderr: string } {
  const result = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
    cwd,
    env: userEnv,
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (result.status !== 0)
    throw new Error(
      `exit ${result.status ?? result.signal} from:\n${script}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
  return { stdout: result.stdout, stderr: result.stderr };
}

/** The command with each public package name replaced by its tarball. */
function withTarballs(command: string, tarballs: Record<string, string>): string {
  return command
    .split(/\s+/)
    .map((word) => tarballs[word] ?? word)
    .join(' ');
}

/**
 * A line of the README's output block as a pattern: its numbers and its quoted text (the
 * model's sample) may differ, the rest must be as printed.
 */
function outputPattern(line: string): RegExp {
  const variable = /("(?:[^"\\]|\\.)*")|(\d+(?:[.,]\d+)*)/g;
  let pattern = '';
  let last = 0;
  for (const match of line.matchAll(variable)) {
    pattern += escapeRegExp(line.slice(last, match.index));
    pattern += match[1] ? '"(?:[^"\\\\]|\\\\.)*"' : '\\d+(?:[.,]\\d+)*';
    last = match.index + match[0].length;
  }
  return new RegExp(`^${pattern}${escapeRegExp(line.slice(last))}$`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const SNIPPET = `
import { BpeTokenizer, CharTokenizer, tokenizerFromJSON, type Tokenizer } from '@minigpt/tokenizer';
import { prepareText, type DataMeta } from '@minigpt/data';
import { binarize, openTokenDataset } from '@minigpt/data/node';
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
const train = await openTokenDataset(join(dir, 'out'), 'train');
const batch = train.sampleBatch(new Random(1), 2, 8);
// The same text prepared in memory (the browser-safe root) gives the same batch.
const inMemory = await prepareText('to be or not to be\\n'.repeat(30));
const sameBatch: boolean = inMemory.train.sampleBatch(new Random(1), 2, 8).x.join() === batch.x.join();
const runsCli: boolean = typeof main === 'function';
const wired: boolean = [exportModel, generate, parseManifest, loadModel].every((f) => typeof f === 'function');
console.log(JSON.stringify({
  char: char.decode(char.encode('hello')),
  bpe: reloaded.decode(reloaded.encode('hello there')),
  vocabSize: meta.vocabSize,
  batch: batch.x.length,
  sameBatch,
  datasets: [...DATASETS.keys()],
  runsCli,
  wired,
  seedLayers: GPT_PRESETS.seed.nLayer,
  babyBatch: resolveTrainConfig({ preset: 'baby' }).batchSize,
}));
`;

function packAll(): Record<string, string> {
  const tarballs: Record<string, string> = {};
  for (const { dir, manifest } of publicPackages) {
    expect(existsSync(join(dir, 'dist')), `${manifest.name} is not built: run pnpm build`).toBe(
      true,
    );
    const packed = spawnSync('pnpm', ['pack', '--pack-destination', work], {
      cwd: dir,
      encoding: 'utf8',
    });
    if (packed.status !== 0)
      throw new Error(`pnpm pack of ${manifest.name} failed:\n${packed.stdout}${packed.stderr}`);
    const output = packed.stdout;
    const tarball = output.trim().split('\n').pop()!.trim();
    tarballs[manifest.name] = resolve(work, tarball);
  }
  return tarballs;
}

describe('the root README\'s "Use the packages", done as a user', () => {
  it('sets up a project, runs its app (train, export, generate), then every package', () => {
    expect([...publicNames].sort()).toEqual(
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
    const tarballs = packAll();
    const fileSpecs = Object.fromEntries(
      Object.entries(tarballs).map(([name, path]) => [name, `file:${path}`]),
    );

    // The README's claim about CommonJS: in what `npm init -y` makes, the app does not start.
    const app = block('app.js');
    const commonjs = join(work, 'commonjs');
    mkdirSync(commonjs);
    bash('npm init -y >/dev/null', commonjs);
    writeFileSync(join(commonjs, 'app.js'), app);
    const cjsRun = spawnSync(process.execPath, ['app.js'], { cwd: commonjs, encoding: 'utf8' });
    expect(cjsRun.status).toBe(1);
    expect(cjsRun.stderr).toMatch(/SyntaxError: Cannot use import statement outside a module/);

    // The setup block, as written, but for the tarballs.
    const setup = shellCommands(block('setup'));
    const installs = setup.filter((command) => /\bnpm (i|install)\b/.test(command));
    expect(installs, 'the setup block has one npm install').toHaveLength(1);
    expect(installs[0], 'the install works offline').toMatch(
      /^ONNXRUNTIME_NODE_INSTALL=skip npm (i|install) /,
    );
    const named = installs[0]!.split(/\s+/).filter((word) => /^(@minigpt\/|minigpt$)/.test(word));
    for (const name of named)
      expect(publicNames, `${name}: not a package of this repo`).toContain(name);
    const overrides = Object.entries(fileSpecs)
      .filter(([name]) => !named.includes(name))
      .map(([name, spec]) => `'overrides.${name}=${spec}'`)
      .join(' ');
    const script = setup
      .flatMap((command) =>
        command === installs[0]
          ? [`npm pkg set ${overrides}`, withTarballs(command, tarballs)]
          : [command],
      )
      .concat('pwd')
      .join('\n');
    const user = join(work, 'user');
    mkdirSync(user);
    const project = bash(script, user).trim().split('\n').pop()!;
    expect(project.startsWith(user), `the setup block ends in its project: ${project}`).toBe(true);
    expect(JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')).type).toBe('module');

    // The app and its run command, as written.
    writeFileSync(join(project, 'app.js'), app);
    const { stdout: printed, stderr } = bashOutput(shellCommands(block('run')).join('\n'), project);
    // The README's output block is all the user sees: no warnings on stderr besides.
    expect(stderr).toBe('');
    const expected = block('output').split('\n');
    const lines = printed.trimEnd().split('\n');
    expect(lines.length, printed).toBe(expected.length);
    expected.forEach((line, i) =>
      expect(lines[i], `output line ${i + 1}`).toMatch(outputPattern(line)),
    );
    // What the shape cannot say: it learned, and the export wrote text after the prompt.
    const losses = [...printed.matchAll(/val loss ([\d.]+)/g)].map((match) => Number(match[1]));
    expect(losses.length).toBeGreaterThanOrEqual(2);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! - 0.5);
    const prompt = /\bprompt = '([^']+)'/.exec(app)?.[1];
    expect(prompt, 'app.js declares `const prompt = ...`').toBeDefined();
    const sample = JSON.parse(/"(?:[^"\\]|\\.)*"\s*$/.exec(printed)![0]) as string;
    expect(sample.startsWith(prompt!)).toBe(true);
    expect(sample.length).toBeGreaterThanOrEqual(prompt!.length + 40);

    // Every package the section lists, installed into the same project: one `npm i` instead of
    // the README's one per line, to keep the test short. Each is then a direct dependency from
    // its tarball, which meets the others' ranges, so the overrides go (npm refuses an override
    // of a direct dependency).
    const listed = shellCommands(block('install-each')).map((command) => {
      const words = command.split(/\s+/);
      expect(words.slice(0, 2), command).toEqual(['npm', 'i']);
      return words[2]!;
    });
    expect([...listed].sort(), 'the README lists an npm i of each public package').toEqual(
      [...publicNames].sort(),
    );
    bash(
      'npm pkg delete overrides\n' +
        `ONNXRUNTIME_NODE_INSTALL=skip ${withTarballs(`npm i ${listed.join(' ')}`, tarballs)}`,
      project,
    );
    for (const name of listed) {
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
      .replace(': boolean', '')
      .replace(': boolean', '');
    writeFileSync(join(project, 'snippet.mjs'), javascript);
    expect(JSON.parse(bash('node snippet.mjs', project))).toEqual({
      char: 'hello',
      bpe: 'hello there',
      vocabSize: 8, // t o b e r n, space, newline
      batch: 16,
      sameBatch: true,
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

    // The bin, as the README says to start it in an app.
    expect(bash('npx minigpt prepare --help', project)).toMatch(/--tokenizer <kind or path>/);
  }, 420_000);
});
