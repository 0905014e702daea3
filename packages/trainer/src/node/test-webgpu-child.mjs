// Child process of webgpu.test.ts: trains `nano` for 10 iterations on the backend given and
// prints the start event's backend choice and the losses as JSON. A child, so the Vulkan
// driver's environment applies and Dawn's threads end with it.
import process from 'node:process';
import { startTraining } from '../../dist/node/index.js';

const [dataDir, outDir, backend] = process.argv.slice(2);
const trainer = await startTraining({
  dataDir,
  outDir,
  backend,
  config: { preset: 'nano', maxIters: 10, evalInterval: 1000, checkpointInterval: 1000 },
});
const losses = [];
let start;
for await (const event of trainer.run()) {
  if (event.type === 'start') start = event;
  if (event.type === 'step') losses.push(event.loss);
}
process.stdout.write(
  `${JSON.stringify({ backend: start.backend, skipped: start.skippedBackends, losses })}\n`,
);
process.exit(0);
