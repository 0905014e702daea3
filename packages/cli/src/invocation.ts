// The command lines the CLI suggests ("sample: npx minigpt sample --checkpoint out/run", "Run
// `npx minigpt prepare`…") must run where they are printed, so they start with the way to run
// this CLI from the current directory:
// - installed in a project (this package lies under node_modules): `npx minigpt` finds the
//   project's node_modules/.bin/minigpt (or a global install);
// - in a clone of the repository: the root package.json depends on the CLI, so after
//   `pnpm install` `npx minigpt` finds the root node_modules/.bin/minigpt from anywhere in
//   the clone. Outside the clone, or before that link exists, only the path to the bin works.
import { existsSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface InvocationContext {
  /** This package's directory (packages/cli in a clone, …/node_modules/minigpt installed). */
  readonly packageDir: string;
  /** Where the suggested command will be typed. */
  readonly cwd: string;
  readonly exists: (path: string) => boolean;
}

const NPX = 'npx minigpt';

function defaultContext(): InvocationContext {
  return {
    packageDir: fileURLToPath(new URL('..', import.meta.url)),
    cwd: process.cwd(),
    exists: existsSync,
  };
}

/** How to run this CLI from `cwd`: `npx minigpt`, or `node <path to its bin>`. */
export function cliInvocation(context: InvocationContext = defaultContext()): string {
  const { packageDir, cwd, exists } = context;
  if (packageDir.split(/[\\/]/).includes('node_modules')) return NPX;
  // A clone: packages/cli under the root that holds pnpm-workspace.yaml.
  const repoRoot = resolve(packageDir, '..', '..');
  const inClone = isInside(cwd, repoRoot) && exists(join(repoRoot, 'pnpm-workspace.yaml'));
  if (inClone && exists(join(repoRoot, 'node_modules', '.bin', 'minigpt'))) return NPX;
  const bin = join(packageDir, 'bin', 'minigpt.js');
  return `node ${shellQuote(inClone ? relative(cwd, bin) : bin)}`;
}

/** A command line to print: this CLI's invocation, then `args` quoted for a POSIX shell. */
export function commandLine(args: readonly string[], invocation: string = cliInvocation()): string {
  return [invocation, ...args.map(shellQuote)].join(' ');
}

/** A path as the user would type it from the current directory. */
export function shownPath(path: string, cwd: string = process.cwd()): string {
  return relative(cwd, path) || '.';
}

/** `arg` as one word for sh/bash/zsh: as is when it is plain, else single-quoted. */
export function shellQuote(arg: string): string {
  if (/^[\w@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

function isInside(path: string, dir: string): boolean {
  const fromDir = relative(dir, path);
  return (
    fromDir === '' || (fromDir !== '..' && !fromDir.startsWith(`..${sep}`) && !isAbsolute(fromDir))
  );
}
