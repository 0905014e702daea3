// The page's dev and preview servers send COOP/COEP headers: with them the page (and its
// worker) is cross-origin isolated, so SharedArrayBuffer exists and tfjs-backend-wasm loads
// its SIMD + threads build (XNNPACK's thread pool runs on pthread workers that share the
// wasm memory). Without them it falls back to one thread.
import { defaultClientConditions, defineConfig, type UserConfig } from 'vite';

const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** zod (through @minigpt/errors) has comments Rollup cannot place: a warning per build, harmless. */
const onwarn: NonNullable<NonNullable<UserConfig['build']>['rollupOptions']>['onwarn'] = (
  warning,
  warn,
) => {
  if (warning.code === 'INVALID_ANNOTATION' && warning.id?.includes('/zod/')) return;
  warn(warning);
};

export default defineConfig({
  // The workspace packages are bundled from their TypeScript sources (the `@minigpt/source`
  // export condition, as vitest reads them), so the page follows the packages without a build.
  resolve: { conditions: ['@minigpt/source', ...defaultClientConditions] },
  server: { headers: isolation },
  preview: { headers: isolation },
  // onnxruntime-web (runner-web) loads its .wasm files relative to its module: keep it out of
  // pre-bundling, as the web demo does.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  // The training worker is a module worker: it imports tfjs, which Vite splits into chunks.
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 30_000, rollupOptions: { onwarn } },
});
