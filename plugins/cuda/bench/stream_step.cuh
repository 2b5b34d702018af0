// An experiment of shimmy-cuda-mm-bench (--stream): a decode step's products (m = 1) as one
// stream of weight chunks per warp, in one persistent kernel. Every warp owns whole rows
// (rows gw, gw + GW, ... of each product; GW = warps of the grid) and keeps D chunks of
// 512 bytes in flight in registers, across row and product boundaries: the loads of the
// next product's first chunks are in flight while the block waits at the grid barrier
// that stands for the data dependency. Question it answers: how fast can the products of
// a step go when a dependency wait overlaps a weight transfer (the graph of product
// kernels: ~720 us for Q8_0, 54 % of copy).
//
// Device layout (mm/layout.h), m = 1:
//   Q8_0: a row's main array is [nsteps][128 B]; chunk c = main bytes [512c, 512c + 512),
//         lane l takes 16 bytes at 512c + 16l: step s = 4c + l/8, piece j = (l/4) & 1
//         (groups 2j, 2j + 1), quad lane t = l & 3; word w = group 2j + (w >> 1), slice
//         h = w & 1, values 16h + 4t + e. Its scales: sa word 8c + l/4 (f16 d of the two
//         groups).
//   F16:  main [nsteps][64 B]; chunk c: lane l at 512c + 16l: step s = 8c + l/4, t = l & 3,
//         elements 4h + e = values 16h + 4t + e of the step's 32.
// x lives in shared memory, padded by 16 floats every 2^PS values so that the 8 lanes of a
// 16-byte load phase hit distinct banks.
#pragma once

namespace stream {
namespace mm = shimmy::cuda::mm;

struct SProd {
  const uint8_t* w;
  int64_t row_bytes;
  int rows, cols, nchunks, sa_off;
  int64_t before;  // rows of the products before this one: rows are dealt round-robin to
                   // the warps across products, so every warp gets its share of the step
  const float* x;
  float* y;
};
constexpr int kMaxProducts = 96;
__constant__ SProd c_sp[kMaxProducts];

template <bool kF16W>
struct Fmt {
  static constexpr int kPS = kF16W ? 5 : 6;
};

__host__ __device__ __forceinline__ int xpad(int k, int ps) {
  return k + 16 * (k >> ps);
}

struct Chunk {
  uint4 v;
  uint32_t sa;
};

// Where the warp's loads stand: product p, row r, chunk c (p == n: nothing left).
struct Cursor {
  int p, r, c;
};

// First row of product p for warp gw: rows r with (before + r) % GW == gw.
__device__ __forceinline__ int first_row_of(int p, int gw, int GW) {
  return int((int64_t(gw) - c_sp[p].before % GW + GW) % GW);
}

__device__ __forceinline__ void first_row(Cursor& q, int n, int gw, int GW) {
  while (q.p < n && first_row_of(q.p, gw, GW) >= c_sp[q.p].rows) ++q.p;
  q.r = q.p < n ? first_row_of(q.p, gw, GW) : 0;
  q.c = 0;
}

__device__ __forceinline__ void advance(Cursor& q, int n, int gw, int GW) {
  if (++q.c < c_sp[q.p].nchunks) return;
  q.c = 0;
  q.r += GW;
  if (q.r < c_sp[q.p].rows) return;
  ++q.p;
  first_row(q, n, gw, GW);
}

template <bool kF16W>
__device__ __forceinline__ Chunk load_chunk(const Cursor& q, int n, int lane) {
  Chunk k{};
  if (q.p >= n) return k;
  const SProd& P = c_sp[q.p];
  const uint8_t* row = P.w + int64_t(q.r) * P.row_bytes;
  k.v = mm::ld_stream<uint4>(row + 512 * q.c + 16 * lane);
  if constexpr (!kF16W)
    k.sa = mm::ld_stream<uint32_t>(row + P.sa_off + 4 * (8 * q.c + (lane >> 2)));
  return k;
}

template <bool kF16W>
__device__ __forceinline__ float dot_chunk(const Chunk& k, int c, const float* xs, int lane) {
  float acc = 0.f;
  const uint32_t w[4] = {k.v.x, k.v.y, k.v.z, k.v.w};
  if constexpr (kF16W) {
    const int s = 8 * c + (lane >> 2), t = lane & 3;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int kx = 32 * s + 16 * h + 4 * t;
      const float4 x4 = *reinterpret_cast<const float4*>(xs + xpad(kx, Fmt<true>::kPS));
      const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&w[2 * h]));
      const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&w[2 * h + 1]));
      acc = fmaf(a.x, x4.x, acc);
      acc = fmaf(a.y, x4.y, acc);
      acc = fmaf(b.x, x4.z, acc);
      acc = fmaf(b.y, x4.w, acc);
    }
  } else {
    const int s = 4 * c + (lane >> 3), j = (lane >> 2) & 1, t = lane & 3;
#pragma unroll
    for (int g = 0; g < 2; ++g) {
      float part = 0.f;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int kx = 128 * s + 64 * j + 32 * g + 16 * h + 4 * t;
        const float4 x4 = *reinterpret_cast<const float4*>(xs + xpad(kx, Fmt<false>::kPS));
        const uint32_t q = w[2 * g + h];
        part = fmaf(mm::sbyte_f32(q, 0), x4.x, part);
        part = fmaf(mm::sbyte_f32(q, 1), x4.y, part);
        part = fmaf(mm::sbyte_f32(q, 2), x4.z, part);
        part = fmaf(mm::sbyte_f32(q, 3), x4.w, part);
      }
      acc = fmaf(mm::f16_bits_to_f32(k.sa >> (16 * g)), part, acc);
    }
  }
  return acc;
}

