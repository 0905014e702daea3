// Builds the demo's model with the repo's own CLI, offline: prepare the default corpus,
// train a small model briefly, export it to public/model/ (float32 and int8 graphs, in the
// Hugging Face layout: onnx/model.onnx, onnx/model_quantized.onnx, minigpt.json, …).
// Skips work already done: a trained run is exported again when public/model/ holds an
// export of another format version (or none); --force trains again.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXPORT_FILES, EXPORT_FORMAT_VERSION } from '@minigpt/export-onnx';

const demo = fileURLToPath(new URL('..', import.meta.url));
const cli = join(demo, '..', '..', 'packages', 'cli', 'dist', 'bin.js');
const work = join(demo, '.model-work');
const out = join(demo, 'public', 'model');
const force = process.argv.includes('--force');
const minigpt = (...args) =>
  execFileSync(process.execPath, [cli, ...args], { cwd: demo, stdio: 'inherit' });

/** true when public/model/ holds a complete export in the format the runners read. */
function exportIsCurrent() {
  try {
    const manifest = JSON.parse(readFileSync(join(out, EXPORT_FILES.manifest), 'utf8'));
    return (
      manifest.formatVersion === EXPORT_FORMAT_VERSION &&
      [manifest.files.model, manifest.files.modelQuantized, manifest.files.vocab].every(
        (file) => typeof file === 'string' && existsSync(join(out, file)),
      )
    );
  } catch {
    return false;
  }
}

const trainedRuns = () =>
  existsSync(work)
    ? readdirSync(work)
        .filter((name) => name.startsWith('run-'))
        .sort()
    : [];

if (!existsSync(cli)) throw new Error(`${cli} is missing: run pnpm build at the repo root first`);
if (force || !exportIsCurrent()) {
  if (force || trainedRuns().length === 0) {
    mkdirSync(work, { recursive: true });
    minigpt('prepare', '--out', join(work, 'data'), '--force');
    minigpt(
      'train',
      '--data',
      join(work, 'data'),
      '--out',
      join(work, 'run-' + Date.now()),
      '--preset=nano',
      '--nLayer=2',
      '--nEmbd=64',
      '--blockSize=64',
      '--maxIters=400',
      '--evalInterval=400',
      '--evalIters=2',
      '--no-progress',
      '--backend=wasm',
    );
  }
  // --force replaces the export there, including files of an older format (model.onnx,
  // vocab.json), which the exporter removes.
  minigpt(
    'export',
    '--checkpoint',
    join(work, trainedRuns().at(-1)),
    '--out',
    out,
    '--quantize',
    'int8',
    '--force',
  );
}
