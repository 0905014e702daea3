// The WebGPU backend (tfjs-backend-webgpu on Dawn via the `webgpu` package), exercised on
// the SwiftShader Vulkan driver that Debian's chromium package ships — no GPU needed: the
// same 10 nano iterations as on cpu, and 'auto' passing the software adapter over. And the
// quiet probe 'auto' uses: with stand-in `webgpu` modules, and with the real one on
// whatever this machine has.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { prepareData, useTempDir } from '../test-helpers.js';
import { probeWebGpuQuietly } from './webgpu.js';

const tempDir = useTempDir();
const child = fileURLToPath(new URL('./test-webgpu-child.mjs', import.meta.url));
const swiftShader = {
  ...process.env,
  VK_ICD_FILENAMES: '/usr/lib/chromium/vk_swiftshader_icd.json',
  // The Vulkan loader (libvulkan.so.1) that chromium ships beside the driver.
  LD_LIBRARY_PATH: '/usr/lib/chromium',
};

interface ChildResult {
  backend: string;
  skipped: Array<{ name: string; reason: string }>;
  losses: number[];
  /** What the child printed to stderr, tfjs's own banner left out. */
  stderr: string;
}

function train(
  dataDir: string,
  outDir: string,
  backend: string,
  env: NodeJS.ProcessEnv = swiftShader,
): ChildResult {
  const result = spawnSync(process.execPath, [child, dataDir, outDir, backend], {
    env,
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`child exited ${result.status}: ${result.stderr}`);
  const stderr = result.stderr.replace(
    /=+\nHi, looks like you are running TensorFlow\.js[^]*?=+\n/,
    '',
  );
  return { ...(JSON.parse(result.stdout.trim().split('\n').at(-1)!) as ChildResult), stderr };
}

describe('WebGPU backend (SwiftShader)', () => {
  it('trains to the cpu backend’s losses (≤ 1e-3 over 10 iterations)', async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    const gpu = train(dataDir, join(dir, 'gpu'), 'webgpu');
    const cpu = train(dataDir, join(dir, 'cpu'), 'cpu');
    expect(gpu.backend).toBe('webgpu');
    expect(gpu.losses).toHaveLength(10);
    for (let iter = 0; iter < 10; iter++)
      expect(Math.abs(gpu.losses[iter]! - cpu.losses[iter]!)).toBeLessThanOrEqual(1e-3);
    expect(gpu.losses[9]!).toBeLessThan(gpu.losses[0]!);
    // SwiftShader runs the GPU's work on the CPU: ~13 s beside the rest of the suite here.
  }, 120_000);

  it("is passed over by 'auto' when the only adapter is software, saying so", async () => {
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    const auto = train(dataDir, join(dir, 'auto'), 'auto');
    expect(auto.backend).toBe('wasm');
    expect(auto.skipped.find((skip) => skip.name === 'webgpu')?.reason).toMatch(
      /only a software adapter \(SwiftShader.*\), slower than wasm; backend 'webgpu' uses it anyway/,
    );
    expect(auto.stderr).toBe('');
  });

  it("'auto' on this machine as it is: Dawn prints nothing unless WebGPU was chosen", async () => {
    // No driver environment: a machine without Vulkan gets Dawn's "Couldn't load Vulkan"
    // warning from any in-process probe; one with a GPU may choose WebGPU (then it may talk).
    const dir = tempDir();
    const dataDir = await prepareData(dir);
    const auto = train(dataDir, join(dir, 'auto'), 'auto', process.env);
    if (auto.backend !== 'webgpu') expect(auto.stderr).toBe('');
    const webgpu = auto.skipped.find((skip) => skip.name === 'webgpu');
    if (webgpu) expect(webgpu.reason.length).toBeGreaterThan(10);
  });
});

describe('the quiet WebGPU probe', () => {
  /** A stand-in for the `webgpu` package: prints what Dawn would, offers `adapter`. */
  function fakeWebGpu(
    dir: string,
    options: { stderr?: string; adapter?: object | null; hang?: boolean },
  ) {
    const file = join(dir, 'fake-webgpu.mjs');
    writeFileSync(
      file,
      [
        `process.stderr.write(${JSON.stringify(options.stderr ?? '')});`,
        `export const globals = {};`,
        `export function create() {`,
        `  return { requestAdapter: () => ${options.hang ? 'new Promise(() => setInterval(() => {}, 1000))' : `Promise.resolve(${JSON.stringify(options.adapter ?? null)})`} };`,
        `}`,
      ].join('\n'),
    );
    return pathToFileURL(file).href;
  }
  const vulkanMissing =
    "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory\n" +
    '    at operator() (/dawn/src/dawn/native/vulkan/BackendVk.cpp:368)\n\n';

  it("keeps Dawn's warning off stderr and gives it as the reason there is no adapter", async () => {
    const moduleUrl = fakeWebGpu(tempDir(), { stderr: vulkanMissing, adapter: null });
    // Had the child's stderr gone to ours, the warning could not be in the message.
    await expect(probeWebGpuQuietly({ moduleUrl })).rejects.toThrow(
      'no WebGPU adapter (no Vulkan loader: libvulkan.so.1 not found)',
    );
  });

  it('says what adapter it found: a GPU, or a software one', async () => {
    const gpu = fakeWebGpu(tempDir(), {
      adapter: { info: { vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' } },
    });
    expect(await probeWebGpuQuietly({ moduleUrl: gpu })).toEqual({
      vendor: 'nvidia',
      architecture: 'hopper',
      description: 'NVIDIA H200',
      software: false,
    });
    const software = fakeWebGpu(tempDir(), {
      adapter: {
        info: { vendor: 'mesa', architecture: '', device: 'llvmpipe (LLVM 15.0.6, 256 bits)' },
      },
    });
    expect(await probeWebGpuQuietly({ moduleUrl: software })).toMatchObject({ software: true });
  });

  it('gives up on a probe that hangs', async () => {
    const moduleUrl = fakeWebGpu(tempDir(), { hang: true });
    await expect(probeWebGpuQuietly({ moduleUrl, timeoutMs: 1500 })).rejects.toThrow(
      'the WebGPU probe timed out',
    );
  });
});
