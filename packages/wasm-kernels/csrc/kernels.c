// The kernels of @minigpt/wasm-kernels, compiled to WebAssembly with 128-bit SIMD
// (scripts/build-wasm.mjs: clang --target=wasm32 -msimd128, no libc). They compute on
// operands the JavaScript side has copied into this module's own memory, one thread each.
//
// Same contracts as @minigpt/native-kernels' C++ (see src/kernel-set.ts): a packed,
// register-blocked SGEMM with free transposes and broadcast batches; exp, erf, GELU and its
// derivative; LayerNorm forward and backward; one weight's AdamW step; Σ x².
//
// Freestanding on purpose: no libc, so nothing but these functions and their memory end up
// in the module (about 19 KB), and the build needs only clang and wasm-ld.

typedef float vec __attribute__((vector_size(16), aligned(4)));  // one v128: 4 floats
typedef int ivec __attribute__((vector_size(16), aligned(4)));
typedef long long i64;

#define EXPORT(name) __attribute__((export_name(#name)))

// A C tile is MR × NR: 6 rows of two vectors, 12 accumulators + 2 B vectors + 1 broadcast,
// within the 16 SIMD registers V8 maps wasm's v128 values to on x86-64.
#define MR 6
#define NR 8

static inline vec load(const float* p) {
  vec v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void store(float* p, vec v) { __builtin_memcpy(p, &v, sizeof v); }
static inline vec splat(float value) { return (vec){value, value, value, value}; }
static inline int min(int a, int b) { return a < b ? a : b; }

// ---- SGEMM ----------------------------------------------------------------------------
//
// C (m, n) = A (m, k) · B (k, n), A's element (i, p) at a[i·ars + p·acs] and B's (p, j) at
// b[p·brs + j·bcs]: a transposed operand only swaps its strides, so transposes are free.
// B is packed once per matrix into NR-wide column panels (packedB: k × roundup(n, NR)), A
// one MR-tall row panel at a time (packedA: MR × k), both zero-padded at the edges.

static void packB(const float* b, int brs, int bcs, int k, int n, float* out) {
  for (int j0 = 0; j0 < n; j0 += NR) {
    const int width = min(NR, n - j0);
    float* panel = out + (i64)j0 * k;
    for (int p = 0; p < k; p++) {
      const float* row = b + (i64)p * brs + (i64)j0 * bcs;
      float* dst = panel + p * NR;
      int c = 0;
      if (bcs == 1)
        for (; c < width; c++) dst[c] = row[c];
      else
        for (; c < width; c++) dst[c] = row[(i64)c * bcs];
      for (; c < NR; c++) dst[c] = 0.f;
    }
  }
}

static void packA(const float* a, int ars, int acs, int i0, int height, int k, float* out) {
  for (int r = 0; r < MR; r++) {
    if (r < height) {
      const float* src = a + (i64)(i0 + r) * ars;
      if (acs == 1)
        for (int p = 0; p < k; p++) out[p * MR + r] = src[p];
      else
        for (int p = 0; p < k; p++) out[p * MR + r] = src[(i64)p * acs];
    } else {
      for (int p = 0; p < k; p++) out[p * MR + r] = 0.f;
    }
  }
}

// The MR × NR tile at c (row stride ldc) = packed A panel · packed B panel; only `rows` ×
// `cols` of it are written where the tile crosses C's edge.
__attribute__((noinline)) static void tile(int k, const float* ap, const float* bp, float* c,
                                           int ldc, int rows, int cols) {
  vec c00 = splat(0), c01 = splat(0), c10 = splat(0), c11 = splat(0), c20 = splat(0),
      c21 = splat(0), c30 = splat(0), c31 = splat(0), c40 = splat(0), c41 = splat(0),
      c50 = splat(0), c51 = splat(0);
  for (int p = 0; p < k; p++) {
    const vec b0 = load(bp + p * NR), b1 = load(bp + p * NR + 4);
    const float* a = ap + p * MR;
    vec x = splat(a[0]);
    c00 += x * b0, c01 += x * b1;
    x = splat(a[1]);
    c10 += x * b0, c11 += x * b1;
    x = splat(a[2]);
    c20 += x * b0, c21 += x * b1;
    x = splat(a[3]);
    c30 += x * b0, c31 += x * b1;
    x = splat(a[4]);
    c40 += x * b0, c41 += x * b1;
    x = splat(a[5]);
    c50 += x * b0, c51 += x * b1;
  }
  float t[MR * NR];
  store(t, c00), store(t + 4, c01), store(t + 8, c10), store(t + 12, c11);
  store(t + 16, c20), store(t + 20, c21), store(t + 24, c30), store(t + 28, c31);
  store(t + 32, c40), store(t + 36, c41), store(t + 40, c50), store(t + 44, c51);
  if (rows == MR && cols == NR) {
    for (int r = 0; r < MR; r++) {
      store(c + (i64)r * ldc, load(t + r * NR));
      store(c + (i64)r * ldc + 4, load(t + r * NR + 4));
    }
    return;
  }
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < cols; j++) c[(i64)r * ldc + j] = t[r * NR + j];
}

