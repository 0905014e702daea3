// A packed, register-blocked SGEMM for the matMuls of a GPT train step, called by the
// tfjs kernels in ../src on tensors that live in the tfjs wasm heap (no copies).
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N), batched, with A or B broadcast over the batch.
//
// Layout follows the usual Goto scheme: B is packed into NR-wide column panels of KC rows,
// A into MR-tall row panels, and a micro-kernel keeps an MR × NR tile of C in registers.
// Transposes cost nothing extra: they only change the strides the packing reads with.
// Vector types are GCC/Clang vector extensions, so the same code becomes AVX-512, AVX2/FMA
// or NEON code depending on the compiler flags (built with -march=native on install).
#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

#if defined(__AVX512F__)
constexpr int kLanes = 16;  // one zmm register
constexpr int MR = 8;
#else
constexpr int kLanes = 8;  // one ymm register (AVX2), or two NEON registers
constexpr int MR = 6;
#endif
constexpr int NR = 2 * kLanes;  // a C tile row is two vectors wide
constexpr int KC = 256;         // rows of a packed B panel (fits L1 with the A panel)
constexpr int MC = 96;          // rows of A packed at once (a multiple of MR and of 6, 8)
constexpr int NC = 2048;        // columns of B packed at once (fits L2)

typedef float vec __attribute__((vector_size(kLanes * 4), aligned(4)));

struct Strides {
  int64_t row, col;  // element (i, j) is at base[i * row + j * col]
};

// Packs the kc × nc block of B starting at (k0, j0) into NR-wide panels, zero-padded:
// panel p holds B[k0 + k][j0 + p·NR + c] at packed[p·kc·NR + k·NR + c].
void packB(const float* b, Strides s, int k0, int kc, int j0, int nc, float* packed) {
  for (int p = 0; p < nc; p += NR) {
    const int width = std::min(NR, nc - p);
    float* out = packed + static_cast<int64_t>(p) * kc;
    for (int k = 0; k < kc; k++) {
      const float* row = b + (k0 + k) * s.row + static_cast<int64_t>(j0 + p) * s.col;
      int c = 0;
      if (s.col == 1)
        for (; c < width; c++) out[k * NR + c] = row[c];
      else
        for (; c < width; c++) out[k * NR + c] = row[c * s.col];
      for (; c < NR; c++) out[k * NR + c] = 0.f;
    }
  }
}

// Packs the mc × kc block of A starting at (i0, k0) into MR-tall panels, zero-padded:
// panel p holds A[i0 + p·MR + r][k0 + k] at packed[p·kc·MR + k·MR + r].
void packA(const float* a, Strides s, int i0, int mc, int k0, int kc, float* packed) {
  for (int p = 0; p < mc; p += MR) {
    const int height = std::min(MR, mc - p);
    float* out = packed + static_cast<int64_t>(p) * kc;
    for (int r = 0; r < MR; r++) {
      if (r < height) {
        const float* src = a + (i0 + p + r) * s.row + static_cast<int64_t>(k0) * s.col;
        for (int k = 0; k < kc; k++) out[k * MR + r] = src[k * s.col];
      } else {
        for (int k = 0; k < kc; k++) out[k * MR + r] = 0.f;
      }
    }
  }
}

inline vec load(const float* p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vec v) { std::memcpy(p, &v, sizeof v); }

// One float from memory into every lane, as a broadcast *load* (a load port only). From
// `vec{} + a[r]` GCC loads the float into a register and broadcasts from there, and on Intel
// cores that broadcast is a shuffle on the port of the second FMA unit.
inline vec broadcastLoad(const float* p) {
#if defined(__x86_64__) && (defined(__AVX512F__) || defined(__AVX2__))
  vec v;
  asm("vbroadcastss %1, %0" : "=v"(v) : "m"(*p));
  return v;
#else
  return vec{} + *p;
#endif
}

