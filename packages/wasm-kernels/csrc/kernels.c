// The kernels of @minigpt/wasm-kernels, compiled to WebAssembly with 128-bit SIMD
// (scripts/build-wasm.mjs: clang --target=wasm32 -msimd128, no libc). They compute on
// operands the JavaScript side has copied into this module's own memory, one thread each.
//
// Same contracts as @minigpt/native-kernels' C++ (see src/kernel-set.ts): a packed,
// register-blocked SGEMM with free transposes and broadcast batches; exp, erf, GELU and its
// derivative; LayerNorm forward and backward; one weight's AdamW step; Σ x²; fused causal
// self-attention forward and backward.
//
// Freestanding on purpose: no libc, so nothing but these functions and their memory end up
// in the module (about 29 KB), and the build needs only clang and wasm-ld.

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

// ---- causal self-attention, forward and backward, fused ---------------------------------
//
// The contract of @minigpt/native-kernels' attention (src/kernel-set.ts, KernelSet.attention):
// per (batch row, head), y = softmax(q·kᵀ/√hs + causal mask)·v, reading q, k, v from c_attn's
// output as it lies — qkv (B·T, 3C), q in columns [0, C), k in [C, 2C), v in [2C, 3C), head h
// at [h·hs, (h+1)·hs) — and writing y (B·T, C) with the heads side by side, as c_proj reads
// it; lse (B, nh, T) keeps each query's log-sum-exp, from which the backward recomputes the
// weights, so no (B, nh, T, T) tensor is stored. The products run through the SGEMM above on
// strided operands (q, k, v and their gradients stay where they lie), only the causal part of
// each panel of MR rows (key j ≤ query i, rounded out to the panel). Dropout on the weights when threshold ≥ 0: weight e = ((b·nh + h)·T + i)·T + j is
// kept when lowbias32(start + e·step mod 2³²) ≥ threshold (@minigpt/model's dropoutKeepMask
// stream), kept weights scaled by keepScale. `scratch` is the caller's: attentionScratch /
// attentionGradScratch floats, one head's (T, T) matrices and the packing buffers (one
// (batch row, head) at a time, one thread).

typedef unsigned int u32;
typedef unsigned long long u64;

typedef struct {
  int batch, time, heads, headSize;
  float scale, keepScale;
  i64 threshold;  // −1: no dropout
  u32 start, step;
} Attention;

static inline int paddedTime(int time) { return (time + 3) / 4 * 4; }

// lowbias32 (Wellons), as dropoutKeepMask: 1 when weight `e` is kept.
static inline float kept(const Attention* s, u64 e) {
  u32 x = s->start + (u32)e * s->step;
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return (i64)x >= s->threshold ? 1.f : 0.f;
}

// ln x for a positive, finite, normal x (no libc): x = m·2ᵉ with m in [√½, √2), and
// ln m = 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.172, by its series to s¹³ in double.
static float logPositive(float x) {
  u32 bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  int exponent = (int)((bits >> 23) & 255) - 127;
  bits = (bits & 0x7fffffU) | 0x3f800000U;
  float mantissa;
  __builtin_memcpy(&mantissa, &bits, sizeof mantissa);
  if (mantissa > 1.41421356f) {
    mantissa *= 0.5f;
    exponent++;
  }
  const double s = ((double)mantissa - 1.0) / ((double)mantissa + 1.0), s2 = s * s;
  const double series =
      s * (2.0 + s2 * (2.0 / 3 + s2 * (2.0 / 5 + s2 * (2.0 / 7 + s2 * (2.0 / 9 +
                                                                      s2 * (2.0 / 11 + s2 * 2.0 / 13))))));
  return (float)(exponent * 0.69314718055994531 + series);
}

// An operand read through strides: element (i, p) at data[i·rows + p·columns].
typedef struct {
  const float* data;
  int rows, columns;
} Strided;

// Which part of a causal product gemmPanels computes, per panel of MR rows starting at i0.
enum {
  ALL_OF_IT,
  COLUMNS_UP_TO_PANEL,  // columns j < i0 + MR: scores, a query panel's keys up to its last query
  INNER_UP_TO_PANEL,    // inner p < i0 + MR: weights·values, zero past each query's own key
  INNER_FROM_PANEL,     // inner p ≥ i0: a key panel's sums over the queries from its first key on
};

// C (m, n) (row stride ldc) = A (m, k) · B (k, n) through the SGEMM's packing and tiles, only
// the `part` each row panel needs (the rest of C is left as it was).
static void gemmPanels(Strided a, Strided b, float* c, int ldc, int m, int n, int k, int part,
                       float* packedA, float* packedB) {
  packB(b.data, b.rows, b.columns, k, n, packedB);
  for (int i0 = 0; i0 < m; i0 += MR) {
    const int height = min(MR, m - i0);
    const int columns = part == COLUMNS_UP_TO_PANEL ? min(n, i0 + MR) : n;
    const int p0 = part == INNER_FROM_PANEL ? i0 : 0;
    const int p1 = part == INNER_UP_TO_PANEL ? min(k, i0 + MR) : k;
    packA(a.data + (i64)p0 * a.columns, a.rows, a.columns, i0, height, p1 - p0, packedA);
    for (int j0 = 0; j0 < columns; j0 += NR)
      tile(p1 - p0, packedA, packedB + (i64)j0 * k + (i64)p0 * NR, c + (i64)i0 * ldc + j0, ldc,
           height, min(NR, columns - j0));
  }
}

