// Benchmark: what int8 weights cost in quality. A seed-size model (6 layers, 256 wide, 8 heads,
// block 128, vocab 65 char) trained a few hundred iterations on tinyshakespeare with the CLI,
// exported with `--quantize int8`; then both graphs (onnx/model.onnx, onnx/model_quantized.onnx)
// run over the whole validation split in windows of blockSize tokens (logits for every position;
// num_logits_to_keep 0 where the graph has that input), and the mean cross-entropy of each next
// token is compared. Goal (issue 11): int8 within 0.02 of float32. The float32 graph is the
// reference, measured in the same run.
// Usage:
//   node bench/int8-quality.bench.mjs                      prepare + train (~300 iters) + export
//   node bench/int8-quality.bench.mjs --checkpoint DIR     skip training: export DIR's checkpoint
//   [--data DIR] prepared data (else prepared from --text into the work directory)
//   [--text FILE] default <repo>/../shared/data/tinyshakespeare.txt
//   [--work DIR] keep data, run and export there (default: a temporary directory, removed)
//   [--max-iters N] [--batch-size N] training (default 300 and 4: ≤ ~10 min on 2 cores)
//   [--max-windows N] evaluate only the first N windows
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { cpuName, utcMinute } from '@minigpt/bench-support';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const cli = join(repoRoot, 'packages/cli/dist/bin.js');
const { values: args } = parseArgs({
  options: {
    checkpoint: { type: 'string' },
    data: { type: 'string' },
    text: { type: 'string', default: resolve(repoRoot, '../shared/data/tinyshakespeare.txt') },
    work: { type: 'string' },
    'max-iters': { type: 'string', default: '300' },
    'batch-size': { type: 'string', default: '4' },
    'max-windows': { type: 'string' },
  },
});
const ortVersion = createRequire(import.meta.url)('onnxruntime-node/package.json').version;

const work = args.work ? resolve(args.work) : mkdtempSync(join(tmpdir(), 'minigpt-int8-quality-'));
const minigpt = (...commandArgs) => {
  console.log(`$ minigpt ${commandArgs.join(' ')}`);
  const result = spawnSync(process.execPath, [cli, ...commandArgs], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`minigpt ${commandArgs[0]} failed`);
};

