// shimmy-cuda-mm-bench: speed of the CUDA weight matmuls (plugins/cuda/src/mm).
//
//   shimmy-cuda-mm-bench [TYPE...]      (default: every type; e.g. Q4_0 Q8_0 F16 Q4_K)
//   shimmy-cuda-mm-bench --one TYPE ROWS COLS M   five plain calls, for a profiler
//   shimmy-cuda-mm-bench --copy         the device-to-device copy bandwidth alone
//   shimmy-cuda-mm-bench --step TYPE...  the weight products of a TinyLlama decode step
//                                        alone (22 layers + head, m = 1 and 16), against
//                                        one product of the same bytes: what the product
//                                        boundaries cost
//   shimmy-cuda-mm-bench --persistent TYPE...  the same, and the same products in one
//                                        persistent kernel (Q4_0, Q8_0, Q4_K, F16): blocks
//                                        of 4, 8 and 16 warps, grid barriers between products
//   shimmy-cuda-mm-bench --stream Q8_0 F16  the same step (m = 1) in the persistent kernels
//                                        of stream_step.cuh: weights streamed per warp, or
//                                        staged in shared memory by the TMA
//
// Prints the device-to-device copy bandwidth (bytes read + written per second: the memory
// ceiling), then per type and weight shape: decode (m = 1) time, weight bytes read per
// second and their share of the copy bandwidth; the m = 16 time as a multiple of m = 1
// (parallel decode reads the weights once); and per type the prompt path (m = 512) in
// TFLOP/s on the TinyLlama-1.1B matrices, each alone and all 7 of a layer together.
// Timing: CUDA graphs of back-to-back calls, replayed; the median replay. Decode calls
// rotate over copies of the weights that together exceed the L2 cache several times, so
// the bytes come from device memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/quant/kernels.h"
#include "gguf/types.h"
#include "mm/kernels.cuh"
#include "mm/matmul.h"

namespace {

using shimmy::gguf::TensorType;

#define CHECK(expr)                                                                               \
  do {                                                                                            \
    const cudaError_t e_ = (expr);                                                                \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

// Median milliseconds of one replay of `graph` (after one warm-up replay).
float time_graph(cudaGraphExec_t graph, cudaStream_t s, int reps = 7) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  CHECK(cudaGraphLaunch(graph, s));
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    CHECK(cudaEventRecord(a, s));
    CHECK(cudaGraphLaunch(graph, s));
    CHECK(cudaEventRecord(b, s));
    CHECK(cudaEventSynchronize(b));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Blocks of `threads` threads and `smem` bytes the device holds at once per SM (0: none),
// and its SMs: the sizes of a cooperative grid.
int resident_per_sm(const void* k, int threads, size_t smem, int* sms) {
  int per_sm = 0, dev = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, dev));
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, threads, smem));
  return per_sm;
}

// Median microseconds of one cooperative launch of `k` over 7 launches, after one that
// warms up. before() runs ahead of each launch, outside the timed range; after() behind it
// (e.g. moving on the grid barrier's target that `args` points at).
template <class Before, class After>
double time_cooperative(const void* k, int grid, int threads, size_t smem, void** args,
                        cudaStream_t s, Before&& before, After&& after) {
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int r = 0; r < 8; ++r) {
    before();
    CHECK(cudaEventRecord(e0, s));
    CHECK(cudaLaunchCooperativeKernel(k, dim3(unsigned(grid)), dim3(unsigned(threads)), args, smem,
                                      s));
    CHECK(cudaEventRecord(e1, s));
    CHECK(cudaEventSynchronize(e1));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, e0, e1));
    if (r > 0) ms.push_back(t);  // the first launch warms up
    after();
  }
  CHECK(cudaEventDestroy(e0));
  CHECK(cudaEventDestroy(e1));
  std::sort(ms.begin(), ms.end());
  return double(ms[ms.size() / 2]) * 1e3;
}

