// Public entry of @minigpt/model: a GPT in TensorFlow.js, its config and presets, the
// custom-gradient ops it is built from, sampling, the safetensors format and the checks that
// weights from elsewhere fit a config.
export { GPT, type CreateGPTOptions, type ForwardOptions, type GenerateOptions } from './gpt.js';
export {
  checkWeights,
  weightShapes,
  type WeightData,
  type WeightRule,
  type WeightToCheck,
} from './weights.js';
export {
  ConfigError,
  ModelError,
  GPT_CONFIG_BOUNDS,
  GPT_PRESETS,
  countParameters,
  resolveGPTConfig,
  validateGPTConfig,
  type GPTConfig,
  type GPTPresetName,
} from './config.js';
export {
  causalAttention,
  causalMask,
  crossEntropy,
  dropoutKeepMask,
  embedding,
  gelu,
  layerNorm,
  linear,
  mlp,
  RECOMPUTE_ATTENTION_ELEMENTS,
  type AttentionDropout,
} from './ops.js';
export {
  decodeSafetensors,
  encodeSafetensors,
  SAFETENSORS_MAX_HEADER_BYTES,
  SAFETENSORS_MAX_TENSORS,
  type SafeTensor,
  type SafetensorsRule,
  type SafetensorsDtype,
  type SafetensorsFile,
} from './safetensors.js';