// A whole C tile (MR × NR) (+)= Ap (MR × kc, packed) · Bp (kc × NR, packed). `accumulate`
// adds to C (K split into KC blocks) instead of overwriting it. Kept apart from the edge
// handling and unrolled by force: with runtime edge sizes in the same function, GCC kept the
// accumulators in memory and stored all 16 on every k step (a quarter of the FMA peak on a
// Xeon).
__attribute__((noinline)) void tileKernel(int kc, const float* ap, const float* bp, float* c,
                                          int64_t ldc, bool accumulate) {
  vec acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++) acc0[r] = acc1[r] = vec{};
  for (int k = 0; k < kc; k++) {
    const vec b0 = load(bp + k * NR);
    const vec b1 = load(bp + k * NR + kLanes);
    const float* a = ap + k * MR;
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      const vec broadcast = broadcastLoad(a + r);
      acc0[r] += broadcast * b0;
      acc1[r] += broadcast * b1;
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++) {
    float* row = c + r * ldc;
    store(row, accumulate ? load(row) + acc0[r] : acc0[r]);
    store(row + kLanes, accumulate ? load(row + kLanes) + acc1[r] : acc1[r]);
  }
}

// The same for a tile cut by C's edge (`rows` ≤ MR, `cols` ≤ NR): computed whole into a
// scratch tile, and only its valid part written.
void microKernel(int kc, const float* ap, const float* bp, float* c, int64_t ldc, int rows,
                 int cols, bool accumulate) {
  if (rows == MR && cols == NR) {
    tileKernel(kc, ap, bp, c, ldc, accumulate);
    return;
  }
  alignas(64) float tile[MR * NR];
  tileKernel(kc, ap, bp, tile, NR, false);
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < cols; j++)
      c[r * ldc + j] = (accumulate ? c[r * ldc + j] : 0.f) + tile[r * NR + j];
}

struct Gemm {
  const float* a;
  const float* b;
  float* c;
  int m, n, k;
  Strides sa, sb;
};

// The rows [i0, i1) of one GEMM, with B already packed for columns [j0, j0 + nc) and K
// block [k0, k0 + kc).
void gemmRows(const Gemm& g, const float* packedB, int j0, int nc, int k0, int kc, int i0,
              int i1, float* packedA) {
  for (int ic = i0; ic < i1; ic += MC) {
    const int mc = std::min(MC, i1 - ic);
    packA(g.a, g.sa, ic, mc, k0, kc, packedA);
    for (int jr = 0; jr < nc; jr += NR) {
      const float* bp = packedB + static_cast<int64_t>(jr) * kc;
      for (int ir = 0; ir < mc; ir += MR) {
        microKernel(kc, packedA + static_cast<int64_t>(ir) * kc, bp,
                    g.c + static_cast<int64_t>(ic + ir) * g.n + j0 + jr, g.n,
                    std::min(MR, mc - ir), std::min(NR, nc - jr), k0 > 0);
      }
    }
  }
}

float* alignedFloats(size_t count) {
  void* p = nullptr;
  if (posix_memalign(&p, 64, std::max<size_t>(count, 1) * sizeof(float)) != 0) return nullptr;
  return static_cast<float*>(p);
}

int threadCount() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// One whole GEMM on `threads` threads: B panels are packed once and shared, row blocks of
// A are split between the threads.
void gemmParallel(const Gemm& g, int threads) {
  const int nPanel = std::min(NC, ((g.n + NR - 1) / NR) * NR);
  float* packedB = alignedFloats(static_cast<size_t>(KC) * nPanel);
  if (g.k == 0) {
    for (int i = 0; i < g.m; i++) std::fill(g.c + static_cast<int64_t>(i) * g.n, g.c + static_cast<int64_t>(i + 1) * g.n, 0.f);
  }
  for (int j0 = 0; j0 < g.n; j0 += NC) {
    const int nc = std::min(NC, g.n - j0);
    for (int k0 = 0; k0 < g.k; k0 += KC) {
      const int kc = std::min(KC, g.k - k0);
      packB(g.b, g.sb, k0, kc, j0, nc, packedB);
      // Blocks of MC rows, dealt out to the threads.
      const int blocks = (g.m + MC - 1) / MC;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && blocks > 1)
      for (int block = 0; block < blocks; block++) {
        thread_local std::vector<float> packedA;
        packedA.resize(static_cast<size_t>(MC) * KC + 16);
        const int i0 = block * MC;
        gemmRows(g, packedB, j0, nc, k0, kc, i0, std::min(g.m, i0 + MC), packedA.data());
      }
    }
  }
  free(packedB);
}