static Attention attentionShape(int batch, int time, int heads, int headSize, i64 threshold,
                                u32 start, u32 step, float keepScale) {
  Attention s = {batch, time, heads, headSize, 0.f, keepScale, threshold, start, step};
  s.scale = (float)(1.0 / __builtin_sqrt((double)headSize));
  return s;
}

static int roundUp(int x, int to) { return (x + to - 1) / to * to; }

// Floats of the two packing buffers for products of (T, hs) and (T, T) operands.
static int packingFloats(int time, int headSize) {
  const int longest = time > headSize ? time : headSize;
  const int packedB = headSize * roundUp(time, NR) > time * roundUp(headSize, NR)
                          ? headSize * roundUp(time, NR)
                          : time * roundUp(headSize, NR);
  return MR * longest + packedB;
}

// One head's (T, T) matrix, rows of Tp = T rounded up to whole vectors (a row's last vector
// stays in its row).
static int squareStride(int time) { return roundUp(time, 4); }
static int squareFloats(int time) { return time * squareStride(time); }

EXPORT(attentionScratch)
int attentionScratch(int time, int headSize) {
  return squareFloats(time) + packingFloats(time, headSize);
}

EXPORT(attentionGradScratch)
int attentionGradScratch(int time, int headSize) {
  return 2 * squareFloats(time) + packingFloats(time, headSize);
}

// s_ij ← exp(s_ij·scale − shift) for j ≤ i in row i of S, whole vectors from 0 to nv: the
// caller has set the entries in [i + 1, nv) to −∞, whose exp is 0.
static void expRow(float* row, int nv, float scale, float shift) {
  for (int j = 0; j < nv; j += 4)
    store(row + j, vexp(load(row + j) * splat(scale) - splat(shift)));
}

static inline float maxOfLanes(vec x) {
  const float a = x[0] > x[1] ? x[0] : x[1], b = x[2] > x[3] ? x[2] : x[3];
  return a > b ? a : b;
}

// Row i's entries past the key i: −∞ up to its last vector (nv), 0 after, to the padded end.
static void maskRow(float* row, int n, int nv, int Tp) {
  for (int j = n; j < nv; j++) row[j] = -__builtin_inff();
  for (int j = nv; j < Tp; j += 4) store(row + j, splat(0.f));
}

EXPORT(attention)
void attention(const float* qkv, float* y, float* lse, float* scratch, int batch, int time,
               int heads, int headSize, double threshold, u32 start, u32 step, float keepScale) {
  const Attention shape =
      attentionShape(batch, time, heads, headSize, (i64)threshold, start, step, keepScale);
  const Attention* s = &shape;
  const int T = time, hs = headSize, C = heads * headSize, in = 3 * C;
  const int dropout = s->threshold >= 0, Tp = squareStride(T);
  float* weights = scratch;  // (T, Tp): scores, then weights, zero past each query's key
  float* packedA = weights + squareFloats(T);
  float* packedB = packedA + MR * (T > hs ? T : hs);
  for (int task = 0; task < batch * heads; task++) {
    const int b = task / heads, h = task % heads;
    const float* q = qkv + (i64)b * T * in + h * hs;  // this head's (T, hs) blocks, stride 3C
    const float* k = q + C;
    const float* v = q + 2 * C;
    // scores = q·kᵀ (T, T), keys up to each query panel's last query.
    gemmPanels((Strided){q, in, 1}, (Strided){k, 1, in}, weights, Tp, T, T, hs,
               COLUMNS_UP_TO_PANEL, packedA, packedB);
    for (int i = 0; i < T; i++) {
      float* row = weights + (i64)i * Tp;
      const int n = i + 1, nv = roundUp(n, 4);  // keys 0..i, in whole vectors
      maskRow(row, n, nv, Tp);
      vec maxes = load(row);
      for (int j = 4; j < nv; j += 4) {
        const vec x = load(row + j);
        maxes = select(x > maxes, x, maxes);
      }
      const float max = maxOfLanes(maxes) * s->scale;  // scale > 0: the max of the scaled
      expRow(row, nv, s->scale, max);
      vec sums = splat(0.f);
      for (int j = 0; j < nv; j += 4) sums += load(row + j);
      const float sum = sums[0] + sums[1] + sums[2] + sums[3];
      lse[(i64)task * T + i] = max + logPositive(sum);
      const float factor = (dropout ? s->keepScale : 1.f) / sum;
      if (dropout) {
        const u64 first = ((u64)task * T + i) * T;  // weight number of j = 0
        for (int j = 0; j < n; j++) row[j] *= kept(s, first + j) * factor;
      } else {
        for (int j = 0; j < nv; j += 4) store(row + j, load(row + j) * splat(factor));
      }
    }
    // y = weights·v (T, hs), into this head's columns of y (row stride C).
    gemmPanels((Strided){weights, Tp, 1}, (Strided){v, in, 1}, y + (i64)b * T * C + h * hs, C,
               T, hs, T, INNER_UP_TO_PANEL, packedA, packedB);
  }
}

