import { loadModel } from '@minigpt/runner-node';
import { generate } from '@minigpt/runtime';
const m = await loadModel('/tmp/seed-export', { intraOpThreads: Number(process.argv[2] ?? 2) });
const orig = m.session.forward.bind(m.session);
let fwd = 0,
  calls = 0,
  big = 0,
  gaps = 0,
  lastEnd = 0;
m.session.forward = async (ids, st) => {
  const t = performance.now();
  if (lastEnd) gaps += t - lastEnd;
  const r = await orig(ids, st);
  const e = performance.now();
  lastEnd = e;
  fwd += e - t;
  calls++;
  if (ids.length > 1) big += e - t;
  return r;
};
for (let r = 0; r < 4; r++) {
  fwd = 0;
  calls = 0;
  big = 0;
  gaps = 0;
  lastEnd = 0;
  const t = performance.now();
  const g = generate(m.session, m.tokenizer, '\n', { maxNewTokens: 500, seed: r, temperature: 1 });
  await g.text();
  const total = performance.now() - t;
  console.log(
    `total ${total.toFixed(0)} ms, forward ${fwd.toFixed(0)} (${(fwd / calls).toFixed(3)}/call, prefills ${big.toFixed(0)}), gaps ${gaps.toFixed(0)} ms, ${g.stats.tokensPerSec.toFixed(0)} tok/s`,
  );
}
