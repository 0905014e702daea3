// The example READMEs' commands are the commands this test runs: every fenced `sh` block of
// examples/*/README.md, command by command, in the README's order, each README in a sandbox
// of its own. Changing a README's commands changes what runs here.
//
// How a command runs, and why:
// - As written, from the sandbox: a temporary directory holding the root package.json and
//   links to the repo's packages/, examples/ and node_modules/. `pnpm minigpt …` and the
//   README's relative paths work there as at the repo root, and the data/ and out/ the commands
//   write land in the sandbox, never in the checkout (where a user's own out/shakespeare would
//   make `train` refuse to start).
// - One substitution: a `minigpt train` command gets `--max-iters=2 --eval-interval=2
//   --eval-iters=1` appended (the last value of a key wins). The README's runs take minutes
//   (CPU config) to most of a day (the seed's config on CPU); two iterations still load the
//   config file, the data and the backend, train, evaluate, and save the checkpoint that the
//   next command (`sample`) reads.
// - The sandbox holds `input.txt`, a small stand-in text: the README's offline advice is to
//   copy tinyshakespeare's `input.txt` from elsewhere. It also holds `models/gpt2`, a stand-in
//   for the Hugging Face `gpt2` repository's files the fine-tune commands read (548 MB of
//   weights this offline test cannot get): a small random GPT-2 in the same layout
//   (config.json, model.safetensors, tokenizer.json) with 256 positions, so the fine-tune
//   config's block size fits.
// - Nothing reaches the network: MINIGPT_DATASET_MIRROR points at a closed local port and
//   MINIGPT_CACHE_DIR into the sandbox. A command listed in DOWNLOADS must then fail at its
//   download, and at nothing before it (its flags parse and its dataset exists); the CLI's own
//   tests check the download itself against a local mirror.
// - A command listed in NOT_RUN_HERE is not run, for the reason given there. pnpm must still
//   find the script it names (`pnpm [--filter PKG] run` lists it), so a renamed package or
//   script fails here.
// Any other command must exit 0. An entry of either table that names no README command fails
// the test, so the tables follow the READMEs.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { huggingFaceTokenizer } from '@minigpt/export-onnx';
import { GPT, type GPTConfig } from '@minigpt/model';
import { gpt2DirectoryFiles } from '@minigpt/model/huggingface';
import { BpeTokenizer } from '@minigpt/tokenizer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fencedBlocks, isShell, shellCommands } from './markdown.js';

const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const readmes = readdirSync(join(root, 'examples'))
  .map((example) => `examples/${example}/README.md`)
  .filter((readme) => existsSync(join(root, readme)));

/** Commands that need the network, by README: they must fail at the download only. */
const DOWNLOADS: Record<string, Record<string, string>> = {
  'examples/shakespeare-char/README.md': {
    'pnpm minigpt prepare --dataset shakespeare --out data/shakespeare':
      'downloads tinyshakespeare from raw.githubusercontent.com',
  },
};

/** Commands not run here, by README, with the reason. */
const NOT_RUN_HERE: Record<string, Record<string, string>> = {
  'examples/web-demo/README.md': {
    'pnpm build':
      'the repo build: `pnpm test` runs it (turbo run build) before vitest starts, and running ' +
      'it again here would rewrite dist/ under the tests that are reading it',
    'pnpm --filter @minigpt/example-web-demo model':
      "trains the demo's model (about 2 minutes, once; cached in examples/web-demo/.model-work/): " +
      'the web-demo e2e test runs the same script (scripts/build-model.mjs) when the model is ' +
      'missing, and two trainings at once would slow the whole suite',
    'pnpm --filter @minigpt/example-web-demo build':
      "vite build into the demo's dist/, which the e2e test builds and serves at the same time",
    'pnpm --filter @minigpt/example-web-demo preview':
      'a server that runs until stopped, on a fixed port; the e2e test serves the built demo ' +
      'with vite preview and drives it in Chromium',
  },
  'examples/train-in-browser/README.md': {
    'pnpm --filter @minigpt/example-train-in-browser dev':
      'a dev server that runs until stopped; the e2e test serves the production build instead',
    'pnpm --filter @minigpt/example-train-in-browser build':
      "vite build into the page's dist/, which the e2e test builds and serves at the same time",
    'pnpm --filter @minigpt/example-train-in-browser preview':
      'a server that runs until stopped, on a fixed port; the e2e test serves the built page ' +
      'with vite preview and drives it in Chromium',
    'pnpm --filter @minigpt/example-train-in-browser test:e2e':
      'the same e2e test the suite runs (about 90 s): running it twice would only double that',
    'pnpm --filter @minigpt/example-train-in-browser bench':
      'a benchmark of several minutes that trains in Chromium and in Node; its figures are in ' +
      'the README with the machine and date',
  },
};

/** What a `minigpt train` command gets appended: two iterations, one eval batch per split. */
const SHORT_TRAINING = '--max-iters=2 --eval-interval=2 --evalIters=1';

const STAND_IN_TEXT =
  'ROMEO:\nBut soft, what light through yonder window breaks?\n' +
  'It is the east, and Juliet is the sun.\n\nJULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n\n';