// Batched: a batch large enough to keep every thread busy is split by batch item, each item
// a single-threaded GEMM; otherwise items run one after another, each on all threads.
void batchedGemm(const float* a, const float* b, float* c, int batch, int m, int n, int k,
                 bool transposeA, bool transposeB, bool broadcastA, bool broadcastB) {
  const Strides sa = transposeA ? Strides{1, m} : Strides{k, 1};
  const Strides sb = transposeB ? Strides{1, k} : Strides{n, 1};
  const int64_t strideA = broadcastA ? 0 : static_cast<int64_t>(m) * k;
  const int64_t strideB = broadcastB ? 0 : static_cast<int64_t>(k) * n;
  const int64_t strideC = static_cast<int64_t>(m) * n;
  const int threads = threadCount();
  const int64_t work = static_cast<int64_t>(m) * n * k;
  // Below ~64³ multiply-adds a second thread costs more than it saves.
  const int useThreads = work < (1 << 18) ? 1 : threads;
  if (batch >= 2 * useThreads && useThreads > 1) {
#pragma omp parallel for num_threads(useThreads) schedule(static)
    for (int item = 0; item < batch; item++) {
      gemmParallel(Gemm{a + item * strideA, b + item * strideB, c + item * strideC, m, n, k, sa, sb}, 1);
    }
    return;
  }
  for (int item = 0; item < batch; item++) {
    gemmParallel(Gemm{a + item * strideA, b + item * strideB, c + item * strideC, m, n, k, sa, sb},
                 useThreads);
  }
}

// ---- element-wise exp and erf ---------------------------------------------------------
//
// Vectorized with the same vector type as the GEMM. exp: x = n·ln2 + r with |r| ≤ ln2/2
// (ln2 split in two for exactness), e^r by its Taylor polynomial to r⁷ (relative error
// < 2e-8 on that range), 2ⁿ built in the exponent bits; below −87.3 the result is 0 (float32
// exp is subnormal there), above 88.7 it is +∞. erf: Abramowitz & Stegun 7.1.26 with its exp from
// above (absolute error ≤ 1.5e-7, the size of float32 rounding near 1).

typedef int32_t ivec __attribute__((vector_size(kLanes * 4), aligned(4)));

inline vec splat(float value) { return vec{} + value; }

inline vec vexp(vec x) {
  const vec clamped = x < splat(-87.3f) ? splat(-87.3f) : (x > splat(88.7f) ? splat(88.7f) : x);
  // n = round(x / ln2)
  const vec scaled = clamped * splat(1.44269504088896341f);
  const vec rounded = scaled + (scaled < splat(0.f) ? splat(-0.5f) : splat(0.5f));
  const ivec n = __builtin_convertvector(rounded, ivec);
  const vec nf = __builtin_convertvector(n, vec);
  const vec r = clamped - nf * splat(0.693359375f) - nf * splat(-2.12194440e-4f);
  // e^r = 1 + r + r²/2! + … + r⁷/7!, Horner form.
  vec p = splat(1.f / 5040.f);
  p = p * r + splat(1.f / 720.f);
  p = p * r + splat(1.f / 120.f);
  p = p * r + splat(1.f / 24.f);
  p = p * r + splat(1.f / 6.f);
  p = p * r + splat(0.5f);
  p = p * r + splat(1.f);
  p = p * r + splat(1.f);
  // 2ⁿ as two powers built in a float's exponent field (n reaches 128 near the top, one
  // past what a single field holds).
  const ivec half = n >> 1;
  const ivec bitsLow = (half + 127) << 23;
  const ivec bitsHigh = (n - half + 127) << 23;
  vec low, high;
  std::memcpy(&low, &bitsLow, sizeof low);
  std::memcpy(&high, &bitsHigh, sizeof high);
  vec result = p * low * high;
  result = x < splat(-87.3f) ? splat(0.f) : result;
  result = x > splat(88.7f) ? splat(__builtin_inff()) : result;
  return result;
}