// time_cooperative of a kernel taking (int n, unsigned* bar, unsigned base, int mode), on as
// many blocks as are resident at once, with a grid-barrier counter of its own: a launch that
// passes `barriers` grid barriers moves the target on by barriers x grid. 0 when the device
// cannot hold a block.
double time_barrier_kernel(const void* k, int threads, size_t smem, int n, int mode, int barriers,
                           cudaStream_t s, int* blocks_out) {
  int sms = 0;
  const int per_sm = resident_per_sm(k, threads, smem, &sms);
  if (per_sm == 0) return 0.0;
  const int grid = sms * per_sm;
  *blocks_out = grid;
  unsigned* bar = nullptr;
  CHECK(cudaMalloc(&bar, 256));
  CHECK(cudaMemset(bar, 0, 256));
  unsigned base = 0;
  void* args[] = {&n, &bar, &base, &mode};
  const double us = time_cooperative(
      k, grid, threads, smem, args, s, [] {}, [&] { base += unsigned(barriers) * unsigned(grid); });
  CHECK(cudaFree(bar));
  return us;
}

// Captures `calls` invocations of enqueue(i, s) into a graph.
template <class F>
cudaGraphExec_t capture(cudaStream_t s, int calls, F&& enqueue) {
  cudaGraph_t g;
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < calls; ++i) enqueue(i, s);
  CHECK(cudaStreamEndCapture(s, &g));
  cudaGraphExec_t e;
  CHECK(cudaGraphInstantiate(&e, g, 0));
  CHECK(cudaGraphDestroy(g));
  return e;
}

__global__ void copy_kernel(const uint4* __restrict__ in, uint4* __restrict__ out, size_t n) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    out[i] = in[i];
}

// Device-to-device copy of 1 GiB by a kernel: bytes read + written per second.
double copy_gbps(cudaStream_t s, int sms) {
  const size_t n = size_t(1) << 30;
  void *a, *b;
  CHECK(cudaMalloc(&a, n));
  CHECK(cudaMalloc(&b, n));
  CHECK(cudaMemset(a, 1, n));
  cudaGraphExec_t g = capture(s, 4, [&](int, cudaStream_t st) {
    copy_kernel<<<unsigned(sms * 8), 256, 0, st>>>(static_cast<const uint4*>(a),
                                                   static_cast<uint4*>(b), n / 16);
  });
  const float ms = time_graph(g, s);
  CHECK(cudaGraphExecDestroy(g));
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
  return 2.0 * double(n) * 4 / (ms * 1e-3) / 1e9;
}

// A [rows, cols] weight on the device in `copies` copies (rows repeat a pool of 64 random
// quantized rows: the bytes read are the same, the quantizer runs only 64 times).
struct BenchWeight {
  std::vector<shimmy::cuda::DeviceWeight> w;
  std::vector<void*> mem;
  size_t bytes = 0;
  ~BenchWeight() {
    for (void* p : mem) cudaFree(p);
  }
};

void make_weight(TensorType type, int64_t rows, int64_t cols, size_t min_total, cudaStream_t s,
                 BenchWeight& out) {
  const size_t rb = size_t(*shimmy::gguf::row_bytes(type, uint64_t(cols)));
  const int64_t pool = 64;
  std::vector<uint8_t> pool_bytes(size_t(pool) * rb);
  std::mt19937 rng(uint32_t(cols) * 31u + uint32_t(type));
  std::normal_distribution<float> nd(0.f, 0.02f);
  std::vector<float> src(static_cast<size_t>(cols));
  for (int64_t r = 0; r < pool; ++r) {
    for (auto& v : src) v = nd(rng);
    if (!shimmy::quant::quantize_row(type, src.data(), pool_bytes.data() + size_t(r) * rb, cols)
             .ok()) {
      std::fprintf(stderr, "quantize_row failed\n");
      std::exit(1);
    }
  }
  std::vector<uint8_t> host(size_t(rows) * rb);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(host.data() + size_t(r) * rb, pool_bytes.data() + size_t(r % pool) * rb, rb);
  out.bytes = shimmy::cuda::weight_device_bytes(uint32_t(type), rows, cols);
  const size_t copies = std::max<size_t>(1, (min_total + out.bytes - 1) / out.bytes);
  out.w.resize(copies);
  out.mem.resize(copies);
  for (size_t i = 0; i < copies; ++i) {
    CHECK(cudaMalloc(&out.mem[i], out.bytes));
    if (i == 0) {
      CHECK(shimmy::cuda::upload_weight(host.data(), uint32_t(type), rows, cols, rb, out.mem[0],
                                        &out.w[0], s));
    } else {
      CHECK(cudaMemcpyAsync(out.mem[i], out.mem[0], out.bytes, cudaMemcpyDeviceToDevice, s));
      out.w[i] = out.w[0];
      out.w[i].data = out.mem[i];
    }
  }
  CHECK(cudaStreamSynchronize(s));
}

