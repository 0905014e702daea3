// Public entry of @minigpt/model: a GPT in TensorFlow.js, its config and presets, the
// custom-gradient ops it is built from, sampling and the safetensors format.
export {
  GPT,
  weightShapes,
  type CreateGPTOptions,
  type ForwardOptions,
  type GenerateOptions,
  type WeightData,
} from './gpt.js';
export {
  ConfigError,
  ModelError,
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
  type SafeTensor,
  type SafetensorsDtype,
  type SafetensorsFile,
} from './safetensors.js';