try {
  const data = args.data ? resolve(args.data) : join(work, 'data');
  if (!args.data && !existsSync(join(data, 'val.bin')))
    minigpt('prepare', '--input', args.text, '--out', data, '--no-progress');
  let checkpoint = args.checkpoint ? resolve(args.checkpoint) : undefined;
  let trainedHere;
  if (!checkpoint) {
    checkpoint = join(work, 'run');
    const begin = performance.now();
    // The seed preset's shape with a learning rate for a short run; no dropout; one evaluation
    // and one checkpoint at the end.
    minigpt(
      'train',
      '--data',
      data,
      '--out',
      checkpoint,
      '--preset=seed',
      `--maxIters=${args['max-iters']}`,
      `--batchSize=${args['batch-size']}`,
      '--learningRate=0.001',
      '--minLr=0.0001',
      '--warmupIters=20',
      '--dropout=0',
      '--logInterval=25',
      `--evalInterval=${args['max-iters']}`,
      '--evalIters=10',
      `--checkpointInterval=${args['max-iters']}`,
      '--no-progress',
    );
    trainedHere = (performance.now() - begin) / 60_000;
  }
  const exportDir = join(work, 'export');
  minigpt(
    'export',
    '--checkpoint',
    checkpoint,
    '--out',
    exportDir,
    '--quantize',
    'int8',
    '--force',
  );

  const manifest = JSON.parse(readFileSync(join(exportDir, 'minigpt.json'), 'utf8'));
  const { nLayer, nHead, nEmbd, blockSize, vocabSize } = manifest.model;
  const headSize = nEmbd / nHead;
  const meta = JSON.parse(readFileSync(join(data, 'meta.json'), 'utf8'));
  if (meta.dtype !== 'uint16' || meta.vocabSize !== vocabSize)
    throw new Error(`${data}: expected uint16 tokens of vocab ${vocabSize}, got ${meta.dtype}`);
  const bytes = readFileSync(join(data, 'val.bin'));
  const tokens = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2); // little-endian, as written
  // Non-overlapping windows of blockSize inputs, each with its blockSize next-token targets.
  let windows = Math.floor((tokens.length - 1) / blockSize);
  if (args['max-windows']) windows = Math.min(windows, Number(args['max-windows']));

  const evaluate = async (file) => {
    const session = await ort.InferenceSession.create(join(exportDir, file), {
      graphOptimizationLevel: 'all',
    });
    const batch = 16;
    let lossSum = 0;
    let count = 0;
    const argmaxes = new Uint8Array(windows * blockSize);
    const begin = performance.now();
    for (let first = 0; first < windows; first += batch) {
      const rows = Math.min(batch, windows - first);
      const ids = new BigInt64Array(rows * blockSize); // (B, T)
      const positions = new BigInt64Array(rows * blockSize); // (B, T)
      for (let row = 0; row < rows; row++) {
        const start = (first + row) * blockSize;
        for (let t = 0; t < blockSize; t++) {
          ids[row * blockSize + t] = BigInt(tokens[start + t]);
          positions[row * blockSize + t] = BigInt(t);
        }
      }
      const feeds = {
        input_ids: new ort.Tensor('int64', ids, [rows, blockSize]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(rows * blockSize).fill(1n), [
          rows,
          blockSize,
        ]),
        position_ids: new ort.Tensor('int64', positions, [rows, blockSize]),
      };
      // Logits for every position: what a graph without the input gives, 0 where it has it.
      const keepName = manifest.inputs.numLogitsToKeep;
      if (keepName) feeds[keepName] = new ort.Tensor('int64', BigInt64Array.of(0n), []); // ()
      for (let layer = 0; layer < nLayer; layer++) {
        for (const kind of ['key', 'value']) {
          feeds[`past_key_values.${layer}.${kind}`] = new ort.Tensor(
            'float32',
            new Float32Array(0),
            [rows, nHead, 0, headSize],
          ); // (B, nh, 0, hs): no cache
        }
      }
      const logits = (await session.run(feeds)).logits.data; // (B, T, V)
      for (let row = 0; row < rows; row++) {
        const start = (first + row) * blockSize;
        for (let t = 0; t < blockSize; t++) {
          const offset = (row * blockSize + t) * vocabSize;
          let max = -Infinity;
          let best = 0;
          for (let v = 0; v < vocabSize; v++) {
            if (logits[offset + v] > max) {
              max = logits[offset + v];
              best = v;
            }
          }
          let sum = 0;
          for (let v = 0; v < vocabSize; v++) sum += Math.exp(logits[offset + v] - max);
          const target = tokens[start + t + 1];
          lossSum += Math.log(sum) + max - logits[offset + target]; // −log softmax[target]
          count++;
          argmaxes[(first + row) * blockSize + t] = best;
        }
      }
    }
    const seconds = (performance.now() - begin) / 1000;
    await session.release();
    return { loss: lossSum / count, count, argmaxes, seconds };
  };

  const fp32 = await evaluate(manifest.files.model);
  const int8 = await evaluate(manifest.files.modelQuantized);
  let agree = 0;
  for (let i = 0; i < fp32.argmaxes.length; i++) if (fp32.argmaxes[i] === int8.argmaxes[i]) agree++;
  const size = (file) => statSync(join(exportDir, file)).size;
  const difference = int8.loss - fp32.loss;

  console.log('');
  console.log(
    `int8 quality — ${utcMinute()}, ${cpuName()}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node ${ortVersion}; load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `model: ${nLayer} layers, ${nEmbd} wide, ${nHead} heads, block ${blockSize}, vocab ${vocabSize}; checkpoint ${checkpoint}${trainedHere ? ` (trained here: ${args['max-iters']} iterations, batch ${args['batch-size']}, ${trainedHere.toFixed(1)} min)` : ''}`,
  );
  console.log(
    `validation: ${fp32.count.toLocaleString('en-US')} next-token predictions (${windows} windows of ${blockSize} tokens of val.bin), logits for every position`,
  );
  console.log('');
  console.log('| graph | file | size | mean cross-entropy (val) | eval time |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const [label, file, result] of [
    ['float32', manifest.files.model, fp32],
    ['int8', manifest.files.modelQuantized, int8],
  ]) {
    console.log(
      `| ${label} | ${file} | ${(size(file) / 1e6).toFixed(2)} MB | ${result.loss.toFixed(4)} | ${result.seconds.toFixed(1)} s |`,
    );
  }
  console.log('');
  console.log(
    `int8 − float32: ${difference >= 0 ? '+' : ''}${difference.toFixed(5)} nats [goal |Δ| ≤ 0.02: ${Math.abs(difference) <= 0.02 ? 'met' : 'MISSED'}]; int8 file ${(size(manifest.files.modelQuantized) / size(manifest.files.model)).toFixed(2)}× the float32 one; greedy (argmax) next token identical at ${((100 * agree) / fp32.argmaxes.length).toFixed(2)} % of positions`,
  );
} finally {
  if (!args.work) rmSync(work, { recursive: true, force: true });
}
