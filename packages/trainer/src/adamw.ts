// AdamW (decoupled weight decay) with clipping by global gradient norm. Its state (step,
// first and second moments per weight) saves and loads as plain arrays for checkpoints.
// It knows nothing of models: it updates whatever named variables it is given.
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon?: number;
  readonly weightDecay: number;
  /** Names of the weights that decay; the others (biases, norms, embeddings) do not. */
  readonly decay: (name: string) => boolean;
}

/** Steps taken and the moments of each weight (shaped as the weight), as checkpoints hold them. */
export interface AdamWState {
  readonly step: number;
  readonly moments: ReadonlyMap<string, { readonly m: Float32Array; readonly v: Float32Array }>;
}

/**
 * Fused kernels a backend may register (`@minigpt/native-kernels` does on wasm); without
 * them the same math runs as tfjs ops (~18 per weight, each a pass over memory plus its
 * dispatch: 12–23 ms of a ~110 ms `baby` step on a 2-core Xeon, under 1 ms fused).
 *   MinigptAdamW         {weight, grad, m, v, scale (scalar)},
 *                        {beta1, beta2, epsilon, correction1, correction2, lr, decay}
 *                        → [weight', m', v']
 *   MinigptSumOfSquares  {any names: tensors} → Σ x² over all of them (a scalar)
 */
export const FUSED_ADAMW = 'MinigptAdamW';
export const FUSED_SUM_OF_SQUARES = 'MinigptSumOfSquares';

const hasKernel = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;

export class AdamW {
  step = 0;
  private readonly m = new Map<string, tf.Tensor>();
  private readonly v = new Map<string, tf.Tensor>();

  constructor(
    private readonly weights: ReadonlyMap<string, tf.Variable>,
    private readonly options: AdamWOptions,
  ) {
    for (const [name, weight] of weights) {
      this.m.set(name, tf.keep(tf.zerosLike(weight)));
      this.v.set(name, tf.keep(tf.zerosLike(weight)));
    }
  }

  /**
   * One update with learning rate `lr`. Gradients are first scaled so their global L2 norm
   * is at most `clipNorm` (0: no clipping). Returns the global norm before clipping (a
   * scalar the caller disposes). Does not dispose `grads`.
   */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number, clipNorm: number): tf.Scalar {
    this.step++;
    const { beta1, beta2, weightDecay } = this.options;
    const epsilon = this.options.epsilon ?? 1e-8;
    const correction1 = 1 - beta1 ** this.step;
    const correction2 = 1 - beta2 ** this.step;
    const fused = hasKernel(FUSED_ADAMW) && hasKernel(FUSED_SUM_OF_SQUARES);
    return tf.tidy(() => {
      const norm = tf.sqrt(
        fused
          ? (tf
              .engine()
              .runKernel(
                FUSED_SUM_OF_SQUARES,
                Object.fromEntries(grads) as tf.NamedTensorMap,
              ) as tf.Scalar)
          : // Added one at a time, not tf.addN: WebGPU allows 8 storage buffers per shader,
            // and addN of every weight's square (29 at nano) would need one per input.
            [...grads.values()]
              .map((grad) => tf.sum(tf.square(grad)))
              .reduce((total, square) => tf.add(total, square)),
      ) as tf.Scalar;
      // scale = min(1, clip / norm): computed on the device, no read-back.
      const scale =
        clipNorm > 0 ? tf.minimum(1, tf.div(clipNorm, tf.add(norm, 1e-6))) : tf.scalar(1);
      for (const [name, weight] of this.weights) {
        const grad = grads.get(name);
        if (!grad) throw new Error(`AdamW: no gradient for ${name}`);
        // The weight's multiplier for decoupled decay (1: this weight does not decay).
        const decay = this.options.decay(name) ? 1 - lr * weightDecay : 1;
        if (fused) {
          const [updated, m, v] = tf
            .engine()
            .runKernel(
              FUSED_ADAMW,
              { weight, grad, m: this.m.get(name)!, v: this.v.get(name)!, scale },
              { beta1, beta2, epsilon, correction1, correction2, lr, decay },
            ) as tf.Tensor[];
          weight.assign(updated!);
          this.replace(this.m, name, m!);
          this.replace(this.v, name, v!);
          continue;
        }
        const g = tf.mul(grad, scale);
        const m = tf.add(tf.mul(this.m.get(name)!, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v.get(name)!, beta2), tf.mul(tf.square(g), 1 - beta2));
        const update = tf.div(
          tf.div(m, correction1),
          tf.add(tf.sqrt(tf.div(v, correction2)), epsilon),
        );
        const decayed = decay !== 1 ? tf.mul(weight, decay) : weight;
        weight.assign(tf.sub(decayed, tf.mul(update, lr)));
        this.replace(this.m, name, m);
        this.replace(this.v, name, v);
      }
      return norm;
    });
  }

  private replace(store: Map<string, tf.Tensor>, name: string, value: tf.Tensor): void {
    store.get(name)?.dispose();
    store.set(name, tf.keep(value));
  }

  async getState(): Promise<AdamWState> {
    const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
    for (const [name, m] of this.m) {
      moments.set(name, {
        m: (await m.data()) as Float32Array,
        v: (await this.v.get(name)!.data()) as Float32Array,
      });
    }
    return { step: this.step, moments };
  }

  /** Takes saved moments; checkpoint readers have checked them, so a mismatch is a bug. */
  setState(state: AdamWState): void {
    for (const [name, weight] of this.weights) {
      const saved = state.moments.get(name);
      if (!saved || saved.m.length !== weight.size || saved.v.length !== weight.size) {
        throw new Error(`AdamW.setState: no moments of ${weight.size} values for ${name}`);
      }
      this.replace(this.m, name, tf.tensor(saved.m, weight.shape));
      this.replace(this.v, name, tf.tensor(saved.v, weight.shape));
    }
    this.step = state.step;
  }

  dispose(): void {
    for (const tensor of [...this.m.values(), ...this.v.values()]) tensor.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** minGPT's rule (the issue's): matrices in linear layers decay; biases, norms and embeddings do not. */
export function decaysWeight(name: string): boolean {
  return (
    name.endsWith('.weight') &&
    !/(^|\.)ln_(1|2|f)\./.test(name) &&
    name !== 'wte.weight' &&
    name !== 'wpe.weight'
  );
}