inline vec verf(vec x) {
  const vec ax = x < splat(0.f) ? -x : x;
  const vec t = splat(1.f) / (splat(1.f) + splat(0.3275911f) * ax);
  vec poly = splat(1.061405429f);
  poly = poly * t + splat(-1.453152027f);
  poly = poly * t + splat(1.421413741f);
  poly = poly * t + splat(-0.284496736f);
  poly = poly * t + splat(0.254829592f);
  poly = poly * t;
  const vec y = splat(1.f) - poly * vexp(-ax * ax);
  return x < splat(0.f) ? -y : y;
}

// Exact GELU, x·Φ(x) with Φ(x) = (1 + erf(x/√2))/2, and its derivative Φ(x) + x·φ(x) with
// φ(x) = e^(−x²/2)/√(2π) — the functions @minigpt/model's mlp differentiates by hand.
inline vec vgelu(vec x) { return x * (splat(0.5f) + splat(0.5f) * verf(x * splat(0.70710678118654752f))); }

inline vec vgeluGrad(vec x) {
  const vec cdf = splat(0.5f) + splat(0.5f) * verf(x * splat(0.70710678118654752f));
  const vec density = vexp(x * x * splat(-0.5f)) * splat(0.39894228040143268f);
  return cdf + x * density;
}

enum class Unary : int32_t { Exp = 0, Erf = 1, Gelu = 2, GeluGrad = 3 };

inline vec apply(Unary op, vec x) {
  switch (op) {
    case Unary::Exp:
      return vexp(x);
    case Unary::Erf:
      return verf(x);
    case Unary::Gelu:
      return vgelu(x);
    default:
      return vgeluGrad(x);
  }
}

// Element-wise work goes to the threads in chunks of 16 Ki floats: big enough to amortise a
// thread hand-off, small enough to split.
constexpr int64_t kChunk = 1 << 14;
inline int64_t chunkCount(int64_t count) { return (count + kChunk - 1) / kChunk; }

// out[i] = f(in[i]); with `scale`, out[i] = f(in[i]) · scale[i] (GELU's backward: dy · f').
void unary(const float* in, float* out, int64_t count, Unary op, const float* scale = nullptr) {
  const int64_t chunks = chunkCount(count);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t chunk = 0; chunk < chunks; chunk++) {
    const int64_t begin = chunk * kChunk;
    const int64_t end = std::min(count, begin + kChunk);
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      const vec y = apply(op, load(in + i));
      store(out + i, scale ? y * load(scale + i) : y);
    }
    if (i < end) {  // the tail, through one zero-padded vector
      float tail[kLanes] = {}, tailScale[kLanes] = {};
      std::memcpy(tail, in + i, (end - i) * sizeof(float));
      if (scale) std::memcpy(tailScale, scale + i, (end - i) * sizeof(float));
      vec y = apply(op, load(tail));
      if (scale) y = y * load(tailScale);
      store(tail, y);
      std::memcpy(out + i, tail, (end - i) * sizeof(float));
    }
  }
}

// ---- LayerNorm over the last axis, forward and backward, fused --------------------------
//
// Forward, per row of C: mean, biased variance, rstd = 1/√(var + eps), x̂ = (x − mean)·rstd,
// y = x̂·γ (+ β). Backward, with g = dy·γ: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)),
// dγ = Σ_rows dy·x̂, dβ = Σ_rows dy. Rows are dealt to the threads; each thread sums its own
// dγ, dβ and they are added at the end (a fixed order, so results repeat run to run).

