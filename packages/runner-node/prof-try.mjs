import { loadModel } from '@minigpt/runner-node';
const model = await loadModel('/tmp/nb/seed', { dtype: 'q8' });
const prompts = Array.from({ length: 16 }, (_, i) => ['ROMEO:\n', 'First Citizen:\nBefore we', 'JULIET:\nO Romeo, Romeo!', 'KING:\n'][i % 4] + 'x'.repeat(i % 5));
for (let r = 0; r < 12; r++) {
  const t0 = performance.now();
  const b = model.generateBatch(prompts, { maxNewTokens: 100, temperature: 0 });
  await b.texts();
  const ms = performance.now() - t0;
  console.log(`round ${r}: ${(1600 / ms * 1000).toFixed(0)} tok/s`);
}
await model.dispose();