struct DeviceBuf {
  void* p = nullptr;
  explicit DeviceBuf(size_t n) {
    if (n) CHECK(cudaMalloc(&p, n));
  }
  ~DeviceBuf() {
    if (p) cudaFree(p);
  }
};

// Median microseconds of one matmul of m rows (calls rotate over the weight copies).
double time_matmul(const BenchWeight& bw, int64_t m, cudaStream_t s) {
  const auto& w0 = bw.w[0];
  DeviceBuf x(size_t(m * w0.cols) * 4), y(size_t(m * w0.rows) * 4);
  DeviceBuf ws(shimmy::cuda::matmul_workspace_bytes(w0, m));
  std::vector<float> hx(size_t(m * w0.cols));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> ud(-1.f, 1.f);
  for (auto& v : hx) v = ud(rng);
  CHECK(cudaMemcpy(x.p, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice));
  const int calls = int(std::max<size_t>(20, 2 * bw.w.size()));
  cudaGraphExec_t g = capture(s, calls, [&](int i, cudaStream_t st) {
    shimmy::cuda::matmul(bw.w[size_t(i) % bw.w.size()], static_cast<const float*>(x.p), m,
                         static_cast<float*>(y.p), w0.rows, ws.p, st);
  });
  CHECK(cudaGetLastError());
  const float ms = time_graph(g, s);
  CHECK(cudaGraphExecDestroy(g));
  return double(ms) * 1e3 / calls;
}

const TensorType kAll[] = {TensorType::Q8_0, TensorType::F16,    TensorType::Q4_0, TensorType::Q4_K,
                           TensorType::BF16, TensorType::F32,    TensorType::Q4_1, TensorType::Q5_0,
                           TensorType::Q5_1, TensorType::IQ4_NL, TensorType::Q2_K, TensorType::Q3_K,
                           TensorType::Q5_K, TensorType::Q6_K};

}  // namespace

TensorType type_named(const char* name) {
  for (TensorType t : kAll)
    if (shimmy::gguf::type_name(uint32_t(t)) == name) return t;
  std::fprintf(stderr, "unknown type %s\n", name);
  std::exit(2);
}

// Five plain (not graph) calls of one product: for ncu and compute-sanitizer.
int run_one(char** argv) {
  const TensorType t = type_named(argv[0]);
  const int64_t rows = std::atoll(argv[1]), cols = std::atoll(argv[2]), m = std::atoll(argv[3]);
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  BenchWeight bw;
  make_weight(t, rows, cols, 0, s, bw);
  const auto& w = bw.w[0];
  DeviceBuf x(size_t(m * cols) * 4), y(size_t(m * rows) * 4);
  DeviceBuf ws(shimmy::cuda::matmul_workspace_bytes(w, m));
  CHECK(cudaMemset(x.p, 0, size_t(m * cols) * 4));
  for (int i = 0; i < 5; ++i)
    shimmy::cuda::matmul(w, static_cast<const float*>(x.p), m, static_cast<float*>(y.p), rows, ws.p,
                         s);
  CHECK(cudaGetLastError());
  CHECK(cudaStreamSynchronize(s));
  CHECK(cudaStreamDestroy(s));
  return 0;
}

