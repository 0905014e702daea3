// Picks the fastest TensorFlow.js backend that works here: tfjs-node-gpu (CUDA) →
// tfjs-node (libtensorflow on CPU) → WebGPU (Dawn, a hardware adapter) → wasm → cpu. The
// tfjs-node and WebGPU packages are optional peers; loaders are injectable so the selection
// logic is testable without them. 'auto' probes WebGPU quietly (see webgpu.ts): Dawn's
// diagnostics reach the terminal only when WebGPU is asked for by name or a GPU was found.
import { MinigptError } from '@minigpt/errors';
import * as tf from '@tensorflow/tfjs';
import { loadWebGpu } from './webgpu.js';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendName[] = [
  'tensorflow-gpu',
  'tensorflow',
  'webgpu',
  'wasm',
  'cpu',
];

/** No usable backend, or the requested one cannot start; says what to install. */
export class BackendError extends MinigptError {
  override name = 'BackendError';
}

export interface BackendCandidate {
  readonly name: BackendName;
  /**
   * Registers the backend with tfjs (imports its package); throws if it cannot.
   * `requested`: asked for by name, not tried by 'auto'.
   */
  readonly load: (context: { readonly requested: boolean }) => Promise<void>;
  /** The tfjs backend name to activate once loaded. */
  readonly tfjsName: string;
}

export interface BackendChoice {
  readonly name: BackendName;
  /** Why each faster candidate was skipped. */
  readonly skipped: ReadonlyArray<{ name: BackendName; reason: string }>;
}

/** tfjs-node-gpu and tfjs-node both register as 'tensorflow'. */
export const DEFAULT_CANDIDATES: readonly BackendCandidate[] = [
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

async function importOptional(specifier: string): Promise<void> {
  // A variable specifier keeps bundlers and tsc from requiring the optional package.
  const name = specifier;
  await import(name);
}

/**
 * Activates `requested` (or the first candidate that loads and initialises, for `'auto'`).
 * A requested backend that fails is an error that says why and what to install.
 */
export async function selectBackend(
  requested: BackendName | 'auto' = 'auto',
  candidates: readonly BackendCandidate[] = DEFAULT_CANDIDATES,
): Promise<BackendChoice> {
  const skipped: Array<{ name: BackendName; reason: string }> = [];
  const pool = requested === 'auto' ? candidates : candidates.filter((c) => c.name === requested);
  if (pool.length === 0) {
    throw new BackendError(
      `unknown backend "${requested}"; choose one of: auto, ${BACKEND_ORDER.join(', ')}`,
    );
  }
  for (const candidate of pool) {
    try {
      await candidate.load({ requested: requested !== 'auto' });
      if (!(await tf.setBackend(candidate.tfjsName)))
        throw new Error('tfjs could not initialise it');
      await tf.ready();
      return { name: candidate.name, skipped };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === 'ERR_MODULE_NOT_FOUND'
          ? 'not installed'
          : firstLine((error as Error).message ?? String(error));
      if (requested !== 'auto') {
        throw new BackendError(
          `backend "${requested}" is not available: ${reason}. ${installHint(candidate.name)}`,
        );
      }
      skipped.push({ name: candidate.name, reason });
    }
  }
  throw new BackendError(
    `no TensorFlow.js backend could start: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`,
  );
}

export function installHint(name: BackendName): string {
  switch (name) {
    case 'tensorflow-gpu':
      return 'On a Linux machine with an NVIDIA GPU, CUDA and cuDNN: npm i @tensorflow/tfjs-node-gpu';
    case 'tensorflow':
      return 'npm i @tensorflow/tfjs-node (its install downloads libtensorflow)';
    case 'webgpu':
      return 'npm i webgpu @tensorflow/tfjs-backend-webgpu, on a machine with a Vulkan, Metal or D3D12 GPU driver';
    case 'wasm':
      return 'npm i @tensorflow/tfjs-backend-wasm';
    case 'cpu':
      return 'the cpu backend ships with @tensorflow/tfjs';
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.slice(0, 200);
}
