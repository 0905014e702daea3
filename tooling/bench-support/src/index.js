// How the benches load a core: one place, so that the training and the generation benches'
// "busy core" figures mean the same load.
import { spawn } from 'node:child_process';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Runs `body` while a child process (`node -e 'for(;;){}'`) keeps one core busy, and kills
 * the child after, whether `body` returns or throws. `body` starts once the child's Node
 * start-up is over (300 ms), so it meets the loop alone.
 */
export async function withBusyCore(body) {
  const busy = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => {
    busy.once('spawn', resolve);
    busy.once('error', reject);
  });
  await sleep(300);
  try {
    return await body();
  } finally {
    const exited = new Promise((resolve) => busy.once('exit', resolve));
    busy.kill('SIGKILL');
    await exited;
  }
}