// ---- the step's products in one persistent kernel (an experiment: what launches cost) ----
// Every block of a co-resident grid takes tiles blockIdx.x, + gridDim.x, ... of each product
// in turn with the decode kernels' tile code (mm/kernels.cuh mmv_body, 16 warps); where a
// product kernel waits for its predecessor (griddepcontrol.wait, after its first weight
// loads), a block here waits at a grid barrier instead, so the next product's first loads
// overlap the barrier and no block ever launches.
namespace persist {
namespace mm = shimmy::cuda::mm;
constexpr int kMaxProducts = 96;
__constant__ mm::MmArgs c_prods[kMaxProducts];

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}
// Arrivals count up in *bar; every block goes on once it reads `target`.
__device__ __forceinline__ void grid_barrier(unsigned* bar, unsigned target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(bar, 1u);
    while (ld_acquire(bar) < target) {
    }
  }
  __syncthreads();
}

// The same with one flag: the last block to arrive (its atomicAdd returns target - 1)
// releases the rest, which poll a line no atomic touches (flag = bar + 32).
__device__ __forceinline__ void flag_barrier(unsigned* bar, unsigned target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(bar, 1u) == target - 1) {
      asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(bar + 32), "r"(target) : "memory");
    } else {
      while (ld_acquire(bar + 32) < target) {
      }
    }
  }
  __syncthreads();
}

template <uint32_t T, int NT, int kDepth, int kW>
__global__ void __launch_bounds__(kW * 32)
    step_kernel(int n, unsigned* bar, unsigned base, int mode) {
  unsigned target = base;
  if (mode == 2 || mode == 4) {  // the barriers alone
    for (int p = 0; p < n; ++p) {
      target += gridDim.x;
      mode == 2 ? grid_barrier(bar, target) : flag_barrier(bar, target);
    }
    return;
  }
  for (int p = 0; p < n; ++p) {
    const mm::MmArgs& a = c_prods[p];
    const int64_t tiles = (a.rows + 15) / 16;
    target += gridDim.x;
    bool waited = false;
    auto wait = [&] {
      if (!waited && mode == 0) grid_barrier(bar, target);  // mode 1: the products alone
      if (!waited && mode == 3) flag_barrier(bar, target);
      waited = true;
    };
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      mm::mmv_body<T, NT, kDepth>(a, tile, wait);
      __syncthreads();  // the reduction's shared memory is reused by the next tile
    }
    wait();
  }
}

// Median microseconds of one launch doing `prods` (m from the args); 0 when the device
// cannot hold the grid.
template <uint32_t T, int NT, int kDepth, int kW>
double time_step(const std::vector<mm::MmArgs>& prods, int mode, cudaStream_t s, int* blocks_out) {
  CHECK(cudaMemcpyToSymbol(c_prods, prods.data(), prods.size() * sizeof(mm::MmArgs)));
  auto* k = step_kernel<T, NT, kDepth, kW>;
  const int n = int(prods.size());
  return time_barrier_kernel(reinterpret_cast<const void*>(k), kW * 32, mm::decode_smem(NT, kW), n,
                             mode, mode != 1 ? n : 0, s, blocks_out);
}

// A product of the step (mm/ops.h args_for, with the SwiGLU epilogue for gate/up).
mm::MmArgs args_of(const shimmy::cuda::DeviceWeight& w, const float* x, int64_t m, float* y,
                   int64_t ldy, bool swiglu) {
  mm::MmArgs a = mm::args_for(w, x, m, y, ldy);
  a.swiglu = swiglu;
  return a;
}

