// The GPT (nanoGPT's architecture) in TensorFlow.js: token + position embeddings, pre-LN
// blocks of causal self-attention and a GELU MLP (exact, or GPT-2's tanh form by
// config.activation) with residual connections, a final
// LayerNorm, and an LM head tied to the token embedding. Weights carry GPT-2 names.
// It knows nothing of training loops, files or tokenizers.
//
// Dimensions: B batch, T time (≤ blockSize), C nEmbd, nh nHead, hs = C/nh, V vocabSize.
import * as tf from '@tensorflow/tfjs';
import { Random } from '@minigpt/random';
import { activationOf, countParameters, validateGPTConfig, type GPTConfig } from './config.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { checkWeights, weightShapes, type WeightData, type WeightToCheck } from './weights.js';
import {
  causalAttention,
  fusedCausalAttention,
  hasFusedAttention,
  crossEntropy,
  dropout as applyDropout,
  embedding,
  layerNorm,
  linear,
  mlp,
  tiedHead,
  type AttentionDropout,
} from './ops.js';
import { sampleToken, type SamplingOptions } from '@minigpt/runtime';

export interface ForwardOptions {
  /** Training mode turns dropout on; it then draws masks from `random`. */
  readonly training?: boolean;
  readonly random?: Random;
}

export interface CreateGPTOptions {
  /** Seed or generator for the initial weights (default seed 1337). */
  readonly random?: Random;
  /** Where to print the parameter count on construction; `null` prints nothing. */
  readonly log?: ((line: string) => void) | null;
}

export interface GenerateOptions extends SamplingOptions {
  /** Generator for sampling; or give `seed`. */
  readonly random?: Random;
  readonly seed?: number;
  /** Called with each new token id as soon as it is sampled (for streaming output). */
  readonly onToken?: (id: number) => void;
}

export class GPT {
  readonly config: GPTConfig;
  /** Trainable variables by GPT-2 name, e.g. `h.0.attn.c_attn.weight`. */
  readonly weights: ReadonlyMap<string, tf.Variable>;

  private constructor(config: GPTConfig, weights: Map<string, tf.Variable>) {
    this.config = config;
    this.weights = weights;
  }

  /** A new model with nanoGPT's initialisation, drawn from `random`. */
  static create(config: GPTConfig, options: CreateGPTOptions = {}): GPT {
    const checked = validateGPTConfig({ ...config });
    const random = options.random ?? new Random(1337);
    const weights = new Map<string, tf.Variable>();
    for (const [name, shape] of weightShapes(checked)) {
      weights.set(name, variableFrom(initialValue(name, shape, checked, random)));
    }
    const log = options.log === undefined ? (line: string) => console.log(line) : options.log;
    log?.(`number of parameters: ${(countParameters(checked) / 1e6).toFixed(2)}M`);
    return new GPT(checked, weights);
  }

  /**
   * A model with the given weights. Before any tensor is allocated they are checked to be
   * exactly the set the config needs (`checkWeights`: names, float32, shapes, finite values);
   * otherwise a ModelError names `source`, the weight and the rule.
   */
  static fromWeights(
    config: GPTConfig,
    data: ReadonlyMap<string, WeightToCheck>,
    source = 'weights',
  ): GPT {
    const checked = validateGPTConfig({ ...config });
    return GPT.build(checked, checkWeights(checked, data, source));
  }

  /**
   * A model from a model.safetensors file's bytes (GPT-2 names, F32); `source` names it in
   * errors. The file is checked against the format (`decodeSafetensors`) and its weights
   * against the config (`checkWeights`) before any tensor is allocated.
   */
  static fromSafetensors(config: GPTConfig, bytes: Uint8Array, source = 'model.safetensors'): GPT {
    const checked = validateGPTConfig({ ...config });
    const { tensors } = decodeSafetensors(bytes, source);
    return GPT.build(checked, checkWeights(checked, tensors, source));
  }

  /** A model holding `weights`, already checked against `config`. */
  private static build(config: GPTConfig, weights: ReadonlyMap<string, WeightData>): GPT {
    const variables = new Map<string, tf.Variable>();
    try {
      for (const [name, shape] of weightShapes(config)) {
        variables.set(name, variableFrom(tf.tensor(weights.get(name)!.data, shape)));
      }
    } catch (error) {
      // Out of memory halfway (a large model on wasm): free what was made.
      for (const variable of variables.values()) variable.dispose();
      throw error;
    }
    return new GPT(config, variables);
  }

  /** The weights as a safetensors file (float32, GPT-2 names). */
  async toSafetensors(metadata: Record<string, string> = {}): Promise<Uint8Array> {
    const weights = await this.weightData();
    return encodeSafetensors(
      [...weights].map(
        ([name, w]) => [name, { dtype: 'F32', shape: w.shape, data: w.data }] as const,
      ),
      metadata,
    );
  }

