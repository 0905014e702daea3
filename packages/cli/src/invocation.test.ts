import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliInvocation, commandLine, shellQuote, type InvocationContext } from './invocation.js';

/** A file system holding just `files`. */
function context(packageDir: string, cwd: string, files: string[] = []): InvocationContext {
  return { packageDir, cwd, exists: (path) => files.includes(path) };
}

describe('cliInvocation: how a printed command starts', () => {
  it('is npx minigpt where the package is installed (under node_modules)', () => {
    expect(cliInvocation(context('/app/node_modules/minigpt', '/app'))).toBe('npx minigpt');
    // pnpm's layout, and a run from elsewhere: npx then finds the global or cached bin.
    expect(
      cliInvocation(
        context('/app/node_modules/.pnpm/minigpt@1.0.0/node_modules/minigpt', '/app/sub'),
      ),
    ).toBe('npx minigpt');
  });

  it('is npx minigpt anywhere in a clone whose root node_modules/.bin links the CLI', () => {
    const files = ['/repo/pnpm-workspace.yaml', '/repo/node_modules/.bin/minigpt'];
    expect(cliInvocation(context('/repo/packages/cli', '/repo', files))).toBe('npx minigpt');
    expect(cliInvocation(context('/repo/packages/cli', '/repo/examples/x', files))).toBe(
      'npx minigpt',
    );
  });

  it("is node and the bin's path where npx would not find it", () => {
    // A clone installed before the root linked the CLI: the path from the current directory.
    const clone = ['/repo/pnpm-workspace.yaml'];
    expect(cliInvocation(context('/repo/packages/cli', '/repo/data', clone))).toBe(
      'node ../packages/cli/bin/minigpt.js',
    );
    // Outside the clone (a sibling whose name starts like it, too): the absolute path.
    const linked = [...clone, '/repo/node_modules/.bin/minigpt'];
    for (const cwd of ['/tmp/run', '/repo-other'])
      expect(cliInvocation(context('/repo/packages/cli', cwd, linked))).toBe(
        `node ${join('/repo/packages/cli', 'bin', 'minigpt.js')}`,
      );
    // Not a clone of this repository (no workspace file above the package).
    expect(cliInvocation(context('/opt/minigpt/packages/cli', '/opt/minigpt'))).toBe(
      'node /opt/minigpt/packages/cli/bin/minigpt.js',
    );
  });

  it('quotes a path with spaces', () => {
    expect(cliInvocation(context('/my work/packages/cli', '/tmp'))).toBe(
      "node '/my work/packages/cli/bin/minigpt.js'",
    );
  });
});

describe('commandLine', () => {
  it('quotes each argument that a shell would split or expand', () => {
    expect(
      commandLine(['sample', '--checkpoint', 'out/my run', '--prompt', "it's $5"], 'npx minigpt'),
    ).toBe(`npx minigpt sample --checkpoint 'out/my run' --prompt 'it'\\''s $5'`);
    expect(shellQuote('data/moby-dick-bpe1024')).toBe('data/moby-dick-bpe1024');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('\n')).toBe("'\n'");
  });
});