// `batch` products C[i] = op(A[i]) · op(B[i]); strideA / strideB 0 share one matrix across
// the batch (its packing is then done once). C is (batch, m, n), contiguous.
EXPORT(matmul)
void matmul(const float* a, const float* b, float* c, int batch, int m, int n, int k,
            int transposeA, int transposeB, int strideA, int strideB, float* packedA,
            float* packedB) {
  const int ars = transposeA ? 1 : k, acs = transposeA ? m : 1;
  const int brs = transposeB ? 1 : n, bcs = transposeB ? k : 1;
  for (int item = 0; item < batch; item++) {
    const float* ai = a + (i64)item * strideA;
    const float* bi = b + (i64)item * strideB;
    float* ci = c + (i64)item * m * n;
    if (item == 0 || strideB != 0) packB(bi, brs, bcs, k, n, packedB);
    for (int i0 = 0; i0 < m; i0 += MR) {
      const int height = min(MR, m - i0);
      packA(ai, ars, acs, i0, height, k, packedA);
      for (int j0 = 0; j0 < n; j0 += NR)
        tile(k, packedA, packedB + (i64)j0 * k, ci + (i64)i0 * n + j0, n, height,
             min(NR, n - j0));
    }
  }
}

// ---- element-wise exp, erf, GELU --------------------------------------------------------
//
// exp: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for exactness), e^r by its Taylor
// polynomial to r⁷, 2ⁿ built in exponent bits (as two factors: n reaches 128); 0 below
// −87.3, +∞ above 88.7. erf: Abramowitz & Stegun 7.1.26, the approximation tfjs's cpu kernel
// uses (the formula is within 1.5e-7; evaluated in float32, 1 − poly·e^(−x²) loses a few
// bits near 0: within 6e-7 below |x| = 1, 2e-7 above). The same formulas as
// @minigpt/native-kernels.

static inline vec select(ivec mask, vec yes, vec no) {
  ivec y, n;
  __builtin_memcpy(&y, &yes, sizeof y);
  __builtin_memcpy(&n, &no, sizeof n);
  const ivec r = (y & mask) | (n & ~mask);
  vec out;
  __builtin_memcpy(&out, &r, sizeof out);
  return out;
}

