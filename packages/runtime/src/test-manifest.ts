// The minigpt.json the runtime's tests start from: format 2 with every optional field (as an
// int8 export with the num_logits_to_keep input would have it), so a test of one rule changes
// one field of a manifest that is otherwise whole. Not part of the published package.
import { MANIFEST_FORMAT_VERSION } from './manifest.js';

const names = {
  inputs: {
    inputIds: 'input_ids',
    attentionMask: 'attention_mask',
    positionIds: 'position_ids',
    numLogitsToKeep: 'num_logits_to_keep' as string | undefined,
    pastKey: 'past_key_values.{i}.key',
    pastValue: 'past_key_values.{i}.value',
  },
  outputs: {
    logits: 'logits',
    presentKey: 'present.{i}.key',
    presentValue: 'present.{i}.value',
    newKey: 'new_key_values.{i}.key',
    newValue: 'new_key_values.{i}.value',
  } as {
    logits: string;
    presentKey: string;
    presentValue: string;
    newKey?: string;
    newValue?: string;
  },
  dtypes: { inputIds: 'int64', cache: 'float32', logits: 'float32' },
  files: {
    model: 'onnx/model.onnx',
    modelQuantized: 'onnx/model_quantized.onnx',
    vocab: 'tokenizer.minigpt.json',
  },
};

/** A fresh manifest JSON for `model` (vocabSize, blockSize, nLayer, nHead, nEmbd, …). */
export function manifestJson<Model extends Record<string, unknown>>(model: Model) {
  return {
    format: 'minigpt-onnx',
    formatVersion: MANIFEST_FORMAT_VERSION,
    opset: 17,
    irVersion: 8,
    model: { ...model },
    ...structuredClone(names),
    tokenizer: 'char',
  };
}