// With p = exp(q·kᵀ·scale − lse) and m = keep·keepScale (1 without dropout):
//   dv_j = Σ_i p_ij·m_ij·dy_i;  dp_ij = dy_i·v_j;  ds_ij = p_ij·(m_ij·dp_ij − dy_i·y_i)·scale;
//   dq_i = Σ_j ds_ij·k_j;  dk_j = Σ_i ds_ij·q_i.  dqkv is laid out as qkv.
EXPORT(attentionGrad)
void attentionGrad(const float* dy, const float* qkv, const float* y, const float* lse,
                   float* dqkv, float* scratch, int batch, int time, int heads, int headSize,
                   double threshold, u32 start, u32 step, float keepScale) {
  const Attention shape =
      attentionShape(batch, time, heads, headSize, (i64)threshold, start, step, keepScale);
  const Attention* s = &shape;
  const int T = time, hs = headSize, C = heads * headSize, in = 3 * C;
  const int dropout = s->threshold >= 0, Tp = squareStride(T);
  float* weights = scratch;                       // (T, Tp): p, then p·m
  float* scoreGrads = weights + squareFloats(T);  // (T, Tp): dp, then ds
  float* packedA = scoreGrads + squareFloats(T);
  float* packedB = packedA + MR * (T > hs ? T : hs);
  for (int task = 0; task < batch * heads; task++) {
    const int b = task / heads, h = task % heads;
    const float* q = qkv + (i64)b * T * in + h * hs;
    const float* k = q + C;
    const float* v = q + 2 * C;
    float* dq = dqkv + (i64)b * T * in + h * hs;
    float* dk = dq + C;
    float* dv = dq + 2 * C;
    const float* dyh = dy + (i64)b * T * C + h * hs;
    const float* yh = y + (i64)b * T * C + h * hs;
    gemmPanels((Strided){q, in, 1}, (Strided){k, 1, in}, weights, Tp, T, T, hs,
               COLUMNS_UP_TO_PANEL, packedA, packedB);
    gemmPanels((Strided){dyh, C, 1}, (Strided){v, 1, in}, scoreGrads, Tp, T, T, hs,
               COLUMNS_UP_TO_PANEL, packedA, packedB);
    for (int i = 0; i < T; i++) {
      float* p = weights + (i64)i * Tp;
      float* ds = scoreGrads + (i64)i * Tp;
      const int n = i + 1, nv = roundUp(n, 4);
      maskRow(p, n, nv, Tp);  // p past i: 0 once exponentiated, so ds there is 0 too
      expRow(p, nv, s->scale, lse[(i64)task * T + i]);
      float dot = 0.f;
      for (int d = 0; d < hs; d++) dot += dyh[(i64)i * C + d] * yh[(i64)i * C + d];
      if (dropout) {
        const u64 first = ((u64)task * T + i) * T;
        for (int j = 0; j < n; j++) {
          const float m = kept(s, first + j) * s->keepScale;
          ds[j] = p[j] * (m * ds[j] - dot) * s->scale;
          p[j] *= m;  // from here on p holds the kept weights, which dv needs
        }
        for (int j = n; j < nv; j++) ds[j] = 0.f;
      } else {
        for (int j = 0; j < nv; j += 4)
          store(ds + j, load(p + j) * (load(ds + j) - splat(dot)) * splat(s->scale));
      }
      for (int j = nv; j < Tp; j += 4) store(ds + j, splat(0.f));
    }
    // dv = (p·m)ᵀ·dy and dk = dsᵀ·q: key panels sum over the queries from their first key on.
    gemmPanels((Strided){weights, 1, Tp}, (Strided){dyh, C, 1}, dv, in, T, hs, T,
               INNER_FROM_PANEL, packedA, packedB);
    gemmPanels((Strided){scoreGrads, 1, Tp}, (Strided){q, in, 1}, dk, in, T, hs, T,
               INNER_FROM_PANEL, packedA, packedB);
    // dq = ds·k: query panels sum over the keys up to their last query.
    gemmPanels((Strided){scoreGrads, Tp, 1}, (Strided){k, in, 1}, dq, in, T, hs, T,
               INNER_UP_TO_PANEL, packedA, packedB);
  }
}
