// Every next step the quick start's commands print runs where it is printed. The minigpt lines
// of scripts/quickstart.sh run here as written, with a tiny model and a few steps, in a
// directory inside the clone (where a user runs them); each "<command>: …" line they print
// is then run through a shell as printed and must succeed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN } from './test-helpers.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const QUICKSTART = join(REPO, 'scripts', 'quickstart.sh');

/** Training settings that make any train command a few seconds: appended, so they win. */
const TINY_TRAIN = [
  '--nLayer=1',
  '--nHead=2',
  '--nEmbd=16',
  '--blockSize=16',
  '--batchSize=2',
  '--maxIters=2',
  '--warmupIters=0',
  '--evalInterval=2',
  '--evalIters=1',
  '--checkpointInterval=2',
  '--backend=cpu',
  '--no-progress',
].join(' ');

/** A next-step line: the command it names, then the command line to run it. */
const HINT = /^(prepare|train|sample|export|generate): (.+)$/gm;

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function workDir(parent: string): string {
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, 'minigpt-hints-'));
  dirs.push(dir);
  return dir;
}

/** Runs a bash script in `cwd`; its stdout and stderr together, as a terminal shows them. */
function bash(script: string, cwd: string): { status: number | null; output: string } {
  const result = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], {
    cwd,
    env: { ...process.env, MINIGPT_CACHE_DIR: join(cwd, '.cache') },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** The hints in `output`; a train hint runs with the tiny settings. */
function hintsIn(output: string): Array<{ command: string; line: string }> {
  return [...output.matchAll(HINT)].map(([, command, line]) => ({
    command: command!,
    line: command === 'train' ? `${line} ${TINY_TRAIN}` : line!,
  }));
}

describe('next-step hints', () => {
  it("the quick start's hints run where they are printed, in a clone", () => {
    // The quick start's minigpt commands (scripts/quickstart.sh runs from the repository
    // root), continued lines joined.
    const commands = readFileSync(QUICKSTART, 'utf8')
      .replaceAll('\\\n', ' ')
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('#'))
      .map((line) => /(?:^|\s)(minigpt (?:prepare|train|sample|export|generate)\b.*)$/.exec(line))
      .filter((match) => match !== null)
      .map((match) => match[1]!);
    expect(
      commands.map((command) => command.split(' ')[1]),
      `the minigpt lines of ${QUICKSTART}`,
    ).toEqual(expect.arrayContaining(['prepare', 'train', 'sample', 'export', 'generate']));

    // Inside the clone, in an ignored folder; the examples (the train config) as at the root.
    const cwd = workDir(join(REPO, '.tmp'));
    symlinkSync(join(REPO, 'examples'), join(cwd, 'examples'));
    const minigpt = `minigpt() { if [ "$1" = train ]; then node ${BIN} "$@" ${TINY_TRAIN}; else node ${BIN} "$@"; fi; }`;
    const hints: Array<{ command: string; line: string }> = [];
    for (const command of commands) {
      const run = bash(`${minigpt}\n${command}`, cwd);
      expect(run.status, `${command}\n${run.output}`).toBe(0);
      hints.push(...hintsIn(run.output));
    }
    // prepare → train, train → sample, export → generate.
    expect(hints.map((hint) => hint.command).sort()).toEqual(['generate', 'sample', 'train']);
    expect(
      existsSync(join(REPO, 'node_modules', '.bin', 'minigpt')),
      'the root package.json depends on minigpt, so install links node_modules/.bin/minigpt: run pnpm install',
    ).toBe(true);
    for (const hint of hints) {
      expect(hint.line).toMatch(/^npx minigpt /);
      const run = bash(hint.line, cwd);
      expect(run.status, `${hint.line}\n${run.output}`).toBe(0);
    }
  }, 600_000);

  it('outside a clone, a hint runs the bin by its path', () => {
    const cwd = workDir(tmpdir());
    const prepare = bash(`node ${BIN} prepare`, cwd);
    expect(prepare.status, prepare.output).toBe(0);
    const [hint] = hintsIn(prepare.output);
    expect(hint?.line).toMatch(/^node \/\S+\/bin\/minigpt\.js train --data data\/moby-dick /);
    const train = bash(hint!.line, cwd);
    expect(train.status, train.output).toBe(0);
    const next = hintsIn(train.output);
    expect(next.map((step) => step.command)).toEqual(['sample']);
    expect(next[0]!.line).toMatch(
      /^node \/\S+\/bin\/minigpt\.js sample --checkpoint out\/moby-dick$/,
    );
    const sample = bash(next[0]!.line, cwd);
    expect(sample.status, sample.output).toBe(0);
  }, 120_000);
});
