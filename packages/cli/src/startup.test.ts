// Only the commands that run a model in TensorFlow.js (train, sample) load it, and only when
// they run: prepare, export, generate and every --help start without it (importing it alone
// takes about 0.6 s). A module hook in the CLI's process reports each module it resolves from
// @tensorflow/, so the test sees what the process loaded, not what the code says.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, useTempDir } from './test-helpers.js';

const MARK = 'module-trace:';
const hooks = `import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (resolved.url.includes('/@tensorflow/')) writeSync(2, '${MARK} ' + resolved.url + '\\n');
  return resolved;
}`;
const dataUrl = (code: string) => `data:text/javascript,${encodeURIComponent(code)}`;
const traceTensorFlow = [
  '--import',
  dataUrl(`import { register } from 'node:module'; register(${JSON.stringify(dataUrl(hooks))});`),
];

/** The @tensorflow/ modules the command's process resolved. */
function tensorFlowModules(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith(MARK));
}

describe('what a command loads', () => {
  const tempDir = useTempDir();

  it('prepare, export, generate and every --help run without TensorFlow.js', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'text.txt'), 'To be, or not to be, that is the question.\n'.repeat(40));
    const commands: Array<{ args: string[]; status: number }> = [
      ...[[], ['prepare'], ['train'], ['sample'], ['export'], ['generate']].map((command) => ({
        args: [...command, '--help'],
        status: 0,
      })),
      { args: ['prepare', '--input', 'text.txt', '--out', 'data'], status: 0 },
      // Refusals too: a missing checkpoint, a missing export.
      { args: ['export', '--checkpoint', 'missing', '--out', 'exported'], status: 1 },
      { args: ['generate', '--model', 'missing'], status: 1 },
    ];
    for (const { args, status } of commands) {
      const result = runCli(args, { cwd, nodeArgs: traceTensorFlow });
      expect({ args, status: result.status, loaded: tensorFlowModules(result.stderr) }).toEqual({
        args,
        status,
        loaded: [],
      });
    }
  });

  it('sample loads it when it runs (the check can fail)', () => {
    const cwd = tempDir();
    const result = runCli(['sample', '--checkpoint', 'missing'], {
      cwd,
      nodeArgs: traceTensorFlow,
    });
    expect(result.status).toBe(1);
    expect(tensorFlowModules(result.stderr).join('\n')).toContain('/@tensorflow/tfjs-core/');
  });
});
