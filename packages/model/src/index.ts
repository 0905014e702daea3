// Public entry of @minigpt/model: a GPT in TensorFlow.js, its config and presets, the
// custom-gradient ops it is built from, sampling, the safetensors format, the checks that
// weights from elsewhere fit a config, and GPT-2 directories in the Hugging Face layout.
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
  GPT_ACTIVATIONS,
  GPT_CONFIG_BOUNDS,
  GPT_PRESETS,
  activationOf,
  countParameters,
  resolveGPTConfig,
  validateGPTConfig,
  type GPTActivation,
  type GPTConfig,
  type GPTPresetName,
} from './config.js';
export {
  causalAttention,
  causalMask,
  crossEntropy,
  dropout,
  dropoutKeepMask,
  dropoutStream,
  embedding,
  FUSED_ATTENTION,
  FUSED_ATTENTION_GRAD,
  FUSED_DROPOUT,
  fusedCausalAttention,
  gelu,
  hasFusedAttention,
  layerNorm,
  linear,
  mlp,
  RECOMPUTE_ATTENTION_ELEMENTS,
  type AttentionDropout,
} from './ops.js';
export {
  GPT2_CONFIG_FILE,
  GPT2_CONFIG_MAX_BYTES,
  GPT2_DIRECTORY_LAYOUT,
  GPT2_WEIGHTS_FILE,
  gpt2Config,
  gpt2DirectoryFiles,
  readGpt2Directory,
  type Gpt2Directory,
  type Gpt2DirectoryFilesOptions,
  type Gpt2DirectoryRule,
  type Gpt2FileReader,
  type ReadGpt2DirectoryOptions,
} from './huggingface.js';
export {
  decodeSafetensors,
  encodeSafetensors,
  SAFETENSORS_MAX_HEADER_BYTES,
  SAFETENSORS_MAX_TENSORS,
  type DecodeSafetensorsOptions,
  type SafeTensor,
  type SafetensorsRule,
  type SafetensorsDtype,
  type SafetensorsFile,
} from './safetensors.js';