void layerNormForward(const float* x, const float* gamma, const float* beta, float* y,
                      float* normalized, float* rstdOut, int64_t rows, int64_t channels, float eps) {
#pragma omp parallel for schedule(static) if (rows * channels > (1 << 15))
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * channels;
    double sum = 0;
    for (int64_t c = 0; c < channels; c++) sum += xr[c];
    const float mean = static_cast<float>(sum / channels);
    double squares = 0;
    for (int64_t c = 0; c < channels; c++) {
      const float d = xr[c] - mean;
      squares += static_cast<double>(d) * d;
    }
    const float rstd = 1.f / std::sqrt(static_cast<float>(squares / channels) + eps);
    rstdOut[r] = rstd;
    float* nr = normalized + r * channels;
    float* yr = y + r * channels;
    for (int64_t c = 0; c < channels; c++) {
      const float n = (xr[c] - mean) * rstd;
      nr[c] = n;
      yr[c] = beta ? n * gamma[c] + beta[c] : n * gamma[c];
    }
  }
}

void layerNormBackward(const float* dy, const float* normalized, const float* rstd,
                       const float* gamma, float* dx, float* dGamma, float* dBeta, int64_t rows,
                       int64_t channels) {
  const int threads = threadCount();
  std::vector<float> partialGamma(static_cast<size_t>(threads) * channels, 0.f);
  std::vector<float> partialBeta(static_cast<size_t>(threads) * channels, 0.f);
#pragma omp parallel num_threads(threads) if (rows * channels > (1 << 15))
  {
#ifdef _OPENMP
    const int id = omp_get_thread_num();
#else
    const int id = 0;
#endif
    float* pg = partialGamma.data() + static_cast<int64_t>(id) * channels;
    float* pb = partialBeta.data() + static_cast<int64_t>(id) * channels;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float* dyr = dy + r * channels;
      const float* nr = normalized + r * channels;
      double sumG = 0, sumGX = 0;
      for (int64_t c = 0; c < channels; c++) {
        const float g = dyr[c] * gamma[c];
        sumG += g;
        sumGX += static_cast<double>(g) * nr[c];
        pg[c] += dyr[c] * nr[c];
        pb[c] += dyr[c];
      }
      const float meanG = static_cast<float>(sumG / channels);
      const float meanGX = static_cast<float>(sumGX / channels);
      float* dxr = dx + r * channels;
      for (int64_t c = 0; c < channels; c++)
        dxr[c] = rstd[r] * (dyr[c] * gamma[c] - meanG - nr[c] * meanGX);
    }
  }
  for (int64_t c = 0; c < channels; c++) {
    float g = 0, b = 0;
    for (int t = 0; t < threads; t++) {
      g += partialGamma[static_cast<size_t>(t) * channels + c];
      b += partialBeta[static_cast<size_t>(t) * channels + c];
    }
    dGamma[c] = g;
    dBeta[c] = b;
  }
}

// ---- AdamW and the gradients' squared norm, fused ------------------------------------
//
// tfjs spends ~16 element-wise ops on one weight's AdamW update and 2 more on its share of
// the gradient norm, each a pass over memory plus ~40 µs of dispatch: at `baby` (27
// weights) that was 12–23 ms of a ~110 ms step. Here each is one pass.

struct AdamWParams {
  float beta1, oneMinusBeta1, beta2, oneMinusBeta2, correction1, correction2, epsilon, lr,
      decay;  // decay: the weight's multiplier, 1 − lr·weightDecay (1: no decay)
};

