import * as ort from 'onnxruntime-node';
const nh = 8,
  hs = 32,
  L = 6;
async function bench(threads, spin) {
  const s = await ort.InferenceSession.create('/tmp/seed-export/model.onnx', {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    ...(spin === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  });
  const run = async () => {
    let past = null;
    const t = performance.now();
    for (let P = 0; P < 127; P++) {
      const f = { input_ids: new ort.Tensor('int64', BigInt64Array.from([5n]), [1, 1]) };
      for (let i = 0; i < L; i++)
        for (const k of ['key', 'value'])
          f[`past_key_values.${i}.${k}`] =
            past?.[`present.${i}.${k}`] ??
            new ort.Tensor('float32', new Float32Array(0), [1, nh, 0, hs]);
      past = await s.run(f);
    }
    return (performance.now() - t) / 127;
  };
  await run();
  await run();
  const r = [await run(), await run(), await run()].sort((a, b) => a - b);
  console.log(
    `threads ${threads} spin ${spin}: decode chain ${r[1].toFixed(3)} ms/token (${(1000 / r[1]).toFixed(0)} tok/s)`,
  );
}
await bench(1, true);
await bench(2, true);
await bench(2, false);
await bench(1, true);
await bench(2, true);
