// The WebGPU backend (tfjs-backend-webgpu on Dawn via the `webgpu` package), exercised on
// the SwiftShader Vulkan driver that Debian's chromium package ships — no GPU needed: the
// same 10 nano iterations as on cpu, and 'auto' passing the software adapter over.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { prepareData, useTempDir } from './test-helpers.js';

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
}

function train(dataDir: string, outDir: string, backend: string): ChildResult {
  const output = execFileSync(process.execPath, [child, dataDir, outDir, backend], {
    env: swiftShader,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(output.trim().split('\n').at(-1)!) as ChildResult;
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
      /only a software adapter \(SwiftShader.*\), slower than wasm; --backend=webgpu uses it anyway/,
    );
  });
});
