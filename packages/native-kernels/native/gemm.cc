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
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace {

// ---- threads ---------------------------------------------------------------------------
//
// A small pool of its own instead of OpenMP. An OpenMP loop ends in a barrier that waits for
// every thread of the team, including one the OS has not run yet: with another process
// keeping one of 2 cores busy, each of a `baby` train step's parallel loops waited for the
// worker sharing that core to get its turn, and the step ran at a third of one thread's
// speed. Here the calling thread starts on the tasks at once; a worker that wakes in time
// takes some; the caller waits only for tasks a worker has taken, and takes the rest itself.
// With no worker running, a loop costs what it costs on one thread. Every kernel's result is
// independent of which thread ran which task (sums are per task, added in task order), so
// results repeat for any thread count and any timing.

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long an idle thread spins before it sleeps: a worker waiting for the next loop (tfjs's
// ops between two kernels take tens of µs), the caller waiting for a task a worker took. On a
// loaded machine every spin takes a core from a thread with work (a worker spinning 500 µs
// instead of 50 took a `baby` step under a busy core from 0.9× to 0.7× of one quiet thread).
constexpr int kWorkerSpinMicros = 50;
constexpr int kCallerSpinMicros = 50;

// Spins until `done()` or `micros` have passed; true when done.
template <class Done>
bool spinUntil(Done done, int micros) {
  if (done()) return true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 64; i++) {
      cpuRelax();
      if (done()) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
  }
}

// OMP_NUM_THREADS when set (what the OpenMP build of this addon read), else the cores this
// process may run on.
int defaultThreads() {
  if (const char* requested = std::getenv("OMP_NUM_THREADS")) {
    const long value = std::strtol(requested, nullptr, 10);
    if (value >= 1) return static_cast<int>(std::min(value, 1024L));
  }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

thread_local bool tlsInTask = false;  // a loop inside a task runs on the thread that reaches it

// Each thread of a loop's team has a contiguous share of its tasks (the caller the first), and
// takes them in order from the front; a thread done with its share takes tasks from the back
// of the others'. Contiguous shares: GEMM row blocks taken alternately by two threads ran 15 %
// slower than the same blocks in two halves (prefetched lines landed on the other core).
class Pool {
 public:
  static constexpr int kMaxTeam = 64;

  static Pool& instance() {
    static Pool* pool = new Pool();  // never destroyed: its workers outlive static destructors
    return *pool;
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }
  void setThreads(int threads) {
    threads_.store(std::min(threads, kMaxTeam), std::memory_order_relaxed);
  }

  // Runs fn(context, task) for every task in [0, tasks) (tasks < 65536), on the calling thread
  // and on up to maxThreads − 1 workers, and returns when all are done.
  void run(int64_t tasks, void (*fn)(void*, int64_t), void* context, int maxThreads) {
    int team = static_cast<int>(std::min<int64_t>(std::min(maxThreads, threads()), tasks));
    // One caller at a time: a second JS thread of this process runs its loops alone.
    if (team <= 1 || tlsInTask || busy_.test_and_set(std::memory_order_acquire)) {
      const bool nested = tlsInTask;
      tlsInTask = true;
      for (int64_t task = 0; task < tasks; task++) fn(context, task);
      tlsInTask = nested;
      return;
    }
    const uint32_t job = generation_.load(std::memory_order_relaxed) + 1;
    while (workers_ < team - 1) {
      try {
        std::thread(&Pool::workerLoop, this, workers_ + 1, job - 1).detach();
      } catch (...) {  // no more threads: the team is the threads there are
        team = workers_ + 1;
        break;
      }
      workers_++;
    }
    fn_.store(fn, std::memory_order_relaxed);
    context_.store(context, std::memory_order_relaxed);
    team_.store(team, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    for (int member = 0; member < team; member++)
      shares_[member].range.store(packShare(job, tasks * member / team, tasks * (member + 1) / team),
                                  std::memory_order_relaxed);
    generation_.store(job, std::memory_order_seq_cst);  // publishes the fields above
    if (sleepingWorkers_.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> lock(mutex_); }
      wakeWorkers_.notify_all();
    }
    const int64_t mine = work(job, 0, team);
    // Wait for the tasks workers took: spin while they are likely running, then sleep, so
    // that a worker the OS took off its core may have this one.
    const auto othersDone = [&] {
      return finished_.load(std::memory_order_acquire) == tasks - mine;
    };
    if (!spinUntil(othersDone, kCallerSpinMicros)) {
      std::unique_lock<std::mutex> lock(mutex_);
      callerSleeping_.store(true, std::memory_order_seq_cst);
      wakeCaller_.wait(lock, othersDone);
      callerSleeping_.store(false, std::memory_order_relaxed);
    }
    busy_.clear(std::memory_order_release);
  }

 private:
  // A share: job generation (32 bits) | front (16) | back (16), tasks [front, back) left. The
  // generation makes a claim computed from an earlier job's share fail.
  static uint64_t packShare(uint32_t job, int64_t front, int64_t back) {
    return static_cast<uint64_t>(job) << 32 | static_cast<uint64_t>(front) << 16 |
           static_cast<uint64_t>(back);
  }

  struct alignas(64) Share {
    std::atomic<uint64_t> range{0};
  };

  Pool() { setThreads(defaultThreads()); }

  // Takes one task of job `job` from `share`, from the front or the back; -1 when none is left
  // (or the job is over).
  int64_t take(uint32_t job, int share, bool front) {
    std::atomic<uint64_t>& range = shares_[share].range;
    uint64_t state = range.load(std::memory_order_acquire);
    for (;;) {
      const int64_t first = static_cast<int64_t>(state >> 16 & 0xffff);
      const int64_t end = static_cast<int64_t>(state & 0xffff);
      if (static_cast<uint32_t>(state >> 32) != job || first >= end) return -1;
      const uint64_t next = front ? packShare(job, first + 1, end) : packShare(job, first, end - 1);
      if (range.compare_exchange_weak(state, next, std::memory_order_acq_rel))
        return front ? first : end - 1;
    }
  }

  // Runs tasks of job `job` as team member `member`: its own share, then the others'; returns
  // how many it ran.
  int64_t work(uint32_t job, int member, int team) {
    int64_t ran = 0;
    tlsInTask = true;
    // Read before any claim: while a task of this job is unclaimed the job cannot end, so
    // when a claim succeeds these were still this job's fields.
    auto* fn = fn_.load(std::memory_order_relaxed);
    void* context = context_.load(std::memory_order_relaxed);
    for (int offset = 0; offset < team; offset++) {
      const int share = (member + offset) % team;
      for (;;) {
        const int64_t task = take(job, share, offset == 0);
        if (task < 0) break;
        fn(context, task);
        ran++;
        if (member == 0) continue;
        finished_.fetch_add(1, std::memory_order_seq_cst);
        if (callerSleeping_.load(std::memory_order_seq_cst)) {
          { std::lock_guard<std::mutex> lock(mutex_); }
          wakeCaller_.notify_one();
        }
      }
    }
    tlsInTask = false;
    return ran;
  }

  // Worker `member` (1, 2, …) of the teams large enough to include it.
  void workerLoop(int member, uint32_t seen) {
    for (;;) {
      const auto posted = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spinUntil(posted, kWorkerSpinMicros)) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepingWorkers_.fetch_add(1, std::memory_order_seq_cst);
        wakeWorkers_.wait(lock, posted);
        sleepingWorkers_.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = generation_.load(std::memory_order_acquire);
      const int team = team_.load(std::memory_order_relaxed);
      if (member < team) work(seen, member, team);
    }
  }

  std::atomic<int> threads_{1};
  int workers_ = 0;  // started so far (by callers, who hold busy_)
  std::atomic_flag busy_ = ATOMIC_FLAG_INIT;
  std::atomic<uint32_t> generation_{0};  // the job posted last
  std::atomic<void (*)(void*, int64_t)> fn_{nullptr};
  std::atomic<void*> context_{nullptr};
  std::atomic<int> team_{0};
  std::atomic<int64_t> finished_{0};  // tasks that workers finished
  Share shares_[kMaxTeam];
  std::mutex mutex_;
  std::condition_variable wakeWorkers_, wakeCaller_;
  std::atomic<int> sleepingWorkers_{0};
  std::atomic<bool> callerSleeping_{false};
};

// body(task) for task in [0, tasks), on up to maxThreads threads.
template <class Body>
void parallelFor(int64_t tasks, Body&& body, int maxThreads = Pool::kMaxTeam) {
  struct Grouped {
    Body& body;
    int64_t tasks, group;  // the pool's task t runs body's tasks [t·group, (t + 1)·group)
  } grouped{body, tasks, std::max<int64_t>(1, (tasks + 0xfffe) / 0xffff)};
  Pool::instance().run(
      (tasks + grouped.group - 1) / grouped.group,
      [](void* context, int64_t task) {
        const Grouped& g = *static_cast<Grouped*>(context);
        const int64_t end = std::min(g.tasks, (task + 1) * g.group);
        for (int64_t t = task * g.group; t < end; t++) g.body(t);
      },
      &grouped, maxThreads);
}

int threadCount() { return Pool::instance().threads(); }

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

// Loads and stores through a may_alias vector type: one vmovups each. They were memcpy, which
// GCC 12 tuning for Zen 3 (AVX2, no AVX-512) lowered to 16-byte copies through the stack, read
// back as 32-byte loads (a store-forwarding stall on every B load) and spilled the micro-
// kernel's accumulators around them: GEMM 16 GFLOP/s instead of 84 on 2 Zen 3 cores.
typedef float vecInMemory __attribute__((vector_size(kLanes * 4), aligned(4), may_alias));
inline vec load(const float* p) { return *reinterpret_cast<const vecInMemory*>(p); }
inline void store(float* p, vec v) { *reinterpret_cast<vecInMemory*>(p) = v; }

// Packs the kc × nc block of B starting at (k0, j0) into NR-wide panels, zero-padded:
// panel p holds B[k0 + k][j0 + p·NR + c] at packed[p·kc·NR + k·NR + c].
void packB(const float* b, Strides s, int k0, int kc, int j0, int nc, float* packed) {
  if (s.col == 1) {
    // Row by row: each row of the block is read front to back. Panel by panel, the reads
    // walked down a column strip, one cache line every N floats: for a weight gradient's B
    // (dy, 8192 × 1024, 32 MB) each line came from memory unprefetched, and packing took a
    // sixth of the GEMM on one thread.
    for (int k = 0; k < kc; k++) {
      const float* row = b + static_cast<int64_t>(k0 + k) * s.row + j0;
      float* out = packed + k * NR;  // panel p's row k is at out + p·kc
      int p = 0;
      for (; p + NR <= nc; p += NR) {
        float* panelRow = out + static_cast<int64_t>(p) * kc;
        store(panelRow, load(row + p));
        store(panelRow + kLanes, load(row + p + kLanes));
      }
      if (p < nc) {
        float* panelRow = out + static_cast<int64_t>(p) * kc;
        int c = 0;
        for (; c < nc - p; c++) panelRow[c] = row[p + c];
        for (; c < NR; c++) panelRow[c] = 0.f;
      }
    }
    return;
  }
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

#if !defined(__AVX512F__)
// The 8 × 8 block x (row r: A's row r at 8 consecutive k) transposed in registers: x[c] then
// holds column c (the 8 rows at one k). Three rounds of pairwise interleaves (unpcklps,
// shufps, vperm2f128 on AVX2): 24 shuffles for 64 floats, where packing them one by one took
// 64 loads and 64 scattered stores.
inline void transpose8x8(vec (&x)[8]) {
  vec pairs[8];  // pairs[i], pairs[i+1]: rows i, i+1 interleaved (k 0,1 | 4,5 and k 2,3 | 6,7)
  for (int i = 0; i < 8; i += 2) {
    pairs[i] = __builtin_shufflevector(x[i], x[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    pairs[i + 1] = __builtin_shufflevector(x[i], x[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  vec quads[8];  // quads[i + c]: rows i..i+3 at k c | k c+4 (i = 0, 4)
  for (int i = 0; i < 8; i += 4) {
    for (int h = 0; h < 2; h++) {
      quads[i + 2 * h] =
          __builtin_shufflevector(pairs[i + h], pairs[i + 2 + h], 0, 1, 8, 9, 4, 5, 12, 13);
      quads[i + 2 * h + 1] =
          __builtin_shufflevector(pairs[i + h], pairs[i + 2 + h], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  }
  for (int c = 0; c < 4; c++) {
    x[c] = __builtin_shufflevector(quads[c], quads[4 + c], 0, 1, 2, 3, 8, 9, 10, 11);
    x[c + 4] = __builtin_shufflevector(quads[c], quads[4 + c], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}
#endif

// Packs the mc × kc block of A starting at (i0, k0) into MR-tall panels, zero-padded:
// panel p holds A[i0 + p·MR + r][k0 + k] at packed[p·kc·MR + k·MR + r]. `packed` has room for
// kLanes floats past the last panel: the vector paths store whole vectors of which only the
// first MR floats belong to the k they are written for, and the rest is written over by the
// next k's store (or, past a panel's last k, by the next panel, packed after it).
void packA(const float* a, Strides s, int i0, int mc, int k0, int kc, float* packed) {
  static_assert(kLanes >= MR, "a panel's MR floats fit one vector");
  if (s.row == 1) {
    // A transposed (a weight gradient's xᵀ): the block's rows are columns in memory, so it is
    // read along k's rows of memory, each a contiguous run of mc floats, instead of down
    // each column. A whole panel's MR floats are one vector load and store where the load
    // stays inside the block's mc rows (so inside A).
    for (int k = 0; k < kc; k++) {
      const float* src = a + static_cast<int64_t>(k0 + k) * s.col + i0;
      // Its last k would spill into the next panel's first k, which is already packed.
      const bool spillFree = k + 1 < kc;
      for (int p = 0; p < mc; p += MR) {
        float* out = packed + static_cast<int64_t>(p) * kc + k * MR;
        if (spillFree && p + kLanes <= mc) {
          store(out, load(src + p));
          continue;
        }
        const int height = std::min(MR, mc - p);
        int r = 0;
        for (; r < height; r++) out[r] = src[p + r];
        for (; r < MR; r++) out[r] = 0.f;
      }
    }
    return;
  }
  for (int p = 0; p < mc; p += MR) {
    const int height = std::min(MR, mc - p);
    float* out = packed + static_cast<int64_t>(p) * kc;
    int k = 0;
#if !defined(__AVX512F__)
    static_assert(kLanes == 8 && MR <= 8, "transpose8x8: a panel is at most 8 rows of 8 lanes");
    if (s.col == 1) {
      // A row-major: 8 k at a time, the panel's rows loaded as vectors and transposed.
      const float* rows = a + static_cast<int64_t>(i0 + p) * s.row + k0;
      for (; k + 8 <= kc; k += 8) {
        vec x[8];
        for (int r = 0; r < 8; r++) x[r] = r < height ? load(rows + r * s.row + k) : vec{};
        transpose8x8(x);
        for (int c = 0; c < 8; c++) store(out + (k + c) * MR, x[c]);
      }
    }
#endif
    for (int r = 0; r < MR; r++) {
      if (r < height) {
        const float* src = a + (i0 + p + r) * s.row + static_cast<int64_t>(k0 + k) * s.col;
        for (int kk = k; kk < kc; kk++) out[kk * MR + r] = src[(kk - k) * s.col];
      } else {
        for (int kk = k; kk < kc; kk++) out[kk * MR + r] = 0.f;
      }
    }
  }
}

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
// scratch tile, and only its valid part written. Apart from the whole tiles' path: with the
// scratch tile in the same function, every call (whole tiles too) paid its stack frame — the
// prologue realigning the stack for it took ~3 % of a `seed` train step.
__attribute__((noinline)) void edgeKernel(int kc, const float* ap, const float* bp, float* c,
                                          int64_t ldc, int rows, int cols, bool accumulate) {
  alignas(64) float tile[MR * NR];
  tileKernel(kc, ap, bp, tile, NR, false);
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < cols; j++)
      c[r * ldc + j] = (accumulate ? c[r * ldc + j] : 0.f) + tile[r * NR + j];
}

inline void microKernel(int kc, const float* ap, const float* bp, float* c, int64_t ldc,
                        int rows, int cols, bool accumulate) {
  if (rows == MR && cols == NR)
    tileKernel(kc, ap, bp, c, ldc, accumulate);
  else
    edgeKernel(kc, ap, bp, c, ldc, rows, cols, accumulate);
}

struct Gemm {
  const float* a;
  const float* b;
  float* c;
  int m, n, k;
  Strides sa, sb;
  int64_t ldc;  // C's row stride: n, or more for a block of a wider C
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
                    g.c + static_cast<int64_t>(ic + ir) * g.ldc + j0 + jr, g.ldc,
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

// Rows of C per task: MC, or fewer (a multiple of MR) so that a short C still gives every
// thread a few tasks to claim.
int rowsPerTask(int m, int threads) {
  if (threads <= 1) return std::max(m, 1);
  const int perTask = (m + 4 * threads - 1) / (4 * threads);
  return std::min(MC, std::max(MR, (perTask + MR - 1) / MR * MR));
}

// One whole GEMM on `threads` threads: B panels are packed once and shared, row blocks of
// A are split between the threads.
void gemmParallel(const Gemm& g, int threads) {
  const int nPanel = std::min(NC, ((g.n + NR - 1) / NR) * NR);
  float* packedB = alignedFloats(static_cast<size_t>(KC) * nPanel);
  if (g.k == 0) {
    for (int i = 0; i < g.m; i++) std::fill(g.c + i * g.ldc, g.c + i * g.ldc + g.n, 0.f);
  }
  for (int j0 = 0; j0 < g.n; j0 += NC) {
    const int nc = std::min(NC, g.n - j0);
    for (int k0 = 0; k0 < g.k; k0 += KC) {
      const int kc = std::min(KC, g.k - k0);
      packB(g.b, g.sb, k0, kc, j0, nc, packedB);
      // Blocks of rows, claimed by the threads.
      const int rows = rowsPerTask(g.m, threads);
      const int blocks = (g.m + rows - 1) / rows;
      parallelFor(
          blocks,
          [&](int64_t block) {
            // kLanes floats of room past the last panel for packA's whole-vector stores.
            thread_local std::vector<float> packedA;
            packedA.resize(static_cast<size_t>(MC) * KC + kLanes);
            const int i0 = static_cast<int>(block) * rows;
            gemmRows(g, packedB, j0, nc, k0, kc, i0, std::min(g.m, i0 + rows), packedA.data());
          },
          threads);
    }
  }
  free(packedB);
}

// A long reduction (K of several KC blocks) on several threads: C cut into blocks of whole
// column panels (or row panels, when C is taller than wide), each a one-thread GEMM over all
// of K, claimed by the threads. Split by rows of one shared packed B (gemmParallel), such a
// GEMM waited at two barriers a K block (B's packing, then the rows), and each thread's rows
// of C went back out of its cache between blocks: a weight gradient (256 × 1024 × 8192) ran
// at ~0.7 of a forward product's speed on 2 threads. Each block packs its own A rows and B
// columns; every C element sums the same products in the same order as before (K blocks in
// order, whole tiles), so the bits do not change.
void gemmSplitC(const Gemm& g, int threads) {
  const bool byColumns = g.n >= g.m;
  const int unit = byColumns ? NR : MR;
  const int extent = byColumns ? g.n : g.m;
  const int units = (extent + unit - 1) / unit;
  const int blocks = std::min(units, 2 * threads);  // two each: a late thread still gets one
  const int perBlock = (units + blocks - 1) / blocks * unit;
  parallelFor(
      (extent + perBlock - 1) / perBlock,
      [&](int64_t block) {
        const int start = static_cast<int>(block) * perBlock;
        const int size = std::min(perBlock, extent - start);
        Gemm part = g;
        if (byColumns) {
          part.b = g.b + start * g.sb.col;
          part.c = g.c + start;
          part.n = size;
        } else {
          part.a = g.a + start * g.sa.row;
          part.c = g.c + start * g.ldc;
          part.m = size;
        }
        gemmParallel(part, 1);
      },
      threads);
}

// K from which gemmSplitC runs a threaded GEMM.
constexpr int kSplitCReduction = 4 * KC;

// Below ~64³ multiply-adds a second thread costs more than it saves.
constexpr int64_t kThreadedMultiplyAdds = 1 << 18;

// Batched: a batch large enough to keep every thread busy is split by batch item, each item
// a single-threaded GEMM (attention's many small products); otherwise items run one after
// another, each on all threads.
void batchedGemm(const float* a, const float* b, float* c, int batch, int m, int n, int k,
                 bool transposeA, bool transposeB, bool broadcastA, bool broadcastB) {
  const Strides sa = transposeA ? Strides{1, m} : Strides{k, 1};
  const Strides sb = transposeB ? Strides{1, k} : Strides{n, 1};
  const int64_t strideA = broadcastA ? 0 : static_cast<int64_t>(m) * k;
  const int64_t strideB = broadcastB ? 0 : static_cast<int64_t>(k) * n;
  const int64_t strideC = static_cast<int64_t>(m) * n;
  const int threads = threadCount();
  const int64_t work = static_cast<int64_t>(m) * n * k;
  if (batch >= 2 * threads && threads > 1 && work * batch >= kThreadedMultiplyAdds) {
    parallelFor(batch, [&](int64_t item) {
      gemmParallel(Gemm{a + item * strideA, b + item * strideB, c + item * strideC, m, n, k, sa, sb, n}, 1);
    });
    return;
  }
  const int useThreads = work < kThreadedMultiplyAdds ? 1 : threads;
  for (int item = 0; item < batch; item++) {
    const Gemm g{a + item * strideA, b + item * strideB, c + item * strideC, m, n, k, sa, sb, n};
    if (useThreads > 1 && k >= kSplitCReduction)
      gemmSplitC(g, useThreads);
    else
      gemmParallel(g, useThreads);
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

// erf(x), given e^(−x²) (`gaussian`): GELU's backward needs that exponential for φ too.
inline vec verfWith(vec x, vec gaussian) {
  const vec ax = x < splat(0.f) ? -x : x;
  const vec t = splat(1.f) / (splat(1.f) + splat(0.3275911f) * ax);
  vec poly = splat(1.061405429f);
  poly = poly * t + splat(-1.453152027f);
  poly = poly * t + splat(1.421413741f);
  poly = poly * t + splat(-0.284496736f);
  poly = poly * t + splat(0.254829592f);
  poly = poly * t;
  const vec y = splat(1.f) - poly * gaussian;
  return x < splat(0.f) ? -y : y;
}

inline vec verf(vec x) { return verfWith(x, vexp(-x * x)); }

// Exact GELU, x·Φ(x) with Φ(x) = (1 + erf(x/√2))/2, and its derivative Φ(x) + x·φ(x) with
// φ(x) = e^(−x²/2)/√(2π) — the functions @minigpt/model's mlp differentiates by hand.
inline vec vgelu(vec x) { return x * (splat(0.5f) + splat(0.5f) * verf(x * splat(0.70710678118654752f))); }

// One exponential for both terms: e^(−z²) with z = x/√2 is erf's and, as e^(−x²/2), φ's
// (two took a third of the backward's time).
inline vec vgeluGrad(vec x) {
  const vec z = x * splat(0.70710678118654752f);
  const vec gaussian = vexp(-z * z);
  const vec cdf = splat(0.5f) + splat(0.5f) * verfWith(z, gaussian);
  const vec density = gaussian * splat(0.39894228040143268f);
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
  parallelFor(chunkCount(count), [&](int64_t chunk) {
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
  });
}

// ---- LayerNorm over the last axis, forward and backward, fused --------------------------
//
// Forward, per row of C: mean, biased variance, rstd = 1/√(var + eps), x̂ = (x − mean)·rstd,
// y = x̂·γ (+ β). Backward, with g = dy·γ: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)),
// dγ = Σ_rows dy·x̂, dβ = Σ_rows dy. Rows go to the threads in blocks of a fixed size; each
// block sums its own dγ, dβ and the blocks' sums are added in block order, so results repeat
// for any thread count.

// Rows per block: ~kChunk floats (a fixed number, independent of the threads).
int64_t rowsPerBlock(int64_t channels) { return std::max<int64_t>(1, kChunk / channels); }

// Below 32 Ki floats a LayerNorm runs on one thread.
int layerNormThreads(int64_t rows, int64_t channels) {
  return rows * channels > (1 << 15) ? threadCount() : 1;
}

// Σ term(c) over c < n in double, in kRowSumLanes interleaved partial sums (term c goes to sum
// c mod kRowSumLanes) added in order at the end: a fixed order, so the same bits on every
// call. One running sum made each term wait for the add before it (4 cycles), and LayerNorm's
// row sums were bound by that chain: 2.6 % of a `seed` step, with the threads mostly waiting.
constexpr int kRowSumLanes = 8;
template <typename Term>
inline double rowSum(int64_t n, Term term) {
  double partial[kRowSumLanes] = {};
  int64_t c = 0;
  for (; c + kRowSumLanes <= n; c += kRowSumLanes) {
#pragma GCC unroll 8
    for (int lane = 0; lane < kRowSumLanes; lane++) partial[lane] += term(c + lane);
  }
  for (; c < n; c++) partial[c % kRowSumLanes] += term(c);
  double sum = 0;
  for (int lane = 0; lane < kRowSumLanes; lane++) sum += partial[lane];
  return sum;
}

void layerNormForward(const float* x, const float* gamma, const float* beta, float* y,
                      float* normalized, float* rstdOut, int64_t rows, int64_t channels, float eps) {
  const int64_t blockRows = rowsPerBlock(channels);
  parallelFor(
      (rows + blockRows - 1) / blockRows,
      [&](int64_t block) {
        const int64_t end = std::min(rows, (block + 1) * blockRows);
        for (int64_t r = block * blockRows; r < end; r++) {
          const float* xr = x + r * channels;
          const float mean = static_cast<float>(
              rowSum(channels, [&](int64_t c) { return static_cast<double>(xr[c]); }) / channels);
          const double squares = rowSum(channels, [&](int64_t c) {
            const float d = xr[c] - mean;
            return static_cast<double>(d) * d;
          });
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
      },
      layerNormThreads(rows, channels));
}

void layerNormBackward(const float* dy, const float* normalized, const float* rstd,
                       const float* gamma, float* dx, float* dGamma, float* dBeta, int64_t rows,
                       int64_t channels) {
  const int64_t blockRows = rowsPerBlock(channels);
  const int64_t blocks = (rows + blockRows - 1) / blockRows;
  std::vector<float> partialGamma(static_cast<size_t>(blocks * channels), 0.f);
  std::vector<float> partialBeta(static_cast<size_t>(blocks * channels), 0.f);
  parallelFor(
      blocks,
      [&](int64_t block) {
        float* pg = partialGamma.data() + block * channels;
        float* pb = partialBeta.data() + block * channels;
        const int64_t end = std::min(rows, (block + 1) * blockRows);
        for (int64_t r = block * blockRows; r < end; r++) {
          const float* dyr = dy + r * channels;
          const float* nr = normalized + r * channels;
          const double sumG = rowSum(channels, [&](int64_t c) {
            return static_cast<double>(dyr[c] * gamma[c]);
          });
          const double sumGX = rowSum(channels, [&](int64_t c) {
            return static_cast<double>(dyr[c] * gamma[c]) * nr[c];
          });
          for (int64_t c = 0; c < channels; c++) {
            pg[c] += dyr[c] * nr[c];
            pb[c] += dyr[c];
          }
          const float meanG = static_cast<float>(sumG / channels);
          const float meanGX = static_cast<float>(sumGX / channels);
          float* dxr = dx + r * channels;
          for (int64_t c = 0; c < channels; c++)
            dxr[c] = rstd[r] * (dyr[c] * gamma[c] - meanG - nr[c] * meanGX);
        }
      },
      layerNormThreads(rows, channels));
  for (int64_t c = 0; c < channels; c++) {
    float g = 0, b = 0;
    for (int64_t block = 0; block < blocks; block++) {
      g += partialGamma[static_cast<size_t>(block * channels + c)];
      b += partialBeta[static_cast<size_t>(block * channels + c)];
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
  parallelFor(
      chunks,
      [&](int64_t chunk) {
        adamwRange(weight, grad, m, v, scale, weightOut, mOut, vOut, chunk * kChunk,
                   std::min(count, (chunk + 1) * kChunk), p);
      },
      chunks > 2 ? threadCount() : 1);
}

// Σ x², in double, over fixed chunks added in order: the same sum for any thread count, so a
// resumed run repeats an uninterrupted one bit for bit.
double sumOfSquares(const float* x, int64_t count) {
  const int64_t chunks = chunkCount(count);
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  parallelFor(
      chunks,
      [&](int64_t chunk) {
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
      },
      chunks > 4 ? threadCount() : 1);
  double total = 0;
  for (double value : partial) total += value;
  return total;
}

// ---- causal self-attention, forward and backward, fused ---------------------------------
//
// softmax(q·kᵀ·scale + causal mask)·v per (batch row, head), reading q, k, v from c_attn's
// output as it lies — qkv (B·T, 3C), q in columns [0, C), k in [C, 2C), v in [2C, 3C), head
// h at [h·hs, (h+1)·hs) within each — and writing y (B·T, C) with the heads side by side, as
// c_proj reads it. So the model needs no split, reshapes or transposes around attention, and
// no (B, nh, T, T) tensor exists outside a thread's scratch: the forward keeps only each
// query's log-sum-exp (B, nh, T), from which the backward recomputes the weights (as
// FlashAttention does). Only the causal half (key j ≤ query i) is computed. Optional
// dropout on the weights, drawn here from the same stream as @minigpt/model's
// dropoutKeepMask (so the same weights drop either way, and no mask is stored): weight
// e = ((b·nh + h)·T + i)·T + j is kept when lowbias32(start + e·step) ≥ threshold, and kept
// weights are scaled by keepScale.
//
// One (batch row, head) is one task: every sum is in a fixed order inside its task, so
// results repeat for any thread count.

struct AttentionShape {
  int64_t batch, time, heads, headSize;
  float scale, keepScale;
  int64_t threshold;     // −1: no dropout
  uint32_t start, step;  // the dropout stream's counter: start + e·step (mod 2³²)
  int64_t width() const { return heads * headSize; }                       // C
  int64_t padded() const { return (time + kLanes - 1) / kLanes * kLanes; }  // T, whole vectors
};

// lowbias32 (Wellons), on one uint32 or on a vector of them (the dropout kernel's lanes).
template <typename U32>
inline U32 lowbias32(U32 x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// The hash of the stream's counter for element `e`, as @minigpt/model's dropoutKeepMask: the
// element is kept when this is ≥ the threshold.
inline uint32_t dropoutHash(uint32_t start, uint32_t step, uint64_t e) {
  return lowbias32(start + static_cast<uint32_t>(e) * step);
}

// 1 when weight `e` is kept.
inline float kept(const AttentionShape& s, uint64_t e) {
  return static_cast<int64_t>(dropoutHash(s.start, s.step, e)) >= s.threshold ? 1.f : 0.f;
}

// ---- dropout on a whole tensor ---------------------------------------------------------
//
// y[e] = x[e]·keepScale where element e is kept (dropoutHash ≥ threshold), else x[e]·0: the
// mask @minigpt/model's dropoutKeepMask draws for the same stream, applied as its tfjs path
// does (x · (mask · keepScale)), so the same bits. No mask is stored: the backward is the same
// call on dy. On the main thread in JavaScript, drawing the mask and the three tfjs passes
// over it (cast, scale, multiply) took ~5 % of a `seed` step while the kernels' threads waited.
// kLanes elements at a time: the hash in integer vectors, the keep test a lane mask that
// picks keepScale's bits or 0 (one element at a time, the hash took as long as the rest).
void dropout(const float* x, float* y, int64_t count, int64_t threshold, uint32_t start,
             uint32_t step, float keepScale) {
  typedef uint32_t lanesU32 __attribute__((vector_size(kLanes * 4)));
  const uint32_t limit = threshold < 0 ? 0u : static_cast<uint32_t>(threshold);  // −1: keep all
  lanesU32 laneSteps;
  for (int lane = 0; lane < kLanes; lane++) laneSteps[lane] = static_cast<uint32_t>(lane) * step;
  const lanesU32 scaleBits = (lanesU32)splat(keepScale);
  parallelFor(chunkCount(count), [&](int64_t chunk) {
    const int64_t end = std::min(count, (chunk + 1) * kChunk);
    int64_t e = chunk * kChunk;
    for (; e + kLanes <= end; e += kLanes) {
      const lanesU32 counters = (start + static_cast<uint32_t>(e) * step) + laneSteps;
      const lanesU32 keep = (lanesU32)(lowbias32(counters) >= limit);  // all ones where kept
      store(y + e, load(x + e) * (vec)(scaleBits & keep));
    }
    for (; e < end; e++) {
      const bool keep = dropoutHash(start, step, e) >= limit;
      y[e] = x[e] * (keep ? keepScale : 0.f);
    }
  });
}

// Per-thread scratch, grown once to the largest size asked for.
float* scratchFloats(int64_t count) {
  thread_local std::vector<float> scratch;
  if (static_cast<int64_t>(scratch.size()) < count) scratch.assign(static_cast<size_t>(count), 0.f);
  return scratch.data();
}

// to[d·Tp + j] = rows[j·stride + d] for one head: (T, hs) → (hs, Tp), padding columns zeroed.
// kLanes keys at a time, so each write is a whole vector: one float at a time, the writes
// went to hs lines Tp floats apart and this took a seventh of the attention kernels' time.
void transposeHead(const float* rows, int64_t stride, const AttentionShape& s, float* to) {
  const int64_t T = s.time, hs = s.headSize, Tp = s.padded();
  int64_t j = 0;
  for (; j + kLanes <= T; j += kLanes) {
    for (int64_t d = 0; d < hs; d++) {
      vec column;
#pragma GCC unroll 16
      for (int lane = 0; lane < kLanes; lane++) column[lane] = rows[(j + lane) * stride + d];
      store(to + d * Tp + j, column);
    }
  }
  for (int64_t d = 0; d < hs; d++) std::fill(to + d * Tp + j, to + (d + 1) * Tp, 0.f);
  for (; j < T; j++)
    for (int64_t d = 0; d < hs; d++) to[d * Tp + j] = rows[j * stride + d];
}

// out[r·outStride + j] = Σ_d x[r·xStride + d]·columns[d·Tp + j] · factor for R query rows
// and j < n, rounded up to whole vectors: the scores of R queries against kᵀ (or dy against
// vᵀ). Each vector of `columns` is loaded once for the R rows, and the 2·R sums are
// independent chains of FMAs. One row at a time, the loop was bound by its loads (one per
// FMA), and attention ran at ~22 GFLOP/s on a Zen 3 core pair; with R = 4, ~35.
template <int R>
inline void rowsTimesColumns(const float* x, int64_t xStride, const float* columns, int64_t hs,
                             int64_t Tp, int64_t n, float factor, float* out,
                             int64_t outStride) {
  const int64_t vectors = (n + kLanes - 1) / kLanes;
  int64_t v = 0;
  for (; v + 2 <= vectors; v += 2) {
    const float* at = columns + v * kLanes;
    vec acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = splat(0.f);
    for (int64_t d = 0; d < hs; d++) {
      const vec c0 = load(at + d * Tp), c1 = load(at + d * Tp + kLanes);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) {
        const vec xd = broadcastLoad(x + r * xStride + d);
        acc[r][0] += xd * c0;
        acc[r][1] += xd * c1;
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      store(out + r * outStride + v * kLanes, acc[r][0] * splat(factor));
      store(out + r * outStride + (v + 1) * kLanes, acc[r][1] * splat(factor));
    }
  }
  for (; v < vectors; v++) {
    vec acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) acc[r] = splat(0.f);
    for (int64_t d = 0; d < hs; d++) {
      const vec c = load(columns + d * Tp + v * kLanes);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) acc[r] += broadcastLoad(x + r * xStride + d) * c;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) store(out + r * outStride + v * kLanes, acc[r] * splat(factor));
  }
}

// The largest of values[0, n), n ≥ 1: whole vectors, then the rest (exact in any order).
inline float maxOf(const float* values, int64_t n) {
  float max = values[0];
  int64_t j = 0;
  if (n >= kLanes) {
    vec most = load(values);
    for (j = kLanes; j + kLanes <= n; j += kLanes) {
      const vec next = load(values + j);
      most = most > next ? most : next;
    }
    for (int lane = 0; lane < kLanes; lane++) max = std::max(max, most[lane]);
  }
  for (; j < n; j++) max = std::max(max, values[j]);
  return max;
}

// Σ values[0, n): lane sums over whole vectors (in order), the lanes added in order, then
// the rest. A fixed order, so the same bits on every call; one add at a time was a chain of
// n dependent adds per query.
inline float sumOf(const float* values, int64_t n) {
  vec lanes = splat(0.f);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) lanes += load(values + j);
  float sum = 0.f;
  for (int lane = 0; lane < kLanes; lane++) sum += lanes[lane];
  for (; j < n; j++) sum += values[j];
  return sum;
}

// out[0, hs) = factor · Σ_{t<n} w[t·wStride] · rows[t·rowStride + (0, hs)]: a weighted sum of
// n rows of one head (y_i = Σ_j p_ij·v_j, dq_i = Σ_j ds_ij·k_j, dk_j = Σ_i ds_ij·q_i, …). For
// a head size of whole vectors the hs sums stay in registers, in two chains (even and odd t)
// when a row is under 8 vectors: with one chain each FMA waited on the one before it. The
// order is fixed, so the same bits on every call. `scratch` (hs floats) serves other sizes.
template <int HS>
inline void weightedRows(const float* w, int64_t wStride, const float* rows, int64_t rowStride,
                         int64_t n, int64_t hs, float factor, float* out, float* scratch) {
  if constexpr (HS != 0 && HS % kLanes == 0) {
    constexpr int kVectors = HS / kLanes;
    constexpr int kChains = kVectors >= 8 ? 1 : 2;
    vec sums[kChains][kVectors];
#pragma GCC unroll 16
    for (int c = 0; c < kChains; c++)
#pragma GCC unroll 16
      for (int u = 0; u < kVectors; u++) sums[c][u] = splat(0.f);
    int64_t t = 0;
    for (; t + kChains <= n; t += kChains) {
#pragma GCC unroll 16
      for (int c = 0; c < kChains; c++) {
        const vec weight = broadcastLoad(w + (t + c) * wStride);
        const float* row = rows + (t + c) * rowStride;
#pragma GCC unroll 16
        for (int u = 0; u < kVectors; u++) sums[c][u] += weight * load(row + u * kLanes);
      }
    }
    for (; t < n; t++) {
      const vec weight = broadcastLoad(w + t * wStride);
#pragma GCC unroll 16
      for (int u = 0; u < kVectors; u++) sums[0][u] += weight * load(rows + t * rowStride + u * kLanes);
    }
#pragma GCC unroll 16
    for (int u = 0; u < kVectors; u++) {
      vec total = sums[0][u];
#pragma GCC unroll 16
      for (int c = 1; c < kChains; c++) total += sums[c][u];
      store(out + u * kLanes, total * splat(factor));
    }
  } else {
    std::fill(scratch, scratch + hs, 0.f);
    for (int64_t t = 0; t < n; t++) {
      const float weight = w[t * wStride];
      const float* row = rows + t * rowStride;
      for (int64_t d = 0; d < hs; d++) scratch[d] += weight * row[d];
    }
    for (int64_t d = 0; d < hs; d++) out[d] = scratch[d] * factor;
  }
}

// Two weighted sums over the same rows at once: out0 = factor0 · Σ_{t<n} w0[t]·rows[t], out1
// likewise with w1, for a head size of whole groups of 4 vectors (each group's 2 × 4 sums in
// registers, one chain per sum: 8 independent FMAs per row). Each row vector is loaded once
// for the two outputs. w0 must hold 0 where its own sum stops short of n.
template <int HS>
inline void weightedRowsPair(const float* w0, const float* w1, int64_t wStride,
                             const float* rows, int64_t rowStride, int64_t n, float factor0,
                             float factor1, float* out0, float* out1) {
  static_assert(HS % (4 * kLanes) == 0, "whole groups of 4 vectors");
  for (int group = 0; group < HS / (4 * kLanes); group++) {
    const int64_t column = group * 4 * kLanes;
    vec sums0[4], sums1[4];
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) sums0[u] = sums1[u] = splat(0.f);
    for (int64_t t = 0; t < n; t++) {
      const vec weight0 = broadcastLoad(w0 + t * wStride), weight1 = broadcastLoad(w1 + t * wStride);
      const float* row = rows + t * rowStride + column;
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++) {
        const vec value = load(row + u * kLanes);
        sums0[u] += weight0 * value;
        sums1[u] += weight1 * value;
      }
    }
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) {
      store(out0 + column + u * kLanes, sums0[u] * splat(factor0));
      store(out1 + column + u * kLanes, sums1[u] * splat(factor1));
    }
  }
}

// to[j·hs + d] = rows[j·stride + d]: one head's (T, hs) block made contiguous. Rows 3C floats
// apart fall into a few of L1's sets (a stride of 3 KB revisits 4 of its 64), so a weighted
// sum over the strided rows missed L1 on most of them.
inline void gatherHead(const float* rows, int64_t stride, int64_t T, int64_t hs, float* to) {
  const int64_t vectors = hs / kLanes;  // whole vectors, then the rest a float at a time
  for (int64_t j = 0; j < T; j++) {
    const float* from = rows + j * stride;
    float* into = to + j * hs;
    for (int64_t u = 0; u < vectors; u++) store(into + u * kLanes, load(from + u * kLanes));
    for (int64_t d = vectors * kLanes; d < hs; d++) into[d] = from[d];
  }
}

// Queries in blocks of kQueryBlock: their scores share each load of kᵀ (or vᵀ). With a head
// size of whole groups of 4 vectors (kPairedRows), pairs of queries (and of keys, for dk and
// dv) also share each row they sum (weightedRowsPair).
constexpr int kQueryBlock = 4;
template <int HS>
constexpr bool kPairedRows = HS != 0 && HS % (4 * kLanes) == 0;

// HS: the head size when it is one of the common ones (a compile-time constant, so the
// per-query sums over hs stay in registers), else 0 and s.headSize.
template <int HS>
void attentionForward(const float* qkv, float* y, float* lse, const AttentionShape& s) {
  const int64_t T = s.time, hs = HS ? HS : s.headSize, C = s.width(), Tp = s.padded();
  const int64_t in = 3 * C;  // qkv's row stride
  parallelFor(s.batch * s.heads, [&](int64_t task) {
    const int64_t b = task / s.heads, h = task % s.heads;
    const float* q = qkv + b * T * in + h * hs;  // this head's (T, hs) blocks, row stride 3C
    const float* k = q + C;
    float* yh = y + b * T * C + h * hs;  // row stride C
    float* kt = scratchFloats(hs * Tp + T * hs + kQueryBlock * Tp + hs);
    float* v = kt + hs * Tp;             // (T, hs), contiguous
    float* weights = v + T * hs;         // kQueryBlock queries' scores, then weights (Tp each)
    float* acc = weights + kQueryBlock * Tp;  // (hs), the general head size's sums
    transposeHead(k, in, s, kt);
    gatherHead(q + 2 * C, in, T, hs, v);
    const bool dropout = s.threshold >= 0;
    // Row i's weights (keys 0..i) in `w`, exponentiated; returns 1 / their sum (× keepScale
    // with dropout) and writes lse. The lanes from i + 1 to the block's end are zeroed.
    auto softmaxRow = [&](int64_t i, float* w, int64_t blockEnd) {
      const int64_t n = i + 1;
      const float max = maxOf(w, n);
      for (int64_t j = 0; j < n; j += kLanes) store(w + j, vexp(load(w + j) - splat(max)));
      const float sum = sumOf(w, n);
      if (dropout) {
        // A dropped weight becomes 0 (adding 0·v_j changes no bit), so the sums below have no
        // branch per key.
        const uint64_t row = static_cast<uint64_t>(task * T + i) * T;  // weight number of j = 0
        for (int64_t j = 0; j < n; j++) w[j] *= kept(s, row + j);
      }
      std::fill(w + n, w + blockEnd, 0.f);
      lse[task * T + i] = max + std::log(sum);
      return (dropout ? s.keepScale : 1.f) / sum;
    };
    int64_t i = 0;
    for (; i + kQueryBlock <= T; i += kQueryBlock) {
      const int64_t end = i + kQueryBlock;  // keys 0..end-1 cover every query of the block
      rowsTimesColumns<kQueryBlock>(q + i * in, in, kt, hs, Tp, end, s.scale, weights, Tp);
      float factors[kQueryBlock];
      for (int r = 0; r < kQueryBlock; r++) factors[r] = softmaxRow(i + r, weights + r * Tp, end);
      if constexpr (kPairedRows<HS>) {
        for (int r = 0; r < kQueryBlock; r += 2)
          weightedRowsPair<HS>(weights + r * Tp, weights + (r + 1) * Tp, 1, v, hs, i + r + 2,
                               factors[r], factors[r + 1], yh + (i + r) * C,
                               yh + (i + r + 1) * C);
      } else {
        for (int r = 0; r < kQueryBlock; r++)
          weightedRows<HS>(weights + r * Tp, 1, v, hs, i + r + 1, hs, factors[r],
                           yh + (i + r) * C, acc);
      }
    }
    for (; i < T; i++) {
      rowsTimesColumns<1>(q + i * in, in, kt, hs, Tp, i + 1, s.scale, weights, Tp);
      const float factor = softmaxRow(i, weights, i + 1);
      weightedRows<HS>(weights, 1, v, hs, i + 1, hs, factor, yh + i * C, acc);
    }
  });
}

// With p = exp(q·kᵀ·scale − lse) and m = keep·keepScale (1 without dropout):
//   dv_j = Σ_i p_ij·m_ij·dy_i;  dp_ij = m_ij·(dy_i·v_j);  ds_ij = p_ij·(dp_ij − dy_i·y_i)·scale;
//   dq_i = Σ_j ds_ij·k_j;  dk_j = Σ_i ds_ij·q_i.  dqkv is laid out as qkv.
template <int HS>
void attentionBackward(const float* dy, const float* qkv, const float* y, const float* lse,
                       float* dqkv, const AttentionShape& s) {
  const int64_t T = s.time, hs = HS ? HS : s.headSize, C = s.width(), Tp = s.padded();
  const int64_t in = 3 * C;
  parallelFor(s.batch * s.heads, [&](int64_t task) {
    const int64_t b = task / s.heads, h = task % s.heads;
    const float* qRows = qkv + b * T * in + h * hs;
    float* dq = dqkv + b * T * in + h * hs;
    float* dk = dq + C;
    float* dv = dq + 2 * C;
    const float* dyRows = dy + b * T * C + h * hs;
    const float* yh = y + b * T * C + h * hs;
    float* kt = scratchFloats(2 * hs * Tp + 3 * T * hs + 2 * T * Tp + kQueryBlock * Tp + hs);
    float* vt = kt + hs * Tp;
    float* q = vt + hs * Tp;  // (T, hs) each, contiguous (gatherHead)
    float* k = q + T * hs;
    float* dyh = k + T * hs;
    float* keptWeights = dyh + T * hs;         // (T, Tp): p·m, row i holds keys 0..i, zeros after
    float* scoreGrads = keptWeights + T * Tp;  // (T, Tp): ds
    float* dp = scoreGrads + T * Tp;           // (kQueryBlock, Tp)
    float* acc = dp + kQueryBlock * Tp;        // (hs), the general head size's sums
    gatherHead(qRows, in, T, hs, q);
    gatherHead(qRows + C, in, T, hs, k);
    gatherHead(dyRows, C, T, hs, dyh);
    transposeHead(k, hs, s, kt);  // from the contiguous copy: k's rows are read once
    transposeHead(qRows + 2 * C, in, s, vt);
    const bool dropout = s.threshold >= 0;
    // Row i's kept weights and score gradients from its scores (in p) and dy·vᵀ (in dpRow).
    auto gradientRow = [&](int64_t i, float* p, const float* dpRow) {
      const int64_t n = i + 1;
      const float* dyi = dyh + i * hs;
      const float* yi = yh + i * C;
      float* ds = scoreGrads + i * Tp;
      const float rowLse = lse[task * T + i];
      for (int64_t j = 0; j < n; j += kLanes) store(p + j, vexp(load(p + j) - splat(rowLse)));
      float dyDotY = 0.f;
      for (int64_t d = 0; d < hs; d++) dyDotY += dyi[d] * yi[d];
      if (dropout) {
        const uint64_t row = static_cast<uint64_t>(task * T + i) * T;
        for (int64_t j = 0; j < n; j++) {
          const float m = kept(s, row + j) * s.keepScale;
          ds[j] = p[j] * (m * dpRow[j] - dyDotY) * s.scale;
          p[j] *= m;  // from here on p holds the kept weights, which dv needs
        }
      } else {
        // The same arithmetic as above with m = 1, a vector at a time (the lanes past n are
        // cleared below).
        for (int64_t j = 0; j < n; j += kLanes)
          store(ds + j, load(p + j) * (load(dpRow + j) - splat(dyDotY)) * splat(s.scale));
      }
      std::fill(p + n, p + Tp, 0.f);
      std::fill(ds + n, ds + Tp, 0.f);
    };
    int64_t i = 0;
    for (; i + kQueryBlock <= T; i += kQueryBlock) {
      const int64_t end = i + kQueryBlock;
      float* p = keptWeights + i * Tp;
      rowsTimesColumns<kQueryBlock>(q + i * hs, hs, kt, hs, Tp, end, s.scale, p, Tp);
      rowsTimesColumns<kQueryBlock>(dyh + i * hs, hs, vt, hs, Tp, end, 1.f, dp, Tp);
      for (int r = 0; r < kQueryBlock; r++) gradientRow(i + r, p + r * Tp, dp + r * Tp);
      const float* ds = scoreGrads + i * Tp;
      if constexpr (kPairedRows<HS>) {
        for (int r = 0; r < kQueryBlock; r += 2)
          weightedRowsPair<HS>(ds + r * Tp, ds + (r + 1) * Tp, 1, k, hs, i + r + 2, 1.f, 1.f,
                               dq + (i + r) * in, dq + (i + r + 1) * in);
      } else {
        for (int r = 0; r < kQueryBlock; r++)
          weightedRows<HS>(ds + r * Tp, 1, k, hs, i + r + 1, hs, 1.f, dq + (i + r) * in, acc);
      }
    }
    for (; i < T; i++) {
      float* p = keptWeights + i * Tp;
      rowsTimesColumns<1>(q + i * hs, hs, kt, hs, Tp, i + 1, s.scale, p, Tp);
      rowsTimesColumns<1>(dyh + i * hs, hs, vt, hs, Tp, i + 1, 1.f, dp, Tp);
      gradientRow(i, p, dp);
      weightedRows<HS>(scoreGrads + i * Tp, 1, k, hs, i + 1, hs, 1.f, dq + i * in, acc);
    }
    // dk_j and dv_j sum over the queries i ≥ j, in increasing i: column j of ds and of the
    // kept weights (zero above the diagonal, so key j + 1's column starts with a 0 at i = j).
    int64_t j = 0;
    if constexpr (kPairedRows<HS>) {
      for (; j + 2 <= T; j += 2) {
        const float* dsColumn = scoreGrads + j * Tp + j;
        const float* pColumn = keptWeights + j * Tp + j;
        weightedRowsPair<HS>(dsColumn, dsColumn + 1, Tp, q + j * hs, hs, T - j, 1.f, 1.f,
                             dk + j * in, dk + (j + 1) * in);
        weightedRowsPair<HS>(pColumn, pColumn + 1, Tp, dyh + j * hs, hs, T - j, 1.f, 1.f,
                             dv + j * in, dv + (j + 1) * in);
      }
    }
    for (; j < T; j++) {
      weightedRows<HS>(scoreGrads + j * Tp + j, Tp, q + j * hs, hs, T - j, hs, 1.f, dk + j * in, acc);
      weightedRows<HS>(keptWeights + j * Tp + j, Tp, dyh + j * hs, hs, T - j, hs, 1.f, dv + j * in, acc);
    }
  });
}

// The head sizes of the presets and GPT-2 (32, 64) with their sums in registers; others general.
void attention(const float* qkv, float* y, float* lse, const AttentionShape& s) {
  if (s.headSize == 32) return attentionForward<32>(qkv, y, lse, s);
  if (s.headSize == 64) return attentionForward<64>(qkv, y, lse, s);
  attentionForward<0>(qkv, y, lse, s);
}

void attentionGrad(const float* dy, const float* qkv, const float* y, const float* lse,
                   float* dqkv, const AttentionShape& s) {
  if (s.headSize == 32) return attentionBackward<32>(dy, qkv, y, lse, dqkv, s);
  if (s.headSize == 64) return attentionBackward<64>(dy, qkv, y, lse, dqkv, s);
  attentionBackward<0>(dy, qkv, y, lse, dqkv, s);
}

// The shape and dropout stream from a call's integers: batch, time, heads, headSize,
// threshold, start, step; false when out of range.
bool readAttentionShape(const int64_t* v, double keepScale, AttentionShape& s) {
  s = AttentionShape{v[0], v[1], v[2], v[3], 0.f, static_cast<float>(keepScale), v[4],
                     static_cast<uint32_t>(v[5]), static_cast<uint32_t>(v[6])};
  if (s.batch < 0 || s.time < 1 || s.heads < 1 || s.headSize < 1 || s.time > (1 << 16) ||
      s.headSize > (1 << 16) || s.heads > (1 << 16) || s.threshold < -1 ||
      s.threshold > 0xffffffffLL || v[5] < 0 || v[5] > 0xffffffffLL || v[6] < 0 ||
      v[6] > 0xffffffffLL)
    return false;
  s.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.headSize)));
  return true;
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
  int64_t ints[16] = {};
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
  napi_value args[24];
  size_t argc = 24;
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

// dropout(heap, x, y (bytes), count, threshold, start, step, keepScale)
napi_value Dropout(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!readCall(env, info, "dropout", 6, 1, call)) return nullptr;
  double keepScale = 1;
  if (napi_get_value_double(env, call.rest[0], &keepScale) != napi_ok)
    return throwError(env, "dropout: keepScale must be a number");
  const int64_t* v = call.ints;
  const auto word = [](int64_t value) { return value >= 0 && value <= 0xffffffffLL; };
  if (v[2] < 0 || !(v[3] == -1 || word(v[3])) || !word(v[4]) || !word(v[5]))
    return throwError(env, "dropout: bad count or stream");
  if (!call.fits(v[0], v[2]) || !call.fits(v[1], v[2]))
    return throwError(env, "dropout: an operand lies outside the heap");
  dropout(call.at(v[0]), call.at(v[1]), v[2], v[3], static_cast<uint32_t>(v[4]),
          static_cast<uint32_t>(v[5]), static_cast<float>(keepScale));
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

// attention(heap, qkv, y, lse (bytes), batch, time, heads, headSize, threshold (−1: no
//           dropout), start, step, keepScale)
napi_value Attention(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!readCall(env, info, "attention", 10, 1, call)) return nullptr;
  double keepScale = 1;
  if (napi_get_value_double(env, call.rest[0], &keepScale) != napi_ok)
    return throwError(env, "attention: keepScale must be a number");
  const int64_t* v = call.ints;
  AttentionShape s;
  if (!readAttentionShape(v + 3, keepScale, s)) return throwError(env, "attention: bad sizes");
  const int64_t rows = s.batch * s.time, values = rows * s.width();
  if (!call.fits(v[0], 3 * values) || !call.fits(v[1], values) ||
      !call.fits(v[2], s.batch * s.heads * s.time))
    return throwError(env, "attention: an operand lies outside the heap");
  attention(call.at(v[0]), call.at(v[1]), call.at(v[2]), s);
  return nullptr;
}

// attentionGrad(heap, dy, qkv, y, lse, dqkv (bytes), batch, time, heads, headSize, threshold,
//               start, step, keepScale)
napi_value AttentionGrad(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!readCall(env, info, "attentionGrad", 12, 1, call)) return nullptr;
  double keepScale = 1;
  if (napi_get_value_double(env, call.rest[0], &keepScale) != napi_ok)
    return throwError(env, "attentionGrad: keepScale must be a number");
  const int64_t* v = call.ints;
  AttentionShape s;
  if (!readAttentionShape(v + 5, keepScale, s))
    return throwError(env, "attentionGrad: bad sizes");
  const int64_t rows = s.batch * s.time, values = rows * s.width();
  if (!call.fits(v[0], values) || !call.fits(v[1], 3 * values) || !call.fits(v[2], values) ||
      !call.fits(v[3], s.batch * s.heads * s.time) || !call.fits(v[4], 3 * values))
    return throwError(env, "attentionGrad: an operand lies outside the heap");
  attentionGrad(call.at(v[0]), call.at(v[1]), call.at(v[2]), call.at(v[3]), call.at(v[4]), s);
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
  Pool::instance().setThreads(threads);
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"matMul", nullptr, MatMul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, UnaryOp, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"dropout", nullptr, Dropout, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNorm", nullptr, LayerNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormGrad", nullptr, LayerNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attention", nullptr, Attention, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attentionGrad", nullptr, AttentionGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
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