// mode 0: grid barrier + x reload before every product; 1: x reload, no barrier; 2: neither.
template <bool kF16W, int W, int D>
__global__ void __launch_bounds__(W * 32)
    stream_kernel(int n, unsigned* bar, unsigned base, int mode) {
  extern __shared__ float xs[];
  // Consecutive warps of the grid sit on different SMs.
  const int lane = threadIdx.x & 31, gw = (threadIdx.x >> 5) * gridDim.x + blockIdx.x;
  const int GW = gridDim.x * W;
  Cursor lq{0, 0, 0};
  first_row(lq, n, gw, GW);
  Chunk ring[D];
#pragma unroll
  for (int i = 0; i < D; ++i) {
    ring[i] = load_chunk<kF16W>(lq, n, lane);
    if (lq.p < n) advance(lq, n, gw, GW);
  }
  unsigned target = base;
  for (int p = 0; p < n; ++p) {
    const SProd& P = c_sp[p];
    target += gridDim.x;
    if (mode == 0) persist::grid_barrier(bar, target);
    if (mode <= 1) {
      for (int i = 4 * int(threadIdx.x); i < P.cols; i += 4 * W * 32)
        *reinterpret_cast<float4*>(xs + xpad(i, Fmt<kF16W>::kPS)) =
            __ldcg(reinterpret_cast<const float4*>(P.x + i));
      __syncthreads();
    }
    for (int r = first_row_of(p, gw, GW); r < P.rows; r += GW) {
      float acc = 0.f;
      for (int c = 0; c < P.nchunks; ++c) {
        acc += dot_chunk<kF16W>(ring[0], c, xs, lane);
#pragma unroll
        for (int i = 0; i + 1 < D; ++i) ring[i] = ring[i + 1];
        ring[D - 1] = load_chunk<kF16W>(lq, n, lane);
        if (lq.p < n) advance(lq, n, gw, GW);
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
      if (lane == 0) P.y[r] = acc;
    }
    if (mode <= 1) __syncthreads();  // xs is rewritten for the next product
  }
}

// ---- v2: x by the TMA, a sync warp, x unpadded ----------------------------------------
// W compute warps and one sync warp a block. The sync warp waits (named barrier 1) until
// the compute warps are done with product p - 1, arrives at the grid barrier, waits for the
// other blocks, and has the TMA copy x of product p into xs[p & 1] (cp.async.bulk, one
// mbarrier a buffer). The compute warps only arrive at the named barrier (bar.arrive does
// not wait) and wait for the mbarrier of their next x, so their weight loads keep flowing
// and no synchronizing load queues behind them. x is unpadded: in each 16-byte x load the
// lanes of odd (j, resp. step) take the other 16-value slice first, so the 8 lanes of a
// load phase hit distinct banks.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint64_t* b, unsigned count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(b)), "r"(count));
#endif
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* b, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(b)),
               "r"(bytes)
               : "memory");