  /** The weights as plain data, in GPT-2 name order. */
  async weightData(): Promise<Map<string, WeightData>> {
    const out = new Map<string, WeightData>();
    for (const [name, variable] of this.weights) {
      out.set(name, { shape: variable.shape, data: (await variable.data()) as Float32Array });
    }
    return out;
  }

  get trainableVariables(): tf.Variable[] {
    return [...this.weights.values()];
  }

  /** A weight matrix (2-D). */
  private matrix(name: string): tf.Tensor2D {
    const weight = this.weights.get(name);
    if (!weight) throw new Error(`GPT: no weight named ${name}`);
    return weight as tf.Tensor as tf.Tensor2D;
  }

  /** A weight vector (1-D): LayerNorm scales, biases; undefined when the config has none. */
  private vector(name: string): tf.Tensor1D | undefined {
    return this.weights.get(name) as tf.Tensor as tf.Tensor1D | undefined;
  }

  /** Logits for every position. idx (B, T) int32, T ≤ blockSize → (B, T, V). */
  forward(idx: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    const [batch, time] = idx.shape;
    const { blockSize, vocabSize } = this.config;
    if (time > blockSize) {
      throw new RangeError(`GPT.forward: sequence length ${time} exceeds blockSize ${blockSize}`);
    }
    return tf.tidy(() => {
      const hidden = this.hidden(idx, options); // (B·T, C)
      const logits = tiedHead(hidden, this.matrix('wte.weight')); // (B·T, V)
      return tf.reshape(logits, [batch, time, vocabSize]) as tf.Tensor3D;
    });
  }

  /** Mean cross-entropy of predicting `targets` (B, T) from `idx` (B, T). */
  loss(idx: tf.Tensor2D, targets: tf.Tensor2D, options: ForwardOptions = {}): tf.Scalar {
    return tf.tidy(() => {
      const hidden = this.hidden(idx, options); // (B·T, C)
      const logits = tiedHead(hidden, this.matrix('wte.weight')); // (B·T, V), tied to wte
      return crossEntropy(logits, tf.reshape(targets, [-1]) as tf.Tensor1D);
    });
  }

  /** The final hidden states, after ln_f. idx (B, T) → (B·T, C). */
  private hidden(idx: tf.Tensor2D, options: ForwardOptions): tf.Tensor2D {
    const [batch, time] = idx.shape;
    const { nEmbd, nLayer } = this.config;
    const dropout = this.dropout(options);
    const ids = tf.reshape(idx, [batch * time]) as tf.Tensor1D;
    const tokens = embedding(ids, this.matrix('wte.weight')); // (B·T, C)
    const positions = tf.slice(this.matrix('wpe.weight'), [0, 0], [time, nEmbd]); // (T, C)
    let x: tf.Tensor2D = tf.reshape(tf.add(tf.reshape(tokens, [batch, time, nEmbd]), positions), [
      batch * time,
      nEmbd,
    ]);
    x = dropout(x);
    for (let layer = 0; layer < nLayer; layer++) x = this.block(x, layer, batch, time, dropout);
    return layerNorm(x, this.vector('ln_f.weight')!, this.vector('ln_f.bias'));
  }

  /** One transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)). x (B·T, C). */
  private block(
    x: tf.Tensor2D,
    layer: number,
    batch: number,
    time: number,
    dropout: Dropout,
  ): tf.Tensor2D {
    const { nEmbd, nHead } = this.config;
    const headSize = nEmbd / nHead;
    const p = `h.${layer}.`;
    const w = (name: string) => this.matrix(p + name);
    const norm = (name: string) => this.vector(p + name)!;
    const b = (name: string) => this.vector(p + name);

    const h1 = layerNorm(x, norm('ln_1.weight'), b('ln_1.bias')); // (B·T, C)
    const attnBias = b('attn.c_attn.bias');
    let merged: tf.Tensor2D; // (B·T, C), the heads side by side
    if (hasFusedAttention()) {
      // The fused kernels read q, k, v from one (B·T, 3C) product, as c_attn is stored.
      const qkv = linear(h1, w('attn.c_attn.weight'), attnBias); // (B·T, 3C)
      merged = fusedCausalAttention(qkv, batch, nHead, dropout.attention());
    } else {
      // c_attn is split by weight columns, not by output: three (B·T, C) products instead of
      // one (B·T, 3C) product and a split of it, which on wasm cost more than the products.
      const weights = tf.split(w('attn.c_attn.weight'), 3, 1) as tf.Tensor2D[]; // 3 × (C, C)
      const biases = attnBias ? (tf.split(attnBias, 3, 0) as tf.Tensor1D[]) : [];
      const [q, k, v] = weights.map(
        (part, index) =>
          tf.transpose(
            tf.reshape(linear(h1, part, biases[index]), [batch, time, nHead, headSize]),
            [0, 2, 1, 3],
          ) as tf.Tensor4D, // (B, nh, T, hs)
      );
      const attended = causalAttention(q!, k!, v!, dropout.attention()); // (B, nh, T, hs)
      merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [
        batch * time,
        nEmbd,
      ]) as tf.Tensor2D;
    }
    x = tf.add(x, dropout(linear(merged, w('attn.c_proj.weight'), b('attn.c_proj.bias'))));