// PyTorch's AdamW on one weight, with the clipping factor `scale` applied to its gradient:
// g = grad·scale, m' = β1·m + (1−β1)·g, v' = β2·v + (1−β2)·g²,
// w' = w·decay − lr·(m'/c1)/(√(v'/c2) + ε). Same operation order as the tfjs ops it replaces.
void adamwRange(const float* __restrict weight, const float* __restrict grad,
                const float* __restrict m, const float* __restrict v, float scale,
                float* __restrict weightOut, float* __restrict mOut, float* __restrict vOut,
                int64_t begin, int64_t end, const AdamWParams& p) {
  // __restrict: outputs never overlap inputs (tfjs allocates them), which lets the loop
  // become vector code (sqrt and divisions included, with -fno-math-errno).
  for (int64_t i = begin; i < end; i++) {
    const float g = grad[i] * scale;
    const float mi = m[i] * p.beta1 + g * p.oneMinusBeta1;
    const float vi = v[i] * p.beta2 + (g * g) * p.oneMinusBeta2;
    const float update = (mi / p.correction1) / (std::sqrt(vi / p.correction2) + p.epsilon);
    weightOut[i] = weight[i] * p.decay - update * p.lr;
    mOut[i] = mi;
    vOut[i] = vi;
  }
}

void adamwUpdate(const float* weight, const float* grad, const float* m, const float* v,
                 float scale, float* weightOut, float* mOut, float* vOut, int64_t count,
                 const AdamWParams& p) {
  const int64_t chunks = chunkCount(count);
#pragma omp parallel for schedule(static) if (chunks > 2)
  for (int64_t chunk = 0; chunk < chunks; chunk++)
    adamwRange(weight, grad, m, v, scale, weightOut, mOut, vOut, chunk * kChunk,
               std::min(count, (chunk + 1) * kChunk), p);
}

// Σ x², in double, over fixed chunks added in order: the same sum for any thread count, so a
// resumed run repeats an uninterrupted one bit for bit.
double sumOfSquares(const float* x, int64_t count) {
  const int64_t chunks = chunkCount(count);
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 4)
  for (int64_t chunk = 0; chunk < chunks; chunk++) {
    const int64_t end = std::min(count, (chunk + 1) * kChunk);
    // 16 running sums, not one: one sum is a chain of dependent adds (~4 cycles each); these
    // become vector adds, in an order that is still fixed.
    double lanes[16] = {};
    int64_t i = chunk * kChunk;
    for (; i + 16 <= end; i += 16)
      for (int lane = 0; lane < 16; lane++)
        lanes[lane] += static_cast<double>(x[i + lane]) * x[i + lane];
    for (; i < end; i++) lanes[0] += static_cast<double>(x[i]) * x[i];
    double total = 0;
    for (double lane : lanes) total += lane;
    partial[static_cast<size_t>(chunk)] = total;
  }
  double total = 0;
  for (double value : partial) total += value;
  return total;
}

// ---- N-API glue ----------------------------------------------------------------------

napi_value throwError(napi_env env, const char* message) {
  napi_throw_error(env, "MINIGPT_NATIVE", message);
  return nullptr;
}

// A kernel call's arguments: the wasm heap's ArrayBuffer, then integers (byte offsets and
// sizes), then possibly a number or booleans that the caller reads from `rest`.
struct HeapCall {
  uint8_t* base = nullptr;
  int64_t bytes = 0;
  int64_t ints[9] = {};
  napi_value rest[9] = {};

  float* at(int64_t offset) const { return reinterpret_cast<float*>(base + offset); }
  // true when `floats` float32s at byte `offset` lie inside the heap.
  bool fits(int64_t offset, int64_t floats) const {
    return offset >= 0 && floats >= 0 && offset % 4 == 0 && offset + floats * 4 <= bytes;
  }
};