#endif
}
__device__ __forceinline__ void mbar_wait(uint64_t* b, unsigned parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n"
      ".reg .pred P1;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@!P1 bra WAIT_%=;\n"
      "}\n" ::"r"(smem_u32(b)),
      "r"(parity)
      : "memory");
#endif
}
__device__ __forceinline__ void bulk_g2s(void* dst, const void* src, unsigned bytes, uint64_t* b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::
          "r"(smem_u32(dst)),
      "l"(src), "r"(bytes), "r"(smem_u32(b))
      : "memory");
#endif
}

template <bool kF16W>
__device__ __forceinline__ float dot_chunk2(const Chunk& k, int c, const float* xs, int lane) {
  float acc = 0.f;
  const uint32_t w[4] = {k.v.x, k.v.y, k.v.z, k.v.w};
  if constexpr (kF16W) {
    const int s = 8 * c + (lane >> 2), t = lane & 3, sw = (lane >> 2) & 1;
#pragma unroll
    for (int hi = 0; hi < 2; ++hi) {
      const int h = hi ^ sw;
      const float4 x4 = *reinterpret_cast<const float4*>(xs + 32 * s + 16 * h + 4 * t);
      const uint32_t w0 = h ? w[2] : w[0], w1 = h ? w[3] : w[1];
      const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&w0));
      const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&w1));
      acc = fmaf(a.x, x4.x, acc);
      acc = fmaf(a.y, x4.y, acc);
      acc = fmaf(b.x, x4.z, acc);
      acc = fmaf(b.y, x4.w, acc);
    }
  } else {
    const int s = 4 * c + (lane >> 3), j = (lane >> 2) & 1, t = lane & 3;
#pragma unroll
    for (int g = 0; g < 2; ++g) {
      float part = 0.f;
#pragma unroll
      for (int hi = 0; hi < 2; ++hi) {
        const int h = hi ^ j;
        const float4 x4 =
            *reinterpret_cast<const float4*>(xs + 128 * s + 64 * j + 32 * g + 16 * h + 4 * t);
        const uint32_t q = h ? w[2 * g + 1] : w[2 * g];
        part = fmaf(mm::sbyte_f32(q, 0), x4.x, part);
        part = fmaf(mm::sbyte_f32(q, 1), x4.y, part);
        part = fmaf(mm::sbyte_f32(q, 2), x4.z, part);
        part = fmaf(mm::sbyte_f32(q, 3), x4.w, part);
      }
      acc = fmaf(mm::f16_bits_to_f32(k.sa >> (16 * g)), part, acc);
    }
  }
  return acc;
}

