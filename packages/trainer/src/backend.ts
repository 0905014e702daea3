// Picks the fastest TensorFlow.js backend that works here, from an ordered list of
// candidates: in a browser (BROWSER_CANDIDATES) WebGPU on a hardware adapter → wasm (SIMD and
// threads where the page is cross-origin isolated) → cpu; in Node the `./node` entry's
// NODE_CANDIDATES put tfjs-node-gpu and tfjs-node first and reach WebGPU through Dawn.
// Loaders are injectable, so the selection logic is testable without the optional packages.
import { MinigptError } from '@minigpt/errors';
import * as tf from '@tensorflow/tfjs';
import { BACKEND_ORDER, installHint, type BackendName } from './backend-names.js';
import { browserGpu, loadBrowserWebGpu } from './webgpu-adapter.js';

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
  /** How it runs, where that matters: wasm in a browser says whether it has threads. */
  readonly detail?: string;
}

/** How a bundled page loads the backend packages (a variable specifier cannot be bundled). */
export interface BrowserBackendLoaders {
  /** e.g. `() => import('@tensorflow/tfjs-backend-webgpu')`; absent: imported by name. */
  readonly webgpu?: () => Promise<unknown>;
  /** e.g. `() => import('@tensorflow/tfjs-backend-wasm')` (after setWasmPaths); absent: by name. */
  readonly wasm?: () => Promise<unknown>;
}

/**
 * The candidates of a browser (or a Web Worker): WebGPU on a hardware adapter, then wasm,
 * then cpu. A page built with a bundler passes its own `import()`s; without them the
 * packages are imported by name at run time (Node, or a page with an import map).
 */
export function browserCandidates(loaders: BrowserBackendLoaders = {}): BackendCandidate[] {
  const webgpu = loaders.webgpu ?? (() => importOptional('@tensorflow/tfjs-backend-webgpu'));
  const wasm = loaders.wasm ?? (() => importOptional('@tensorflow/tfjs-backend-wasm'));
  return [
    {
      name: 'webgpu',
      tfjsName: 'webgpu',
      load: (context) =>
        loadBrowserWebGpu(context, {
          gpu: browserGpu,
          register: async () => {
            await webgpu();
          },
        }),
    },
    {
      name: 'wasm',
      tfjsName: 'wasm',
      load: async () => {
        await wasm();
      },
    },
    { name: 'cpu', tfjsName: 'cpu', load: async () => {} },
  ];
}

/** browserCandidates() with the packages imported by name. */
export const BROWSER_CANDIDATES: readonly BackendCandidate[] = browserCandidates();

export async function importOptional(specifier: string): Promise<void> {
  // A variable specifier keeps bundlers and tsc from requiring the optional package.
  const name = specifier;
  await import(/* @vite-ignore */ name);
}

/**
 * What the wasm backend runs with here: threads need SharedArrayBuffer, which a browser
 * gives only to a cross-origin isolated page; undefined outside a browser.
 */
export function wasmFeatures():
  { readonly threads: boolean; readonly reason?: string } | undefined {
  const scope = globalThis as {
    crossOriginIsolated?: boolean;
    document?: unknown;
    importScripts?: unknown;
  };
  const inBrowser = scope.document !== undefined || scope.importScripts !== undefined;
  if (!inBrowser) return undefined;
  if (scope.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function')
    return { threads: true };
  return {
    threads: false,
    reason:
      'one thread: the page is not cross-origin isolated (serve it with COOP same-origin and COEP require-corp)',
  };
}

/**
 * Activates `requested` (or the first candidate that loads and initialises, for `'auto'`).
 * A requested backend that fails is an error that says why and what to install.
 */
export async function selectBackend(
  requested: BackendName | 'auto' = 'auto',
  candidates: readonly BackendCandidate[] = BROWSER_CANDIDATES,
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
      const wasm = candidate.name === 'wasm' ? wasmFeatures() : undefined;
      // tfjs's wasm backend picks its SIMD build itself; threads depend on the page.
      const detail =
        wasm && (wasm.threads ? 'threads: the page is cross-origin isolated' : wasm.reason);
      return { name: candidate.name, skipped, ...(detail ? { detail } : {}) };
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

function firstLine(text: string): string {
  return text.split('\n')[0]!.slice(0, 200);
}
