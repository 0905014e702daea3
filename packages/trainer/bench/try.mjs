import { Trainer } from '@minigpt/trainer';
import { rmSync } from 'node:fs';
rmSync('/tmp/train-out', { recursive: true, force: true });
const trainer = await Trainer.create({
  dataDir: process.argv[2] ?? '/tmp/ts-out',
  outDir: '/tmp/train-out',
  config: { maxIters: 40, logInterval: 10, evalInterval: 20, evalIters: 5, checkpointInterval: 20 },
});
for await (const e of trainer.run()) {
  if (e.type === 'step' && e.iter % 10 !== 0) continue;
  console.log(JSON.stringify(e).slice(0, 200));
}