// mode 0: grid barriers; 1: none (x still copied for every product).
template <bool kF16W, int W, int D>
__global__ void __launch_bounds__((W + 1) * 32)
    stream2_kernel(int n, unsigned* bar, unsigned base, int mode, int xcap) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) float xs2[];  // [2][xcap] floats, then 2 mbarriers
  uint64_t* full = reinterpret_cast<uint64_t*>(xs2 + 2 * xcap);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (threadIdx.x == W * 32) {
    mbar_init(&full[0], 1);
    mbar_init(&full[1], 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (warp == W) {  // the sync warp (all lanes take the named barrier; lane 0 the rest)
    unsigned target = base;
    for (int p = 0; p < n; ++p) {
      if (p > 0) {
        asm volatile("bar.sync 1, %0;\n" ::"r"((W + 1) * 32) : "memory");
        target += gridDim.x;
        if (mode == 0 && lane == 0) {
          __threadfence();
          atomicAdd(bar, 1u);
          while (persist::ld_acquire(bar) < target) {
          }
        }
        __syncwarp();
      }
      if (lane == 0) {
        asm volatile("fence.proxy.async;\n" ::: "memory");
        const unsigned bytes = unsigned(c_sp[p].cols) * 4u;
        mbar_expect_tx(&full[p & 1], bytes);
        bulk_g2s(xs2 + (p & 1) * xcap, c_sp[p].x, bytes, &full[p & 1]);
      }
      __syncwarp();  // bar.sync is warp-aligned: lane 0 must be back with the rest
    }
    return;
  }
  const int gw = warp * gridDim.x + blockIdx.x, GW = gridDim.x * W;
  Cursor lq{0, 0, 0};
  first_row(lq, n, gw, GW);
  Chunk ring[D];
#pragma unroll
  for (int i = 0; i < D; ++i) {
    ring[i] = load_chunk<kF16W>(lq, n, lane);
    if (lq.p < n) advance(lq, n, gw, GW);
  }
  for (int p = 0; p < n; ++p) {
    const SProd& P = c_sp[p];
    const float* xs = xs2 + (p & 1) * xcap;
    mbar_wait(&full[p & 1], unsigned(p >> 1) & 1u);
    for (int r = first_row_of(p, gw, GW); r < P.rows; r += GW) {
      float acc = 0.f;
      for (int c = 0; c < P.nchunks; ++c) {
        acc += dot_chunk2<kF16W>(ring[0], c, xs, lane);
#pragma unroll
        for (int i = 0; i + 1 < D; ++i) ring[i] = ring[i + 1];
        ring[D - 1] = load_chunk<kF16W>(lq, n, lane);
        if (lq.p < n) advance(lq, n, gw, GW);
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
      if (lane == 0) P.y[r] = acc;
    }
    if (p + 1 < n) asm volatile("bar.arrive 1, %0;\n" ::"r"((W + 1) * 32) : "memory");
  }
#endif
}

__device__ unsigned long long g_prof[4];
__device__ __forceinline__ uint64_t gtimer() {
  uint64_t t;
  asm volatile("mov.u64 %0, %globaltimer;\n" : "=l"(t));
  return t;
}

// ---- v3: v2 with the ring in static registers -------------------------------------------
// Moving a register that a load has not filled yet waits for the load, so a ring that
// shifts (v1, v2) keeps about one chunk in flight whatever its depth. Here ring slot k
// always takes the k-th chunk of a unit of D chunks, and the compute loop is unrolled by
// D, so slots are named statically and never moved. A product of C = rows * nchunks
// chunks (row-major) is cut into U = ceil(C / D) units; warp gw takes units
// [U gw / GW, U (gw + 1) / GW), so the warps of a product finish within a unit of each
// other. A row cut between warps is summed with red.add (this bench only times; the
// engine would sum the pieces in a fixed order).
struct UCursor {
  int p;
  int64_t u, uhi;  // next unit, end of the warp's units
  int k;           // slot in the unit
};
__device__ __forceinline__ void units_of(int p, int gw, int GW, int D, int64_t& lo, int64_t& hi) {
  const int64_t C = int64_t(c_sp[p].rows) * c_sp[p].nchunks, U = (C + D - 1) / D;
  lo = U * gw / GW;
  hi = U * (gw + 1) / GW;
}
template <int D>
__device__ __forceinline__ void urange(UCursor& q, int n, int gw, int GW) {
  for (; q.p < n; ++q.p) {
    units_of(q.p, gw, GW, D, q.u, q.uhi);
    if (q.u < q.uhi) return;
  }
}
template <int D>
__device__ __forceinline__ void uadvance(UCursor& q, int n, int gw, int GW) {
  if (++q.k < D) return;
  q.k = 0;
  if (++q.u < q.uhi) return;
  ++q.p;
  urange<D>(q, n, gw, GW);
}
template <bool kF16W, int D>
__device__ __forceinline__ Chunk uload(const UCursor& q, int n, int lane) {
  Chunk k{};
  if (q.p >= n) return k;
  const SProd& P = c_sp[q.p];
  const int64_t i = q.u * D + q.k;
  if (i >= int64_t(P.rows) * P.nchunks) return k;
  const int64_t r = i / P.nchunks, c = i - r * P.nchunks;
  const uint8_t* row = P.w + r * P.row_bytes;
  k.v = mm::ld_stream<uint4>(row + 512 * c + 16 * lane);
  if constexpr (!kF16W) k.sa = mm::ld_stream<uint32_t>(row + P.sa_off + 4 * (8 * c + (lane >> 2)));
  return k;
}

template <bool kF16W, int W, int D>
__global__ void __launch_bounds__((W + 1) * 32)
    stream3_kernel(int n, unsigned* bar, unsigned base, int mode, int xcap) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) float xs3[];
  uint64_t* full = reinterpret_cast<uint64_t*>(xs3 + 2 * xcap);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (threadIdx.x == W * 32) {
    mbar_init(&full[0], 1);
    mbar_init(&full[1], 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (warp == W) {
    unsigned target = base;
    uint64_t t_prev = 0;
    for (int p = 0; p < n; ++p) {
      if (p > 0) {
        asm volatile("bar.sync 1, %0;\n" ::"r"((W + 1) * 32) : "memory");
        const uint64_t t0 = gtimer();
        target += gridDim.x;
        if (mode == 0 && lane == 0) {
          __threadfence();
          atomicAdd(bar, 1u);
          while (persist::ld_acquire(bar) < target) {
          }
        }
        __syncwarp();
        const uint64_t t1 = gtimer();
        if (lane == 0 && blockIdx.x == 0) {
          g_prof[0] += t0 - t_prev;  // x ready -> the block's warps done with product p - 1
          g_prof[1] += t1 - t0;      // the grid barrier
        }
      }
      if (lane == 0) {
        const uint64_t t2 = gtimer();
        asm volatile("fence.proxy.async;\n" ::: "memory");
        const unsigned bytes = unsigned(c_sp[p].cols) * 4u;
        mbar_expect_tx(&full[p & 1], bytes);
        bulk_g2s(xs3 + (p & 1) * xcap, c_sp[p].x, bytes, &full[p & 1]);
        mbar_wait(&full[p & 1], unsigned(p >> 1) & 1u);
        t_prev = gtimer();
        if (blockIdx.x == 0) {
          g_prof[2] += t_prev - t2;  // x by the TMA
          g_prof[3] += 1;
        }
      }
      __syncwarp();  // bar.sync is warp-aligned: lane 0 must be back with the rest
    }
    return;
  }
  const int gw = warp * gridDim.x + blockIdx.x, GW = gridDim.x * W;
  UCursor lq{0, 0, 0, 0};
  urange<D>(lq, n, gw, GW);
  Chunk ring[D];
#pragma unroll
  for (int i = 0; i < D; ++i) {
    ring[i] = uload<kF16W, D>(lq, n, lane);
    if (lq.p < n) uadvance<D>(lq, n, gw, GW);
  }
  for (int p = 0; p < n; ++p) {
    const SProd& P = c_sp[p];
    const float* xs = xs3 + (p & 1) * xcap;
    mbar_wait(&full[p & 1], unsigned(p >> 1) & 1u);
    const int64_t C = int64_t(P.rows) * P.nchunks;
    int64_t ulo, uhi;
    units_of(p, gw, GW, D, ulo, uhi);
    int64_t r = ulo * D / P.nchunks;
    int c = int(ulo * D - r * P.nchunks);
    float acc = 0.f;
    for (int64_t u = ulo; u < uhi; ++u) {
#pragma unroll
      for (int k = 0; k < D; ++k) {
        const int64_t i = u * D + k;
        if (i < C) acc += dot_chunk2<kF16W>(ring[k], c, xs, lane);
        ring[k] = uload<kF16W, D>(lq, n, lane);
        if (lq.p < n) uadvance<D>(lq, n, gw, GW);
        if (i < C && (++c == P.nchunks || (k == D - 1 && u + 1 == uhi) || i + 1 == C)) {
#pragma unroll
          for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
          if (lane == 0) atomicAdd(P.y + r, acc);
          acc = 0.f;
          if (c == P.nchunks) c = 0, ++r;
        }
      }
    }
    if (p + 1 < n) asm volatile("bar.arrive 1, %0;\n" ::"r"((W + 1) * 32) : "memory");
  }
#endif
}

template <bool kF16W, int W, int D, bool kSplit = false>
double time_stream2(const std::vector<SProd>& prods, int mode, cudaStream_t s, int* blocks_out) {
  std::vector<SProd> sp = prods;
  int64_t before = 0;
  for (auto& p : sp) p.before = before, before += p.rows;
  CHECK(cudaMemcpyToSymbol(c_sp, sp.data(), sp.size() * sizeof(SProd)));
  auto* k = kSplit ? stream3_kernel<kF16W, W, D> : stream2_kernel<kF16W, W, D>;
  int xcap = 0;
  for (const auto& p : prods) xcap = std::max(xcap, p.cols);
  const size_t smem = size_t(2 * xcap) * 4 + 16;
  CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int per_sm = 0, dev = 0, sms = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, (W + 1) * 32, smem));
  if (per_sm == 0) return 0.0;
  const int grid = sms;  // one block a SM: the sync warp serves the SM
  *blocks_out = grid;
  unsigned* bar = nullptr;
  CHECK(cudaMalloc(&bar, 256));
  CHECK(cudaMemset(bar, 0, 256));
  int n = int(prods.size());
  unsigned base = 0;
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int r = 0; r < 8; ++r) {
    void* args[] = {&n, &bar, &base, &mode, &xcap};
    CHECK(cudaEventRecord(e0, s));
    CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(k), dim3(unsigned(grid)),
                                      dim3((W + 1) * 32), args, smem, s));
    CHECK(cudaEventRecord(e1, s));
    CHECK(cudaEventSynchronize(e1));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, e0, e1));
    if (r > 0) ms.push_back(t);
    if (mode == 0) base += unsigned(n - 1) * unsigned(grid);
  }
  CHECK(cudaFree(bar));
  CHECK(cudaEventDestroy(e0));
  CHECK(cudaEventDestroy(e1));
  if (kSplit) {
    unsigned long long pr[4];
    CHECK(cudaMemcpyFromSymbol(pr, g_prof, sizeof pr));
    const unsigned long long zero[4] = {0, 0, 0, 0};
    CHECK(cudaMemcpyToSymbol(g_prof, zero, sizeof zero));
    const double k = pr[3] ? 1e-3 / double(pr[3]) : 0;  // ns -> us a product
    std::printf("    block 0, us a product: compute %.2f, grid barrier %.2f, x by TMA %.2f\n",
                double(pr[0]) * k, double(pr[1]) * k, double(pr[2]) * k);
  }
  std::sort(ms.begin(), ms.end());
  return double(ms[ms.size() / 2]) * 1e3;
}

