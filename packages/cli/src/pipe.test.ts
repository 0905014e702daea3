// Output read by a command that stops early (`| head`): the pipe closes under the CLI, which
// must end quietly, as Unix tools do, not crash with an unhandled EPIPE.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from './test-helpers.js';

describe('minigpt writing into a closed pipe', () => {
  it('ends without an error when the reader stops after one line', () => {
    // `head -1` exits after the first line it reads; the runs after the first (each starts
    // long after head has gone) write their help into the closed pipe. pipefail makes the
    // exit status the last run's: an EPIPE crash would make it 1.
    const script = `set -o pipefail; for i in 1 2 3; do node ${JSON.stringify(BIN)} prepare --help; done | head -1`;
    const result = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 60_000 });
    expect(result.stdout).toBe('Usage: minigpt prepare [options]\n');
    expect(result.stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(result.status).toBe(0);
  });
});