template <uint32_t T>
double run(const std::vector<mm::MmArgs>& prods, int64_t m, int w, int mode, cudaStream_t s,
           int* blocks) {
  constexpr int kD = mm::Dec<T>::kScale ? 2 : 1;  // the product kernels' m = 1 depth
  if (m == 1) {
    if (w == 4) return time_step<T, 1, kD, 4>(prods, mode, s, blocks);
    if (w == 8) return time_step<T, 1, kD, 8>(prods, mode, s, blocks);
    return time_step<T, 1, kD, 16>(prods, mode, s, blocks);
  }
  if (w == 4) return time_step<T, 2, 1, 4>(prods, mode, s, blocks);
  if (w == 8) return time_step<T, 2, 1, 8>(prods, mode, s, blocks);
  return time_step<T, 2, 1, 16>(prods, mode, s, blocks);
}

// mode 0: products and barriers; 1: the products alone; 2: the barriers alone; 3 and 4:
// as 0 and 2 with flag barriers.
double time_persistent(TensorType t, const std::vector<mm::MmArgs>& prods, int64_t m, int w,
                       int mode, cudaStream_t s, int* blocks) {
  switch (uint32_t(t)) {
    case shimmy::cuda::kQ4_0:
      return run<shimmy::cuda::kQ4_0>(prods, m, w, mode, s, blocks);
    case shimmy::cuda::kQ8_0:
      return run<shimmy::cuda::kQ8_0>(prods, m, w, mode, s, blocks);
    case shimmy::cuda::kQ4_K:
      return run<shimmy::cuda::kQ4_K>(prods, m, w, mode, s, blocks);
    case shimmy::cuda::kF16:
      return run<shimmy::cuda::kF16>(prods, m, w, mode, s, blocks);
    default:
      return 0.0;
  }
}
}  // namespace persist

#include "stream_step.cuh"

// --stream: the step's products in the persistent kernels of stream_step.cuh (m = 1), each
// first checked against matmul on one product with random x.
void stream_step(bool f16, std::initializer_list<const BenchWeight*> layer, const BenchWeight& head,
                 const float* xp, float* yp, size_t bytes, double copy, cudaStream_t s) {
  constexpr int kLayers = 22;
  std::vector<stream::SProd> sp;
  for (int l = 0; l < kLayers; ++l)
    for (const BenchWeight* bw : layer) sp.push_back(stream::sprod_of(bw->w[size_t(l)], xp, yp));
  sp.push_back(stream::sprod_of(head.w[0], xp, yp));
  const char* name = f16 ? "F16" : "Q8_0";
  // kind 0: stream_kernel; 1: stream5_kernel; 2: stream5_kernel with int8 x.
  auto run = [&](int kind, const std::vector<stream::SProd>& prods, int mode, int* blocks) {
    if (kind == 0)
      return f16 ? stream::run<true>(prods, mode, s, blocks)
                 : stream::run<false>(prods, mode, s, blocks);
    return f16 ? stream::run5<true>(prods, false, mode, s, blocks)
               : stream::run5<false>(prods, kind == 2, mode, s, blocks);
  };
  for (int kind = 0; kind < 3; ++kind) {
    if (f16 && kind == 2) continue;
    const auto& w0 = (*(layer.begin() + 3))->w[0];  // down: [2048, 5632]
    std::vector<float> hx(size_t(w0.cols));
    std::mt19937 rng(19);
    std::uniform_real_distribution<float> ud(-1.f, 1.f);
    for (auto& v : hx) v = ud(rng);
    DeviceBuf cx(hx.size() * 4), cy(size_t(w0.rows) * 4), cr(size_t(w0.rows) * 4);
    CHECK(cudaMemcpy(cx.p, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice));
    shimmy::cuda::matmul(w0, static_cast<const float*>(cx.p), 1, static_cast<float*>(cr.p), w0.rows,
                         nullptr, s);
    const std::vector<stream::SProd> one{
        stream::sprod_of(w0, static_cast<const float*>(cx.p), static_cast<float*>(cy.p))};
    int blocks = 0;
    run(kind, one, 1, &blocks);
    std::vector<float> a(size_t(w0.rows)), b(size_t(w0.rows));
    CHECK(cudaMemcpy(a.data(), cy.p, a.size() * 4, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(b.data(), cr.p, b.size() * 4, cudaMemcpyDeviceToHost));
    double err = 0, mag = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      err = std::max(err, double(std::fabs(a[i] - b[i])));
      mag = std::max(mag, double(std::fabs(b[i])));
    }
    std::printf("check %s [%lld, %lld], kernel %d: max |stream - matmul| %.3g (max |y| %.3g)\n",
                name, (long long)w0.rows, (long long)w0.cols, kind, err, mag);
  }
  const char* kinds[] = {"per-warp streams, 132 blocks of 32 warps, 2 chunks in flight",
                         "staged, 132 blocks of 16+2 warps, 6 stages of 24 KB",
                         "staged, int8 x, 132 blocks of 16+2 warps, 6 stages of 24 KB"};
  const char* modes[] = {"grid barriers", "no barriers (x copied after each product)",
                         "no barriers, no x reload",
                         "grid barriers before q/k/v, gate/up and the head only"};
  for (int kind = 0; kind < 3; ++kind) {
    if (f16 && kind == 2) continue;
    for (int mode = 0; mode < 4; ++mode) {
      if (kind == 0 ? mode == 3 : mode == 2) continue;
      int blocks = 0;
      const double us = run(kind, sp, mode, &blocks);
      if (us <= 0) continue;
      const double gbps = double(bytes) / (us * 1e-6) / 1e9;
      std::printf("%-7s %3d %10.1f %9.1f %8.0f %6.1f%%  %s, %s\n", name, 1, double(bytes) / 1e6, us,
                  gbps, 100.0 * gbps / copy, kinds[kind], modes[mode]);
    }
  }
}

