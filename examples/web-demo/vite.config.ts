// The demo's dev and preview servers send COOP/COEP headers: with them the page is
// cross-origin isolated, which onnxruntime-web needs for multi-threaded wasm.
import { defineConfig } from 'vite';

const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  server: { headers: isolation },
  preview: { headers: isolation },
  // onnxruntime-web loads its .wasm files relative to its module: keep it out of pre-bundling.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 30_000 },
});