// Reads heap + `intCount` integers + `restCount` more values; throws (and returns false)
// with `name` in the message when they are not there.
bool readCall(napi_env env, napi_callback_info info, const char* name, int intCount,
              int restCount, HeapCall& call) {
  napi_value args[19];
  size_t argc = 19;
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  char message[160];
  if (argc != static_cast<size_t>(1 + intCount + restCount)) {
    std::snprintf(message, sizeof message, "%s takes %d arguments", name, 1 + intCount + restCount);
    throwError(env, message);
    return false;
  }
  void* heap = nullptr;
  size_t heapBytes = 0;
  if (napi_get_arraybuffer_info(env, args[0], &heap, &heapBytes) != napi_ok) {
    std::snprintf(message, sizeof message, "%s: the first argument must be an ArrayBuffer", name);
    throwError(env, message);
    return false;
  }
  call.base = static_cast<uint8_t*>(heap);
  call.bytes = static_cast<int64_t>(heapBytes);
  for (int i = 0; i < intCount; i++) {
    if (napi_get_value_int64(env, args[1 + i], &call.ints[i]) != napi_ok) {
      std::snprintf(message, sizeof message, "%s: offsets and sizes must be numbers", name);
      throwError(env, message);
      return false;
    }
  }
  for (int i = 0; i < restCount; i++) call.rest[i] = args[1 + intCount + i];
  return true;
}

// matMul(heap, aOffset, bOffset, cOffset (bytes), batch, m, n, k,
//        transposeA, transposeB, broadcastA, broadcastB)
napi_value MatMul(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!readCall(env, info, "matMul", 7, 4, call)) return nullptr;
  bool flags[4];
  for (int i = 0; i < 4; i++)
    if (napi_get_value_bool(env, call.rest[i], &flags[i]) != napi_ok)
      return throwError(env, "matMul: transpose/broadcast flags must be booleans");
  const int64_t* v = call.ints;
  const int64_t batch = v[3], m = v[4], n = v[5], k = v[6];
  if (batch < 0 || m < 0 || n < 0 || k < 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
    return throwError(env, "matMul: bad sizes");
  if (!call.fits(v[0], (flags[2] ? 1 : batch) * m * k) ||
      !call.fits(v[1], (flags[3] ? 1 : batch) * k * n) || !call.fits(v[2], batch * m * n))
    return throwError(env, "matMul: an operand lies outside the heap");
  batchedGemm(call.at(v[0]), call.at(v[1]), call.at(v[2]), static_cast<int>(batch),
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), flags[0], flags[1],
              flags[2], flags[3]);
  return nullptr;
}

// unary(heap, inOffset, outOffset (bytes), count, op: 0 exp | 1 erf | 2 gelu | 3 gelu′,
//       scaleOffset (−1: none; out = f(in) · scale))
napi_value UnaryOp(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!readCall(env, info, "unary", 5, 0, call)) return nullptr;
  const int64_t* v = call.ints;
  if (!call.fits(v[0], v[2]) || !call.fits(v[1], v[2]) || (v[4] >= 0 && !call.fits(v[4], v[2])))
    return throwError(env, "unary: an operand lies outside the heap");
  if (v[3] < 0 || v[3] > 3)
    return throwError(env, "unary: op must be 0 (exp), 1 (erf), 2 (gelu) or 3 (gelu')");
  unary(call.at(v[0]), call.at(v[1]), v[2], static_cast<Unary>(v[3]),
        v[4] >= 0 ? call.at(v[4]) : nullptr);
  return nullptr;
}

// layerNorm(heap, x, gamma, beta (−1: none), y, normalized, rstd, rows, channels, eps)
napi_value LayerNorm(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!readCall(env, info, "layerNorm", 8, 1, call)) return nullptr;
  double eps = 0;
  if (napi_get_value_double(env, call.rest[0], &eps) != napi_ok)
    return throwError(env, "layerNorm: eps must be a number");
  const int64_t* v = call.ints;
  const int64_t rows = v[6], channels = v[7];
  if (rows < 0 || channels < 1 || !call.fits(v[0], rows * channels) || !call.fits(v[1], channels) ||
      (v[2] >= 0 && !call.fits(v[2], channels)) || !call.fits(v[3], rows * channels) ||
      !call.fits(v[4], rows * channels) || !call.fits(v[5], rows))
    return throwError(env, "layerNorm: an operand lies outside the heap");
  layerNormForward(call.at(v[0]), call.at(v[1]), v[2] >= 0 ? call.at(v[2]) : nullptr,
                   call.at(v[3]), call.at(v[4]), call.at(v[5]), rows, channels,
                   static_cast<float>(eps));
  return nullptr;
}

