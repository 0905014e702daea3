// Public entry of @minigpt/native-kernels: fast CPU kernels for the tfjs wasm backend, from a
// small optional Node addon. Install them once after `tf.setBackend('wasm')`; every tfjs op
// that dispatches to one of the kernels then runs natively on the tensors where they lie in
// the wasm heap (no copies), on all cores.
export {
  installNativeKernels,
  loadNativeAddon,
  FUSED_KERNEL_NAMES,
  NATIVE_KERNEL_NAMES,
  uninstallNativeKernels,
  type NativeAddon,
  type NativeInstallResult,
  type NativeLoadResult,
} from './install.js';
