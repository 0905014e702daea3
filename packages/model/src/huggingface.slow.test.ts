// The PyTorch reference (scripts/gpt2_reference.py, Debian's python3-torch) reads directories
// our writer made and reproduces our tfjs logits within 1e-4. Needs torch: without it the
// test fails and says how to install it (set MINIGPT_TORCH_PYTHON to a python that has it).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPT } from './gpt.js';
import type { GPTConfig } from './config.js';
import { gpt2DirectoryFiles, readGpt2Directory } from './huggingface.js';
import type { WeightData } from './weights.js';

const PYTHON = process.env['MINIGPT_TORCH_PYTHON'] ?? '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../scripts/gpt2_reference.py', import.meta.url));
const FIXTURE = new URL('../test-fixtures/gpt2-tiny/', import.meta.url);
const IDS = [
  [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3, 2, 38, 46, 26],
  [0, 49, 1],
];

let workDir: string;

let torchChecked = false;

/** Fails (never skips) with the fix when the python has no torch. */
function requireTorch(): void {
  if (torchChecked) return;
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `this test runs scripts/gpt2_reference.py with PyTorch, and "${PYTHON} -c 'import torch'" failed (${String(
        (error as { stderr?: unknown }).stderr ?? error,
      )
        .trim()
        .split('\n')
        .pop()}). Install Debian's python3-torch (apt-get install python3-torch) or set MINIGPT_TORCH_PYTHON to a python that has torch.`,
    );
  }
  torchChecked = true;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  workDir = mkdtempSync(join(tmpdir(), 'minigpt-gpt2-'));
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** Writes the directory, runs the reference on it, and returns its logits per sequence. */
function referenceLogits(
  name: string,
  config: GPTConfig,
  weights: ReadonlyMap<string, WeightData>,
): number[][][] {
  requireTorch();
  const directory = join(workDir, name);
  mkdirSync(directory);
  for (const [file, bytes] of gpt2DirectoryFiles(config, weights)) {
    writeFileSync(join(directory, file), bytes);
  }
  const output = execFileSync(PYTHON, [SCRIPT, 'logits', directory, JSON.stringify(IDS)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return (JSON.parse(output) as { logits: number[][][] }).logits;
}

function ourLogits(config: GPTConfig, weights: ReadonlyMap<string, WeightData>): number[][][] {
  const model = GPT.fromWeights(config, weights);
  try {
    return IDS.map((row) =>
      tf.tidy(
        () =>
          (
            model.forward(tf.tensor2d([row], [1, row.length], 'int32')).arraySync() as number[][][]
          )[0]!,
      ),
    );
  } finally {
    model.dispose();
  }
}

function maxDifference(a: number[][][], b: number[][][]): number {
  expect(a.map((rows) => [rows.length, rows[0]!.length])).toEqual(
    b.map((rows) => [rows.length, rows[0]!.length]),
  );
  return Math.max(
    ...a.flatMap((rows, i) =>
      rows.flatMap((row, t) => row.map((value, v) => Math.abs(value - b[i]![t]![v]!))),
    ),
  );
}

const fixture = () =>
  readGpt2Directory((name) =>
    Promise.resolve(new Uint8Array(readFileSync(new URL(name, FIXTURE)))),
  );

describe('directories written by gpt2DirectoryFiles, read by the PyTorch reference', () => {
  it('GPT-2 with biases and the tanh GELU: the same logits within 1e-4', async () => {
    const { config, weights } = await fixture();
    const difference = maxDifference(
      referenceLogits('tanh', config, weights),
      ourLogits(config, weights),
    );
    expect(difference).toBeLessThan(1e-4);
  });

  it('a bias-free model with the exact GELU and 16 positions (zero biases written)', async () => {
    const read = await fixture();
    const config: GPTConfig = { ...read.config, bias: false, activation: 'gelu', blockSize: 16 };
    const weights = new Map<string, WeightData>();
    for (const [name, weight] of read.weights) {
      if (name.endsWith('.bias')) continue;
      weights.set(
        name,
        name === 'wpe.weight' ? { shape: [16, 32], data: weight.data.slice(0, 16 * 32) } : weight,
      );
    }
    const difference = maxDifference(
      referenceLogits('erf', config, weights),
      ourLogits(config, weights),
    );
    expect(difference).toBeLessThan(1e-4);
  });
});