template <bool kF16W>
double run2(const std::vector<SProd>& prods, int w, int d, int mode, cudaStream_t s, int* blocks) {
  if (w == -31 && d == 2) return time_stream2<kF16W, 31, 2, true>(prods, mode, s, blocks);
  if (w == -31 && d == 4) return time_stream2<kF16W, 31, 4, true>(prods, mode, s, blocks);
  if (w == -31 && d == 6) return time_stream2<kF16W, 31, 6, true>(prods, mode, s, blocks);
  if (w == -31 && d == 8) return time_stream2<kF16W, 31, 8, true>(prods, mode, s, blocks);
  if (w == -15 && d == 8) return time_stream2<kF16W, 15, 8, true>(prods, mode, s, blocks);
  if (w == -15 && d == 12) return time_stream2<kF16W, 15, 12, true>(prods, mode, s, blocks);
  if (w == 16 && d == 2) return time_stream2<kF16W, 16, 2>(prods, mode, s, blocks);
  if (w == 16 && d == 4) return time_stream2<kF16W, 16, 4>(prods, mode, s, blocks);
  if (w == 31 && d == 2) return time_stream2<kF16W, 31, 2>(prods, mode, s, blocks);
  return time_stream2<kF16W, 31, 4>(prods, mode, s, blocks);
}

