import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { BACKEND_ORDER, selectBackend, type BackendCandidate } from './index.js';
import { NODE_CANDIDATES } from './node/index.js';
import { loadWebGpu, type WebGpuAdapterSummary, type WebGpuLoaderParts } from './node/webgpu.js';

const missing = (name: string) => async () => {
  throw new Error(`Cannot find package '${name}'`);
};

/** The real wasm and cpu candidates, with fake tfjs-node loaders in front. */
function candidates(gpu: () => Promise<void>, node: () => Promise<void>): BackendCandidate[] {
  const real = NODE_CANDIDATES.filter((c) => c.name === 'wasm' || c.name === 'cpu');
  return [
    { name: 'tensorflow-gpu', tfjsName: 'tensorflow', load: gpu },
    { name: 'tensorflow', tfjsName: 'tensorflow', load: node },
    ...real,
  ];
}

describe('backend selection', () => {
  it('falls back past missing tfjs-node packages to wasm, saying why', async () => {
    const choice = await selectBackend(
      'auto',
      candidates(missing('@tensorflow/tfjs-node-gpu'), missing('@tensorflow/tfjs-node')),
    );
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.skipped).toEqual([
      { name: 'tensorflow-gpu', reason: "Cannot find package '@tensorflow/tfjs-node-gpu'" },
      { name: 'tensorflow', reason: "Cannot find package '@tensorflow/tfjs-node'" },
    ]);
  });

  it('takes the first candidate that loads and initialises', async () => {
    // A loader that "works" by registering a backend under the tfjs-node name.
    const fakeNode = async () => {
      if (!tf.findBackendFactory('tensorflow')) {
        tf.registerBackend(
          'tensorflow',
          () => tf.findBackend('cpu') ?? tf.findBackendFactory('cpu')!(),
        );
      }
    };
    const choice = await selectBackend('auto', candidates(missing('gpu'), fakeNode));
    expect(choice.name).toBe('tensorflow');
    expect(choice.skipped.map((s) => s.name)).toEqual(['tensorflow-gpu']);
    tf.removeBackend('tensorflow');
    await tf.setBackend('cpu');
  });

  it('fails a requested backend that is not installed, with what to install', async () => {
    await expect(
      selectBackend(
        'tensorflow-gpu',
        candidates(missing('@tensorflow/tfjs-node-gpu'), missing('x')),
      ),
    ).rejects.toThrow(
      /backend "tensorflow-gpu" is not available: Cannot find package .* npm i @tensorflow\/tfjs-node-gpu/,
    );
    expect((await selectBackend('cpu')).name).toBe('cpu');
    await expect(selectBackend('tpu' as never)).rejects.toThrow(/unknown backend "tpu"/);
  });

  it('uses the real Node packages: the first in order that loads, each skip with a reason', async () => {
    // Whatever this machine has (tfjs-node, a GPU, neither): the choice follows the order.
    const choice = await selectBackend('auto', NODE_CANDIDATES);
    const order = BACKEND_ORDER.indexOf(choice.name);
    expect(order).toBeGreaterThanOrEqual(0);
    expect(choice.skipped.map((s) => s.name)).toEqual(BACKEND_ORDER.slice(0, order));
    for (const skip of choice.skipped) expect(skip.reason.length).toBeGreaterThan(10);
    expect(tf.getBackend()).toBe(choice.name);
    await tf.setBackend('cpu');
  });
});

describe('the WebGPU candidate', () => {
  const gpu: WebGpuAdapterSummary = {
    vendor: 'nvidia',
    architecture: 'hopper',
    description: 'NVIDIA H200',
    software: false,
  };
  const swiftShader = { ...gpu, vendor: 'google', description: 'SwiftShader', software: true };
  /** Loader parts that record which ran: the quiet probe, Dawn in this process, tfjs's backend. */
  function parts(quiet: () => Promise<WebGpuAdapterSummary>) {
    const calls: string[] = [];
    const recorded: WebGpuLoaderParts = {
      probeQuietly: () => (calls.push('quiet probe'), quiet()),
      probeHere: async () => (calls.push('Dawn here'), gpu),
      register: async () => void calls.push('register'),
    };
    const real = NODE_CANDIDATES.filter((c) => c.name === 'wasm' || c.name === 'cpu');
    const candidates: BackendCandidate[] = [
      // A tfjs name nothing registers, so it never activates whatever this machine has: the
      // tests are about which steps ran, and what 'auto' says when it skips.
      {
        name: 'webgpu',
        tfjsName: 'not-registered',
        load: (context) => loadWebGpu(context, recorded),
      },
      ...real,
    ];
    return { calls, candidates };
  }
  const noAdapter = async (): Promise<WebGpuAdapterSummary> => {
    throw new Error("no WebGPU adapter (Dawn: Couldn't load Vulkan: libvulkan.so.1)");
  };

  it("'auto' without an adapter: skipped on the quiet probe's word, Dawn never loaded here", async () => {
    const { calls, candidates } = parts(noAdapter);
    const choice = await selectBackend('auto', candidates);
    expect(choice.name).toBe('wasm');
    expect(choice.skipped).toEqual([
      { name: 'webgpu', reason: "no WebGPU adapter (Dawn: Couldn't load Vulkan: libvulkan.so.1)" },
    ]);
    expect(calls).toEqual(['quiet probe']);
  });

  it("'auto' with only a software adapter: skipped, saying so, Dawn never loaded here", async () => {
    const { calls, candidates } = parts(async () => swiftShader);
    const choice = await selectBackend('auto', candidates);
    expect(choice.skipped[0]!.reason).toMatch(/^only a software adapter \(SwiftShader\)/);
    expect(calls).toEqual(['quiet probe']);
  });

  it("'auto' with a GPU: loads Dawn here after the quiet probe found it", async () => {
    const { calls, candidates } = parts(async () => gpu);
    await selectBackend('auto', candidates);
    expect(calls).toEqual(['quiet probe', 'Dawn here', 'register']);
  });

  it('asked for by name: Dawn loads here directly, so its messages are seen', async () => {
    const { calls, candidates } = parts(noAdapter);
    await expect(selectBackend('webgpu', candidates)).rejects.toThrow(/backend "webgpu"/);
    expect(calls).toEqual(['Dawn here', 'register']);
  });
});