static inline vec vexp(vec x) {
  vec clamped = select(x < splat(-87.3f), splat(-87.3f), x);
  clamped = select(clamped > splat(88.7f), splat(88.7f), clamped);
  const vec scaled = clamped * splat(1.44269504088896341f);
  const vec rounded = scaled + select(scaled < splat(0.f), splat(-0.5f), splat(0.5f));
  const ivec n = __builtin_convertvector(rounded, ivec);
  const vec nf = __builtin_convertvector(n, vec);
  const vec r = clamped - nf * splat(0.693359375f) - nf * splat(-2.12194440e-4f);
  vec p = splat(1.f / 5040.f);
  p = p * r + splat(1.f / 720.f);
  p = p * r + splat(1.f / 120.f);
  p = p * r + splat(1.f / 24.f);
  p = p * r + splat(1.f / 6.f);
  p = p * r + splat(0.5f);
  p = p * r + splat(1.f);
  p = p * r + splat(1.f);
  const ivec half = n >> 1;
  const ivec bitsLow = (half + 127) << 23;
  const ivec bitsHigh = (n - half + 127) << 23;
  vec low, high;
  __builtin_memcpy(&low, &bitsLow, sizeof low);
  __builtin_memcpy(&high, &bitsHigh, sizeof high);
  vec result = p * low * high;
  result = select(x < splat(-87.3f), splat(0.f), result);
  return select(x > splat(88.7f), splat(__builtin_inff()), result);
}

static inline vec verf(vec x) {
  const ivec negative = x < splat(0.f);
  const vec ax = select(negative, -x, x);
  const vec t = splat(1.f) / (splat(1.f) + splat(0.3275911f) * ax);
  vec poly = splat(1.061405429f);
  poly = poly * t + splat(-1.453152027f);
  poly = poly * t + splat(1.421413741f);
  poly = poly * t + splat(-0.284496736f);
  poly = poly * t + splat(0.254829592f);
  poly = poly * t;
  const vec y = splat(1.f) - poly * vexp(-ax * ax);
  return select(negative, -y, y);
}

// Exact GELU x·Φ(x), Φ(x) = (1 + erf(x/√2))/2, and its derivative Φ(x) + x·φ(x).
static inline vec vgelu(vec x) {
  return x * (splat(0.5f) + splat(0.5f) * verf(x * splat(0.70710678118654752f)));
}
static inline vec vgeluGrad(vec x) {
  const vec cdf = splat(0.5f) + splat(0.5f) * verf(x * splat(0.70710678118654752f));
  const vec density = vexp(x * x * splat(-0.5f)) * splat(0.39894228040143268f);
  return cdf + x * density;
}

// One loop per function, each with its function inlined: dispatching per vector (a call
// with v128 arguments every 4 floats) made GELU 2–3× slower.
#define UNARY_LOOP(f)                                                   \
  for (; i + 4 <= count; i += 4) {                                      \
    const vec y = f(load(in + i));                                      \
    store(out + i, scale ? y * load(scale + i) : y);                    \
  }                                                                     \
  if (i < count) { /* the tail, through one zero-padded vector */       \
    float tail[4] = {0, 0, 0, 0}, tailScale[4] = {0, 0, 0, 0};          \
    for (int j = i; j < count; j++) tail[j - i] = in[j];                \
    if (scale)                                                          \
      for (int j = i; j < count; j++) tailScale[j - i] = scale[j];      \
    vec y = f(load(tail));                                              \
    if (scale) y = y * load(tailScale);                                 \
    store(tail, y);                                                     \
    for (int j = i; j < count; j++) out[j] = tail[j - i];               \
  }

// out[i] = f(in[i]), f by op (0 exp, 1 erf, 2 GELU, 3 GELU′); with scale, · scale[i].
EXPORT(unary)
void unary(const float* in, float* out, int count, int op, const float* scale) {
  int i = 0;
  switch (op) {
    case 0:
      UNARY_LOOP(vexp)
      break;
    case 1:
      UNARY_LOOP(verf)
      break;
    case 2:
      UNARY_LOOP(vgelu)
      break;
    default:
      UNARY_LOOP(vgeluGrad)
  }
}

// ---- LayerNorm over the last axis -------------------------------------------------------
//
// Forward, per row: mean, biased variance (sums in double), rstd = 1/√(var + eps),
// x̂ = (x − mean)·rstd, y = x̂·γ (+ β). Backward with g = dy·γ:
// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), dγ = Σ_rows dy·x̂, dβ = Σ_rows dy.