template <bool kF16W, int W, int D>
double time_stream(const std::vector<SProd>& prods, int mode, cudaStream_t s, int* blocks_out) {
  std::vector<SProd> sp = prods;
  int64_t before = 0;
  for (auto& p : sp) p.before = before, before += p.rows;
  CHECK(cudaMemcpyToSymbol(c_sp, sp.data(), sp.size() * sizeof(SProd)));
  auto* k = stream_kernel<kF16W, W, D>;
  int maxc = 0;
  for (const auto& p : prods) maxc = std::max(maxc, p.cols);
  const size_t smem = size_t(xpad(maxc, Fmt<kF16W>::kPS)) * 4;
  CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int per_sm = 0, dev = 0, sms = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, W * 32, smem));
  if (per_sm == 0) return 0.0;
  const int grid = sms * per_sm;
  *blocks_out = grid;
  unsigned* bar = nullptr;
  CHECK(cudaMalloc(&bar, 256));
  CHECK(cudaMemset(bar, 0, 256));
  int n = int(prods.size());
  unsigned base = 0;
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int r = 0; r < 8; ++r) {
    void* args[] = {&n, &bar, &base, &mode};
    CHECK(cudaEventRecord(e0, s));
    CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(k), dim3(unsigned(grid)),
                                      dim3(W * 32), args, smem, s));
    CHECK(cudaEventRecord(e1, s));
    CHECK(cudaEventSynchronize(e1));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, e0, e1));
    if (r > 0) ms.push_back(t);
    if (mode == 0) base += unsigned(n) * unsigned(grid);
  }
  CHECK(cudaFree(bar));
  CHECK(cudaEventDestroy(e0));
  CHECK(cudaEventDestroy(e1));
  std::sort(ms.begin(), ms.end());
  return double(ms[ms.size() / 2]) * 1e3;
}

