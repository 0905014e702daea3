// The backends' names, their order of preference and what to install for each: plain data,
// apart from backend.ts's selection (which loads TensorFlow.js), so that a command line can
// name them in its help and advice without loading it.
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendName[] = [
  'tensorflow-gpu',
  'tensorflow',
  'webgpu',
  'wasm',
  'cpu',
];

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