EXPORT(layerNorm)
void layerNorm(const float* x, const float* gamma, const float* beta, float* y,
               float* normalized, float* rstdOut, int rows, int channels, float eps) {
  for (int r = 0; r < rows; r++) {
    const float* xr = x + (i64)r * channels;
    double sum = 0;
    for (int c = 0; c < channels; c++) sum += xr[c];
    const float mean = (float)(sum / channels);
    double squares = 0;
    for (int c = 0; c < channels; c++) {
      const float d = xr[c] - mean;
      squares += (double)d * d;
    }
    const float rstd = 1.f / __builtin_sqrtf((float)(squares / channels) + eps);
    rstdOut[r] = rstd;
    float* nr = normalized + (i64)r * channels;
    float* yr = y + (i64)r * channels;
    for (int c = 0; c < channels; c++) {
      const float n = (xr[c] - mean) * rstd;
      nr[c] = n;
      yr[c] = beta ? n * gamma[c] + beta[c] : n * gamma[c];
    }
  }
}

EXPORT(layerNormGrad)
void layerNormGrad(const float* dy, const float* normalized, const float* rstd,
                   const float* gamma, float* dx, float* dGamma, float* dBeta, int rows,
                   int channels) {
  for (int c = 0; c < channels; c++) dGamma[c] = dBeta[c] = 0.f;
  for (int r = 0; r < rows; r++) {
    const float* dyr = dy + (i64)r * channels;
    const float* nr = normalized + (i64)r * channels;
    double sumG = 0, sumGX = 0;
    for (int c = 0; c < channels; c++) {
      const float g = dyr[c] * gamma[c];
      sumG += g;
      sumGX += (double)g * nr[c];
      dGamma[c] += dyr[c] * nr[c];
      dBeta[c] += dyr[c];
    }
    const float meanG = (float)(sumG / channels);
    const float meanGX = (float)(sumGX / channels);
    float* dxr = dx + (i64)r * channels;
    for (int c = 0; c < channels; c++)
      dxr[c] = rstd[r] * (dyr[c] * gamma[c] - meanG - nr[c] * meanGX);
  }
}

// ---- AdamW and Σ x² ---------------------------------------------------------------------
//
// PyTorch's AdamW on one weight with its gradient scaled by `scale` (the clipping factor):
// g = grad·scale, m' = β1·m + (1−β1)·g, v' = β2·v + (1−β2)·g², w' = w·decay −
// lr·(m'/c1)/(√(v'/c2) + ε), in the operation order of the tfjs ops it replaces.
EXPORT(adamw)
void adamw(const float* restrict weight, const float* restrict grad, const float* restrict m,
           const float* restrict v, float scale, float* restrict weightOut, float* restrict mOut,
           float* restrict vOut, int count, float beta1, float oneMinusBeta1, float beta2,
           float oneMinusBeta2, float correction1, float correction2, float epsilon, float lr,
           float decay) {
  for (int i = 0; i < count; i++) {
    const float g = grad[i] * scale;
    const float mi = m[i] * beta1 + g * oneMinusBeta1;
    const float vi = v[i] * beta2 + (g * g) * oneMinusBeta2;
    const float update = (mi / correction1) / (__builtin_sqrtf(vi / correction2) + epsilon);
    weightOut[i] = weight[i] * decay - update * lr;
    mOut[i] = mi;
    vOut[i] = vi;
  }
}

// Σ x² in double: chunks of 16 Ki floats, each summed in 16 running lanes, the chunks added
// in order — the order @minigpt/native-kernels uses, so both give the same sum.
EXPORT(sumOfSquares)
double sumOfSquares(const float* x, int count) {
  double total = 0;
  for (int begin = 0; begin < count; begin += 1 << 14) {
    const int end = min(count, begin + (1 << 14));
    double lanes[16] = {0};
    int i = begin;
    for (; i + 16 <= end; i += 16)
      for (int lane = 0; lane < 16; lane++) lanes[lane] += (double)x[i + lane] * x[i + lane];
    for (; i < end; i++) lanes[0] += (double)x[i] * x[i];
    double chunk = 0;
    for (int lane = 0; lane < 16; lane++) chunk += lanes[lane];
    total += chunk;
  }
  return total;
}