inline SProd sprod_of(const shimmy::cuda::DeviceWeight& w, const float* x, float* y) {
  const mm::MmArgs a = mm::args_for(w, x, 1, y, w.rows);
  SProd p;
  p.w = a.w;
  p.row_bytes = a.row_bytes;
  p.rows = int(a.rows);
  p.cols = int(a.cols);
  p.nchunks = int(w.type == shimmy::cuda::kF16 ? 2 * w.cols / 512 : w.cols / 512);
  p.sa_off = int(a.layout.sa_off);
  p.x = x;
  p.y = y;
  return p;
}

template <bool kF16W>
double run(const std::vector<SProd>& prods, int w, int d, int mode, cudaStream_t s, int* blocks) {
  if (w == 16 && d == 2) return time_stream<kF16W, 16, 2>(prods, mode, s, blocks);
  if (w == 16 && d == 4) return time_stream<kF16W, 16, 4>(prods, mode, s, blocks);
  if (w == 32 && d == 2) return time_stream<kF16W, 32, 2>(prods, mode, s, blocks);
  if (w == 32 && d == 4) return time_stream<kF16W, 32, 4>(prods, mode, s, blocks);
  if (w == 32 && d == 6) return time_stream<kF16W, 32, 6>(prods, mode, s, blocks);
  if (w == 16 && d == 8) return time_stream<kF16W, 16, 8>(prods, mode, s, blocks);
  if (w == 16 && d == 12) return time_stream<kF16W, 16, 12>(prods, mode, s, blocks);
  return time_stream<kF16W, 32, 8>(prods, mode, s, blocks);
}
}  // namespace stream