    const h2 = layerNorm(x, norm('ln_2.weight'), b('ln_2.bias')); // (B·T, C)
    const mlpOut = mlp(
      h2,
      w('mlp.c_fc.weight'),
      b('mlp.c_fc.bias'),
      w('mlp.c_proj.weight'),
      b('mlp.c_proj.bias'),
      activationOf(this.config),
    ); // (B·T, C), via (B·T, 4C)
    return tf.add(x, dropout(mlpOut));
  }

  private dropout(options: ForwardOptions): Dropout {
    const rate = this.config.dropout;
    if (!options.training || rate === 0) {
      const identity = (<T extends tf.Tensor>(x: T) => x) as Dropout;
      identity.attention = () => undefined;
      return identity;
    }
    const random = options.random;
    if (!random) throw new Error('GPT: training with dropout needs options.random');
    // Keep with probability 1 − rate, scaled by 1/(1 − rate) so the expectation is unchanged.
    // tfjs has no global seed: each mask's seed comes from our generator, whose state
    // checkpoints save, so a resumed run draws the same masks.
    const apply = (<T extends tf.Tensor>(x: T) =>
      applyDropout(x, rate, random.nextUint32())) as Dropout;
    apply.attention = () => ({ rate, seed: random.nextUint32() });
    return apply;
  }

  /**
   * Continues `prompt` (token ids) by `maxNewTokens` tokens, one forward pass per token over
   * the last blockSize tokens (no KV cache here: exported models get one in @minigpt/runtime).
   */
  generate(
    prompt: readonly number[],
    maxNewTokens: number,
    options: GenerateOptions = {},
  ): number[] {
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
      throw new RangeError(
        `generate: maxNewTokens must be a positive integer, got ${maxNewTokens}`,
      );
    }
    if (prompt.length === 0) throw new RangeError('generate: the prompt needs at least one token');
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
        throw new RangeError(
          `generate: token id ${id} is outside the vocabulary (0…${this.config.vocabSize - 1})`,
        );
      }
    }
    const random = options.random ?? new Random(options.seed ?? 1337);
    const ids = [...prompt];
    for (let step = 0; step < maxNewTokens; step++) {
      const context = ids.slice(-this.config.blockSize);
      const lastLogits = tf.tidy(() => {
        const time = context.length;
        const hidden = this.hidden(tf.tensor2d([context], [1, time], 'int32'), {}); // (T, C)
        // Only the last position's logits are sampled from: the LM head runs on its row
        // alone, not on all T (for GPT-2's 50,257-token vocabulary the head is most of a step).
        const last = tf.slice(hidden, [time - 1, 0], [1, -1]); // (1, C)
        return tf.reshape(tiedHead(last, this.matrix('wte.weight')), [-1]); // (V)
      });
      const values = lastLogits.dataSync() as Float32Array;
      lastLogits.dispose();
      const id = sampleToken(values, random, options);
      ids.push(id);
      options.onToken?.(id);
    }
    return ids.slice(prompt.length);
  }

  dispose(): void {
    for (const variable of this.weights.values()) variable.dispose();
  }
}

/** Dropout on a tensor, plus the settings for dropout inside attention (undefined: none). */
type Dropout = (<T extends tf.Tensor>(x: T) => T) & {
  attention: () => AttentionDropout | undefined;
};

/** A trainable variable holding `initial`'s values; `initial` itself is released. */
function variableFrom(initial: tf.Tensor): tf.Variable {
  const variable = tf.variable(initial, true);
  initial.dispose();
  return variable;
}

/** nanoGPT's init: N(0, 0.02) weights, residual projections N(0, 0.02/√(2·nLayer)), LN 1/0. */
function initialValue(name: string, shape: number[], config: GPTConfig, random: Random): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  const isNorm = /ln_(1|2|f)\.weight$|^ln_f\.weight$/.test(name);
  if (name.endsWith('.bias')) {
    // zeros
  } else if (isNorm) {
    values.fill(1);
  } else {
    const std = name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * config.nLayer) : 0.02;
    for (let i = 0; i < size; i++) values[i] = random.nextNormal() * std;
  }
  return tf.tensor(values, shape);
}