/** The files of the stand-in `models/gpt2` directory, made once. */
let standInGpt2: Map<string, Uint8Array>;
beforeAll(async () => {
  const tokenizer = BpeTokenizer.train(STAND_IN_TEXT.repeat(20), 300, {
    pattern: 'gpt2',
    specialTokens: ['<|endoftext|>'],
  });
  const config: GPTConfig = {
    vocabSize: tokenizer.vocabSize,
    blockSize: 256,
    nLayer: 2,
    nHead: 2,
    nEmbd: 32,
    dropout: 0,
    bias: true,
    activation: 'gelu_tanh',
  };
  const model = GPT.create(config, { log: null });
  standInGpt2 = gpt2DirectoryFiles(config, await model.weightData());
  model.dispose();
  standInGpt2.set(
    'tokenizer.json',
    new TextEncoder().encode(JSON.stringify(huggingFaceTokenizer(tokenizer.toJSON()))),
  );
});

let closedMirror: string;
beforeAll(async () => {
  // A loopback port nobody listens on: a download from it is refused at once, as offline.
  const probe = createServer();
  await new Promise<void>((listening) => probe.listen(0, '127.0.0.1', listening));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((closed) => probe.close(() => closed()));
  closedMirror = `http://127.0.0.1:${port}`;
});

const sandboxes: string[] = [];
afterAll(() => {
  for (const dir of sandboxes) rmSync(dir, { recursive: true, force: true });
});

function makeSandbox(): string {
  const dir = mkdtempSync(join(tmpdir(), 'minigpt-readme-'));
  sandboxes.push(dir);
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  for (const link of ['packages', 'examples', 'node_modules'])
    symlinkSync(join(root, link), join(dir, link));
  writeFileSync(join(dir, 'input.txt'), STAND_IN_TEXT.repeat(200));
  mkdirSync(join(dir, 'models', 'gpt2'), { recursive: true });
  for (const [name, bytes] of standInGpt2) writeFileSync(join(dir, 'models', 'gpt2', name), bytes);
  return dir;
}

function run(command: string, cwd: string, env: NodeJS.ProcessEnv) {
  const result = spawnSync('bash', ['-euo', 'pipefail', '-c', command], {
    cwd,
    env,
    encoding: 'utf8',
    timeout: 180_000,
  });
  return {
    status: result.status,
    stderr: result.stderr,
    output: `$ ${command}\nexit ${result.status ?? result.signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
  };
}

/** `pnpm [--filter PKG] run`'s listing of scripts, once per filter. */
const listings = new Map<string, { status: number | null; text: string }>();

/** `pnpm [--filter PKG] SCRIPT` → whether pnpm lists SCRIPT for that package. */
function pnpmListsScript(command: string): { listed: boolean; output: string } {
  const words = command.split(/\s+/);
  expect(words[0], `${command}: not a pnpm script command`).toBe('pnpm');
  const filter = words[1] === '--filter' ? words.slice(1, 3) : [];
  const script = words[1 + filter.length];
  expect(words, `${command}: expected pnpm [--filter PKG] SCRIPT`).toHaveLength(2 + filter.length);
  const key = filter.join(' ');
  if (!listings.has(key)) {
    const listing = spawnSync('pnpm', [...filter, 'run'], { cwd: root, encoding: 'utf8' });
    listings.set(key, { status: listing.status, text: listing.stdout + listing.stderr });
  }
  const { status, text } = listings.get(key)!;
  // With --filter, pnpm lists the package's scripts, then the root's under their own heading.
  const own = text.split(/^Commands of the root workspace project/m)[0]!;
  return {
    listed: status === 0 && new RegExp(`^  ${escapeRegExp(script!)}$`, 'm').test(own),
    output: text,
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe.each(readmes)('%s', (readme) => {
  const commands = fencedBlocks(readFileSync(join(root, readme), 'utf8'))
    .filter(isShell)
    .flatMap((block) => shellCommands(block.body));
  const downloads = DOWNLOADS[readme] ?? {};
  const notRun = NOT_RUN_HERE[readme] ?? {};

  it('lists in its tables only commands the README has', () => {
    for (const command of [...Object.keys(downloads), ...Object.keys(notRun)])
      expect(commands, `${readme} no longer has: ${command}`).toContain(command);
  });

  it('runs each command of its sh blocks, in order', () => {
    const sandbox = makeSandbox();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      MINIGPT_DATASET_MIRROR: closedMirror,
      MINIGPT_CACHE_DIR: join(sandbox, '.cache'),
    };
    for (const command of commands) {
      if (command in notRun) {
        const { listed, output } = pnpmListsScript(command);
        expect(listed, `${command}: pnpm does not find its script\n${output}`).toBe(true);
        continue;
      }
      if (command in downloads) {
        const result = run(command, sandbox, env);
        expect(result.status, result.output).toBe(1);
        expect(result.stderr, result.output).toMatch(/could not download/);
        continue;
      }
      const ran = /\bminigpt train\b/.test(command) ? `${command} ${SHORT_TRAINING}` : command;
      const result = run(ran, sandbox, env);
      expect(result.status, result.output).toBe(0);
    }
  }, 300_000);
});
