// Training in Node, as `minigpt train` runs it: data from a prepared directory, the run's
// files in an output directory, the fastest backend Node has (tfjs-node-gpu, tfjs-node,
// WebGPU on Dawn, wasm with the native kernels, cpu).
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { directoryStorage } from '@minigpt/checkpoint/node';
import { openPreparedData } from '@minigpt/data/node';
import { removeCreatedDirectories } from '@minigpt/errors/node';
import { installNativeKernels, uninstallNativeKernels } from '@minigpt/native-kernels';
import { installWasmKernels } from '@minigpt/wasm-kernels';
import { importOptional, type BackendCandidate } from '../backend.js';
import {
  Trainer,
  type InitialWeights,
  type NativeKernelsStatus,
  type TrainerOptions,
} from '../trainer.js';
import { readInitialWeights } from './init-from.js';
import { loadWebGpu } from './webgpu.js';

/** tfjs-node-gpu and tfjs-node both register as 'tensorflow'. */
export const NODE_CANDIDATES: readonly BackendCandidate[] = [
  {
    name: 'tensorflow-gpu',
    tfjsName: 'tensorflow',
    load: () => importOptional('@tensorflow/tfjs-node-gpu'),
  },
  {
    name: 'tensorflow',
    tfjsName: 'tensorflow',
    load: () => importOptional('@tensorflow/tfjs-node'),
  },
  { name: 'webgpu', tfjsName: 'webgpu', load: (context) => loadWebGpu(context) },
  { name: 'wasm', tfjsName: 'wasm', load: () => importOptional('@tensorflow/tfjs-backend-wasm') },
  { name: 'cpu', tfjsName: 'cpu', load: async () => {} },
];

export interface NodeTrainerOptions extends Omit<
  TrainerOptions,
  'data' | 'storage' | 'afterBackend' | 'initFrom'
> {
  /**
   * A fresh run's starting weights: a GPT-2 directory in the Hugging Face layout
   * (config.json, model.safetensors; see readInitialWeights), or weights already read.
   * Not read on `resume`: the run continues from its checkpoint.
   */
  readonly initFrom?: string | InitialWeights;
  /** A directory prepared by `minigpt prepare` / `binarize`. */
  readonly dataDir: string;
  /** Where checkpoints/, metrics.jsonl and loss.svg go (created if missing). */
  readonly outDir: string;
  /** Continue from `outDir/checkpoints/latest` (Trainer.resume) instead of starting fresh. */
  readonly resume?: boolean;
  /**
   * On the wasm backend, run matMuls in @minigpt/native-kernels' addon when it is built
   * (default true; same math, all cores). false keeps tfjs's own wasm kernels.
   */
  readonly nativeKernels?: boolean;
}

/**
 * Trainer.start (or, with `resume`, Trainer.resume) over a prepared data directory and an
 * output directory, with NODE_CANDIDATES and the native kernels. A run that fails to start
 * leaves no output directory it created behind.
 */
export async function startTraining(options: NodeTrainerOptions): Promise<Trainer> {
  const { dataDir, outDir, resume, nativeKernels, initFrom, ...rest } = options;
  const data = await openPreparedData(resolve(dataDir));
  let initial: InitialWeights | undefined;
  try {
    initial =
      resume || initFrom === undefined
        ? undefined
        : typeof initFrom === 'string'
          ? await readInitialWeights(initFrom, {
              blockSize: blockSizeOf(rest.config),
              tokenizer: data.tokenizer,
            })
          : initFrom;
  } catch (error) {
    data.train.close();
    data.val.close();
    throw error;
  }
  const out = resolve(outDir);
  // The storage's lock creates the directory (and says so when a file is in the way); what
  // was missing before is what a failed start removes again, when still empty.
  const created = topmostMissing(out);
  const trainerOptions: TrainerOptions = {
    backendCandidates: NODE_CANDIDATES,
    ...rest,
    ...(initial ? { initFrom: initial } : {}),
    data,
    storage: directoryStorage(out),
    afterBackend: (backend) =>
      backend === 'wasm' ? useNativeKernels(nativeKernels ?? true) : undefined,
  };
  try {
    return await (resume ? Trainer.resume(trainerOptions) : Trainer.start(trainerOptions));
  } catch (error) {
    await removeCreatedDirectories(created, out);
    throw error;
  }
}

/** The block size a run's config overrides give, if any (the starting weights are cropped to it). */
function blockSizeOf(config: Record<string, unknown> | undefined): number | undefined {
  const value = config?.['blockSize'];
  return typeof value === 'number' ? value : undefined;
}

/** The highest of `dir` and its parents that does not exist (undefined: `dir` exists). */
function topmostMissing(dir: string): string | undefined {
  let missing: string | undefined;
  for (let current = dir; !existsSync(current); current = dirname(current)) {
    missing = current;
    if (dirname(current) === current) break;
  }
  return missing;
}

/**
 * Installs the native kernels on the wasm backend for this process, or where the addon is not
 * built, @minigpt/wasm-kernels' WebAssembly ones (`reason` then says why not native);
 * `wanted` false removes them, and tfjs's own kernels run.
 */
async function useNativeKernels(wanted: boolean): Promise<NativeKernelsStatus> {
  if (!wanted) {
    uninstallNativeKernels();
    return { installed: false, reason: 'turned off', kernels: [] };
  }
  const native = installNativeKernels();
  if (native.installed) return { ...native, kind: 'native' };
  const wasm = await installWasmKernels();
  return wasm.installed ? { ...wasm, kind: 'wasm', reason: native.reason } : native;
}