// The products of one decode step as the plugin runs them (stacked q/k/v, o, gate/up with
// SwiGLU, down; 22 layers of their own weights; the head), back to back in one graph.
// persistent: also the same products in one persistent kernel (persist:: above).
int run_step(int argc, char** argv, bool persistent, bool streamed = false) {
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const double copy = copy_gbps(s, prop.multiProcessorCount);
  std::printf("device-to-device copy: %.0f GB/s (read + write)\n", copy);
  std::printf("%-7s %3s %10s %9s %8s %7s %12s %8s\n", "type", "m", "step MB", "step us", "GB/s",
              "% copy", "one prod us", "% copy");
  constexpr int kLayers = 22;
  for (int i = 0; i < argc; ++i) {
    const TensorType t = type_named(argv[i]);
    BenchWeight qkv, o, gu, down, head, one;
    auto layers = [&](int64_t rows, int64_t cols, BenchWeight& b) {  // a copy per layer
      make_weight(t, rows, cols,
                  shimmy::cuda::weight_device_bytes(uint32_t(t), rows, cols) * kLayers, s, b);
    };
    layers(2560, 2048, qkv);
    layers(2048, 2048, o);
    layers(11264, 2048, gu);
    layers(2048, 5632, down);
    make_weight(t, 32000, 2048, 0, s, head);
    const size_t bytes = kLayers * (qkv.bytes + o.bytes + gu.bytes + down.bytes) + head.bytes;
    const size_t rb2048 = shimmy::cuda::weight_device_bytes(uint32_t(t), 1, 2048);
    make_weight(t, int64_t(bytes / rb2048), 2048, 0, s, one);
    for (int64_t m : {1, 16}) {
      DeviceBuf x(size_t(m) * 32000 * 4), y(size_t(m) * 32000 * 4);
      CHECK(cudaMemset(x.p, 0, size_t(m) * 32000 * 4));
      auto* xp = static_cast<const float*>(x.p);
      auto* yp = static_cast<float*>(y.p);
      cudaGraphExec_t g = capture(s, kLayers, [&](int l, cudaStream_t st) {
        shimmy::cuda::matmul(qkv.w[size_t(l)], xp, m, yp, 2560, nullptr, st);
        shimmy::cuda::matmul(o.w[size_t(l)], xp, m, yp, 2048, nullptr, st);
        shimmy::cuda::matmul_swiglu(gu.w[size_t(l)], xp, m, yp, 5632, st);
        shimmy::cuda::matmul(down.w[size_t(l)], xp, m, yp, 2048, nullptr, st);
        if (l == kLayers - 1) shimmy::cuda::matmul(head.w[0], xp, m, yp, 32000, nullptr, st);
      });
      CHECK(cudaGetLastError());
      const double us = double(time_graph(g, s)) * 1e3;
      CHECK(cudaGraphExecDestroy(g));
      const double one_us = time_matmul(one, m, s);
      const double gbps = double(bytes) / (us * 1e-6) / 1e9;
      const double one_gbps = double(one.bytes) / (one_us * 1e-6) / 1e9;
      std::printf("%-7s %3lld %10.1f %9.1f %8.0f %6.1f%% %12.1f %7.1f%%\n", argv[i], (long long)m,
                  double(bytes) / 1e6, us, gbps, 100.0 * gbps / copy, one_us,
                  100.0 * one_gbps / copy);
      if (streamed && m == 1 && (t == TensorType::Q8_0 || t == TensorType::F16)) {
        stream_step(t == TensorType::F16, {&qkv, &o, &gu, &down}, head, xp, yp, bytes, copy, s);
      }
      if (persistent) {
        // The same products in one persistent kernel.
        std::vector<persist::mm::MmArgs> prods;
        for (int l = 0; l < kLayers; ++l) {
          prods.push_back(persist::args_of(qkv.w[size_t(l)], xp, m, yp, 2560, false));
          prods.push_back(persist::args_of(o.w[size_t(l)], xp, m, yp, 2048, false));
          prods.push_back(persist::args_of(gu.w[size_t(l)], xp, m, yp, 5632, true));
          prods.push_back(persist::args_of(down.w[size_t(l)], xp, m, yp, 2048, false));
        }
        prods.push_back(persist::args_of(head.w[0], xp, m, yp, 32000, false));
        const char* what[] = {"", ", no barriers", ", barriers only", ", flag barriers",
                              ", flag barriers only"};
        for (int w : {4, 8, 16}) {
          for (int mode = 0; mode < 5; ++mode) {
            int blocks = 0;
            const double pus = persist::time_persistent(t, prods, m, w, mode, s, &blocks);
            if (pus <= 0) continue;
            const double pg = double(bytes) / (pus * 1e-6) / 1e9;
            std::printf(
                "%-7s %3lld %10.1f %9.1f %8.0f %6.1f%%  persistent, %d blocks of %d warps%s\n",
                argv[i], (long long)m, double(bytes) / 1e6, pus, pg, 100.0 * pg / copy, blocks, w,
                what[mode]);
          }
        }
      }
    }
  }
  CHECK(cudaStreamDestroy(s));
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 6 && std::strcmp(argv[1], "--one") == 0) return run_one(argv + 2);
  if (argc == 2 && std::strcmp(argv[1], "--copy") == 0) {  // the memory ceiling alone
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device-to-device copy: %.0f GB/s (read + write)\n",
                copy_gbps(s, prop.multiProcessorCount));
    CHECK(cudaStreamDestroy(s));
    return 0;
  }
  if (argc >= 3 && std::strcmp(argv[1], "--step") == 0) return run_step(argc - 2, argv + 2, false);
  if (argc >= 3 && std::strcmp(argv[1], "--stream") == 0)
    return run_step(argc - 2, argv + 2, false, true);
  if (argc >= 3 && std::strcmp(argv[1], "--persistent") == 0)
    return run_step(argc - 2, argv + 2, true);
  std::vector<TensorType> types;
  for (int i = 1; i < argc; ++i)
    for (TensorType t : kAll)
      if (shimmy::gguf::type_name(uint32_t(t)) == argv[i]) types.push_back(t);
  if (types.empty()) types.assign(std::begin(kAll), std::end(kAll));

  int dev = 0;
  CHECK(cudaSetDevice(dev));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, dev));
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  const double copy = copy_gbps(s, prop.multiProcessorCount);
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20);
  std::printf("device-to-device copy: %.0f GB/s (read + write)\n\n", copy);
  const size_t rotate = size_t(4) * size_t(prop.l2CacheSize);  // bytes the decode calls cycle over
  {
    BenchWeight tiny;
    make_weight(TensorType::Q4_0, 16, 256, 0, s, tiny);
    std::printf("fixed cost of a call (Q4_0 [16, 256], m = 1, in a graph): %.2f us\n\n",
                time_matmul(tiny, 1, s));
  }

  const int64_t decode_shapes[][2] = {{5632, 2048}, {2048, 5632}, {32000, 2048}, {2048, 2048}};
  // TinyLlama-1.1B layer: q, k, v, o, gate, up, down.
  const int64_t layer[][2] = {{2048, 2048}, {256, 2048},  {256, 2048}, {2048, 2048},
                              {5632, 2048}, {5632, 2048}, {2048, 5632}};
  std::printf("decode (m = 1: weights read once; m = 16: time as a multiple of m = 1)\n");
  std::printf("%-7s %-13s %9s %9s %8s %7s %9s %6s\n", "type", "[rows, cols]", "MB", "m=1 us",
              "GB/s", "% copy", "m=16 us", "x m=1");
  std::vector<std::string> prompt_lines;
  for (TensorType t : types) {
    const std::string name = shimmy::gguf::type_name(uint32_t(t));
    for (const auto& sh : decode_shapes) {
      BenchWeight bw;
      make_weight(t, sh[0], sh[1], rotate, s, bw);
      const double t1 = time_matmul(bw, 1, s);
      const double t16 = time_matmul(bw, 16, s);
      const double gbps = double(bw.bytes) / (t1 * 1e-6) / 1e9;
      std::printf("%-7s [%5lld,%5lld] %9.2f %9.2f %8.0f %6.1f%% %9.2f %6.2f\n", name.c_str(),
                  (long long)sh[0], (long long)sh[1], double(bw.bytes) / 1e6, t1, gbps,
                  100.0 * gbps / copy, t16, t16 / t1);
    }
    // Prompt: m = 512 on each matrix of the layer (k and v counted once each).
    char line[512];
    int len = std::snprintf(line, sizeof line, "%-7s", name.c_str());
    double flops_all = 0, us_all = 0;
    for (int i = 0; i < 7; ++i) {
      BenchWeight bw;
      make_weight(t, layer[i][0], layer[i][1], 0, s, bw);
      const double us = time_matmul(bw, 512, s);
      const double flops = 2.0 * double(layer[i][0]) * double(layer[i][1]) * 512;
      flops_all += flops;
      us_all += us;
      if (i == 0 || i == 1 || i == 4 || i == 6)
        len += std::snprintf(line + len, sizeof line - size_t(len), " %7.0f %6.1f", us,
                             flops / (us * 1e-6) / 1e12);
    }
    std::snprintf(line + len, sizeof line - size_t(len), " %8.0f %6.1f", us_all,
                  flops_all / (us_all * 1e-6) / 1e12);
    prompt_lines.push_back(line);
  }
  std::printf("\nprompt, m = 512, TinyLlama-1.1B matrices (us, TFLOP/s; the layer: all 7)\n");
  std::printf("%-7s %14s %14s %14s %14s %15s\n", "type", "[2048,2048]", "[256,2048]", "[5632,2048]",
              "[2048,5632]", "layer");
  for (const auto& l : prompt_lines) std::printf("%s\n", l.c_str());
  CHECK(cudaStreamDestroy(s));
  return 0;
}