// layerNormGrad(heap, dy, normalized, rstd, gamma, dx, dGamma, dBeta, rows, channels)
napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!readCall(env, info, "layerNormGrad", 9, 0, call)) return nullptr;
  const int64_t* v = call.ints;
  const int64_t rows = v[7], channels = v[8];
  if (rows < 0 || channels < 1 || !call.fits(v[0], rows * channels) ||
      !call.fits(v[1], rows * channels) || !call.fits(v[2], rows) || !call.fits(v[3], channels) ||
      !call.fits(v[4], rows * channels) || !call.fits(v[5], channels) || !call.fits(v[6], channels))
    return throwError(env, "layerNormGrad: an operand lies outside the heap");
  layerNormBackward(call.at(v[0]), call.at(v[1]), call.at(v[2]), call.at(v[3]), call.at(v[4]),
                    call.at(v[5]), call.at(v[6]), rows, channels);
  return nullptr;
}

// adamw(heap, weight, grad, m, v, scale (a float32 scalar), weightOut, mOut, vOut (bytes),
//       count, beta1, 1−beta1, beta2, 1−beta2, correction1, correction2, epsilon, lr, decay)
napi_value AdamW(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!readCall(env, info, "adamw", 9, 9, call)) return nullptr;
  double numbers[9];
  for (int i = 0; i < 9; i++)
    if (napi_get_value_double(env, call.rest[i], &numbers[i]) != napi_ok)
      return throwError(env, "adamw: the hyperparameters must be numbers");
  const int64_t* v = call.ints;
  const int64_t count = v[8];
  bool inside = count >= 0 && call.fits(v[4], 1);
  for (int i = 0; i < 8; i++) inside = inside && (i == 4 || call.fits(v[i], count));
  if (!inside) return throwError(env, "adamw: an operand lies outside the heap");
  const AdamWParams params{static_cast<float>(numbers[0]), static_cast<float>(numbers[1]),
                           static_cast<float>(numbers[2]), static_cast<float>(numbers[3]),
                           static_cast<float>(numbers[4]), static_cast<float>(numbers[5]),
                           static_cast<float>(numbers[6]), static_cast<float>(numbers[7]),
                           static_cast<float>(numbers[8])};
  adamwUpdate(call.at(v[0]), call.at(v[1]), call.at(v[2]), call.at(v[3]), *call.at(v[4]),
              call.at(v[5]), call.at(v[6]), call.at(v[7]), count, params);
  return nullptr;
}

// sumOfSquares(heap, x (bytes), count) → Σ x² as a number
napi_value SumOfSquares(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!readCall(env, info, "sumOfSquares", 2, 0, call)) return nullptr;
  if (call.ints[1] < 0 || !call.fits(call.ints[0], call.ints[1]))
    return throwError(env, "sumOfSquares: an operand lies outside the heap");
  napi_value result;
  napi_create_double(env, sumOfSquares(call.at(call.ints[0]), call.ints[1]), &result);
  return result;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_int32(env, threadCount(), &value);
  napi_set_named_property(env, result, "threads", value);
  napi_create_int32(env, kLanes, &value);
  napi_set_named_property(env, result, "vectorLanes", value);
  return result;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  napi_get_cb_info(env, info, &argc, &arg, nullptr, nullptr);
  int32_t threads = 1;
  if (argc != 1 || napi_get_value_int32(env, arg, &threads) != napi_ok || threads < 1)
    return throwError(env, "setThreads takes a positive integer");
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"matMul", nullptr, MatMul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, UnaryOp, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNorm", nullptr, LayerNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormGrad", nullptr, LayerNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamw", nullptr, AdamW, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumOfSquares", nullptr, SumOfSquares, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
