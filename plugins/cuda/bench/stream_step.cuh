// Experiments of shimmy-cuda-mm-bench --stream: a decode step's products (m = 1, the 88 of
// TinyLlama's 22 layers and the head) in one persistent kernel, to see what a step's data
// dependencies cost when the weights never stop streaming. Two designs (figures and the
// variants tried and dropped: mm/notes/NOTES.md):
//   stream_kernel  every warp owns whole rows (dealt round-robin over the grid's warps across
//                  products) and keeps D chunks of 512 bytes in flight in registers, across
//                  row and product boundaries; a product waits at a grid barrier and reloads
//                  x into shared memory.
//   stream5_kernel one block a SM; a producer warp copies the block's rows into a ring of
//                  shared-memory stages with the TMA, product after product, held back only
//                  by free stages; consumer warps compute rows from shared memory; a sync
//                  warp does the grid barrier and has the TMA copy x.
//
// Device layout (mm/layout.h), m = 1:
//   Q8_0: a row's main array is [nsteps][128 B]; chunk c = main bytes [512c, 512c + 512),
//         lane l takes 16 bytes at 512c + 16l: step s = 4c + l/8, piece j = (l/4) & 1
//         (groups 2j, 2j + 1), quad lane t = l & 3; word w = group 2j + (w >> 1), slice
//         h = w & 1, values 16h + 4t + e. Its scales: sa word 8c + l/4 (f16 d of the two
//         groups).
//   F16:  main [nsteps][64 B]; chunk c: lane l at 512c + 16l: step s = 8c + l/4, t = l & 3,
//         elements 4h + e = values 16h + 4t + e of the step's 32.
// x lies unpadded in shared memory: the lanes of odd j (Q8_0) or odd step (F16) take the
// other 16-value slice first, so the 8 lanes of a 16-byte load phase hit distinct banks.
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
        *reinterpret_cast<float4*>(xs + i) = __ldcg(reinterpret_cast<const float4*>(P.x + i));
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

// ---- shared-memory staging: mbarriers, the TMA -------------------------------
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

// mode 0: grid barriers; 1: none (x still copied for every product); 3: grid barriers only
// before products p % 4 == 0 or 2 (a layer's q/k/v and gate/up, and the head: the two
// grid-wide dependencies a layer that a dataflow step would keep, with o waiting per head
// and down fused into gate/up).
__host__ __device__ inline bool barrier_before(int mode, int p) {
  return p > 0 && (mode == 0 || (mode == 3 && (p % 4 == 0 || p % 4 == 2)));
}

// A stage holds whole rows, at most kStage bytes.
constexpr int kStage = 24576;

__device__ __forceinline__ void mbar_arrive(uint64_t* b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(b)) : "memory");
#endif
}

__host__ __device__ inline int rows_per_stage(int64_t row_bytes) {
  return int(kStage / row_bytes);
}

template <bool kF16W>
__device__ __forceinline__ float row_from_smem(const uint8_t* row, const SProd& P, const float* xs,
                                               int lane) {
  float acc = 0.f;
#pragma unroll 4
  for (int c = 0; c < P.nchunks; ++c) {
    Chunk k;
    k.v = *reinterpret_cast<const uint4*>(row + 512 * c + 16 * lane);
    if constexpr (!kF16W) {
      k.sa = *reinterpret_cast<const uint32_t*>(row + P.sa_off + 4 * (8 * c + (lane >> 2)));
    } else {
      k.sa = 0;
    }
    acc += dot_chunk<kF16W>(k, c, xs, lane);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
  return acc;
}

// ---- stream5_kernel: weights staged in shared memory --------------------------------------
// One block a SM: C consumer warps, a producer warp, a sync warp.
//   producer  takes a product's stages (rows_per_stage rows each) from a counter of the
//             product (atomicAdd, one grab in flight ahead: a SM whose copies land sooner
//             takes more, so all SMs finish a product within about a stage of each other)
//             and copies each into a ring of NS stages (cp.async.bulk, mbarrier "full"),
//             product after product, held back only by free stages, never by the
//             activations. A stage carries its rows in a descriptor; a stage of no rows ends
//             the block's part of a product.
//   consumers take a stage's rows round-robin, compute them from shared memory and free the
//             stage (mbarrier "empty", C arrivals); after a product they arrive at named
//             barrier 1 (bar.arrive does not wait) and wait for the next x.
//   sync      waits at named barrier 1 for the consumers, arrives at the grid barrier
//             (mode 0), waits for the other blocks, and has the TMA copy the next x into
//             xbuf[p & 1] (mbarrier "xfull").
// kQ (Q8_0): the consumers quantize x to int8 in groups of 32 and use dp4a.
// Block 0 accumulates where its sync warp and its consumer warp 0 spend a product
// (g_prof5, clock64), printed after the timed launches.
__device__ long long g_prof5[8];
struct StageDesc {
  int r0, rows;
};

// Q8_0 row from shared memory against x quantized to int8 (groups of 32, kQ layout).
__device__ __forceinline__ float row_q8_dp4a(const uint8_t* row, const SProd& P, const uint32_t* xq,
                                             const float* xd, int lane) {
  const int j = (lane >> 2) & 1, t = lane & 3, l8 = lane >> 3, swz = l8 << 2;
  float acc = 0.f;
#pragma unroll 4
  for (int c = 0; c < P.nchunks; ++c) {
    const uint4 v = *reinterpret_cast<const uint4*>(row + 512 * c + 16 * lane);
    const uint32_t sa =
        *reinterpret_cast<const uint32_t*>(row + P.sa_off + 4 * (8 * c + (lane >> 2)));
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
    const int kb = 128 * c + 32 * l8 + 16 * j + t;
#pragma unroll
    for (int g = 0; g < 2; ++g) {
      int sumi = 0;
#pragma unroll
      for (int h = 0; h < 2; ++h)
        sumi = __dp4a(int(w[2 * g + h]), int(xq[(kb + 8 * g + 4 * h) ^ swz]), sumi);
      const float dx = xd[16 * c + 4 * l8 + 2 * j + g];
      acc = fmaf(mm::f16_bits_to_f32(sa >> (16 * g)) * dx, float(sumi), acc);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
  return acc;
}

template <bool kF16W, int C, int NS, bool kQ = false>
__global__ void __launch_bounds__((C + 2) * 32)
    stream5_kernel(int n, unsigned* bar, unsigned base, int mode, int xcap, unsigned* counters) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) uint8_t sm5[];
  float* xbuf = reinterpret_cast<float*>(sm5);
  uint8_t* stages = sm5 + size_t(2 * xcap) * 4;
  uint64_t* bars = reinterpret_cast<uint64_t*>(stages + NS * kStage);
  uint64_t *xfull = bars, *full = bars + 2, *empty = bars + 2 + NS;
  StageDesc* desc = reinterpret_cast<StageDesc*>(bars + 2 + 2 * NS);
  // kQ: x of the product as int8 in groups of 32 with a float scale each, [2] buffers;
  // words swizzled (word k at k ^ ((k >> 5) & 3) << 2) so a chunk's loads hit 32 banks.
  uint32_t* xq = reinterpret_cast<uint32_t*>(desc + NS);      // [2][xcap / 4]
  float* xd = reinterpret_cast<float*>(xq + 2 * (xcap / 4));  // [2][xcap / 32]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int G = gridDim.x;
  if (threadIdx.x == 0) {
    mbar_init(&xfull[0], 1);
    mbar_init(&xfull[1], 1);
    for (int i = 0; i < NS; ++i) mbar_init(&full[i], 1), mbar_init(&empty[i], C);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (warp == C) {  // the producer
    if (lane != 0) return;
    int slot = 0;
    unsigned phase = 0;
    for (int p = 0; p < n; ++p) {
      const SProd& P = c_sp[p];
      const int rps = rows_per_stage(P.row_bytes);
      unsigned cur = atomicAdd(counters + p, 1u);
      for (;;) {
        const int r0 = int(cur) * rps;
        const bool done = r0 >= P.rows;
        unsigned nxt = 0;
        if (!done) nxt = atomicAdd(counters + p, 1u);  // in flight while this stage goes
        mbar_wait(&empty[slot], phase ^ 1u);
        if (done) {
          desc[slot] = StageDesc{0, 0};
          asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(&full[slot]))
                       : "memory");
        } else {
          const int rows = min(rps, P.rows - r0);
          desc[slot] = StageDesc{r0, rows};
          const unsigned bytes = unsigned(rows * P.row_bytes);
          mbar_expect_tx(&full[slot], bytes);
          bulk_g2s(stages + slot * kStage, P.w + int64_t(r0) * P.row_bytes, bytes, &full[slot]);
        }
        if (++slot == NS) slot = 0, phase ^= 1u;
        if (done) break;
        cur = nxt;
      }
    }
    return;
  }
  if (warp == C + 1) {  // the sync warp
    unsigned target = base;
    for (int p = 0; p < n; ++p) {
      const bool rec = lane == 0 && blockIdx.x == 0;
      long long t0 = clock64();
      if (p > 0) {
        asm volatile("bar.sync 1, %0;\n" ::"r"((C + 1) * 32) : "memory");
        const long long t1 = clock64();
        const bool grid_wide = barrier_before(mode, p);
        if (grid_wide) target += unsigned(G);
        if (grid_wide && lane == 0) {
          __threadfence();
          atomicAdd(bar, 1u);
          while (persist::ld_acquire(bar) < target) {
          }
        }
        __syncwarp();
        const long long t2 = clock64();
        if (rec) g_prof5[0] += t1 - t0, g_prof5[1] += t2 - t1;
        t0 = t2;
      }
      if (lane == 0) {
        asm volatile("fence.proxy.async;\n" ::: "memory");
        const unsigned bytes = unsigned(c_sp[p].cols) * 4u;
        mbar_expect_tx(&xfull[p & 1], bytes);
        bulk_g2s(xbuf + (p & 1) * xcap, c_sp[p].x, bytes, &xfull[p & 1]);
        mbar_wait(&xfull[p & 1], unsigned(p >> 1) & 1u);
        if (rec) g_prof5[2] += clock64() - t0, g_prof5[3] += 1;
      }
      __syncwarp();
    }
    return;
  }
  int slot = 0;
  unsigned phase = 0;
  for (int p = 0; p < n; ++p) {
    const SProd& P = c_sp[p];
    const float* xs = xbuf + (p & 1) * xcap;
    const bool rec = lane == 0 && warp == 0 && blockIdx.x == 0;
    long long t0 = clock64();
    mbar_wait(&xfull[p & 1], unsigned(p >> 1) & 1u);
    long long t1 = clock64();
    if (rec) g_prof5[4] += t1 - t0, g_prof5[7] += 1;
    if constexpr (kQ) {  // quantize x (all consumer warps), then a consumer barrier
      uint32_t* q = xq + (p & 1) * (xcap / 4);
      float* d = xd + (p & 1) * (xcap / 32);
      for (int k = int(threadIdx.x); k < P.cols / 4; k += C * 32) {  // word k: values 4k..
        const float4 v = *reinterpret_cast<const float4*>(xs + 4 * k);
        float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
        amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, 1));
        amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, 2));
        amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, 4));
        const float inv = amax > 0.f ? 127.f / amax : 0.f;
        const uint32_t b0 = uint32_t(__float2int_rn(v.x * inv)) & 0xFF;
        const uint32_t b1 = uint32_t(__float2int_rn(v.y * inv)) & 0xFF;
        const uint32_t b2 = uint32_t(__float2int_rn(v.z * inv)) & 0xFF;
        const uint32_t b3 = uint32_t(__float2int_rn(v.w * inv)) & 0xFF;
        q[k ^ (((k >> 5) & 3) << 2)] = b0 | b1 << 8 | b2 << 16 | b3 << 24;
        if ((k & 7) == 0) d[k >> 3] = amax / 127.f;
      }
      asm volatile("bar.sync 2, %0;\n" ::"r"(C * 32) : "memory");
    }
    int seen = 0;  // rows of this product the block has had: row `seen + i` -> warp % C
    for (;;) {
      t0 = clock64();
      mbar_wait(&full[slot], phase);
      t1 = clock64();
      if (rec) g_prof5[5] += t1 - t0;
      const StageDesc d = desc[slot];
      const uint8_t* st = stages + slot * kStage;
      for (int i = ((warp - seen) % C + C) % C; i < d.rows; i += C) {
        float acc;
        if constexpr (kQ) {
          acc = row_q8_dp4a(st + int64_t(i) * P.row_bytes, P, xq + (p & 1) * (xcap / 4),
                            xd + (p & 1) * (xcap / 32), lane);
        } else {
          acc = row_from_smem<kF16W>(st + int64_t(i) * P.row_bytes, P, xs, lane);
        }
        if (lane == 0) P.y[d.r0 + i] = acc;
      }
      seen += d.rows;
      if (rec) g_prof5[6] += clock64() - t1;
      __syncwarp();
      if (lane == 0) mbar_arrive(&empty[slot]);
      if (++slot == NS) slot = 0, phase ^= 1u;
      if (d.rows == 0) break;
    }
    if (p + 1 < n) asm volatile("bar.arrive 1, %0;\n" ::"r"((C + 1) * 32) : "memory");
  }
#endif
}

template <bool kF16W, int C, int NS, bool kQ = false>
double time_stream5(const std::vector<SProd>& prods, int mode, cudaStream_t s, int* blocks_out) {
  CHECK(cudaMemcpyToSymbol(c_sp, prods.data(), prods.size() * sizeof(SProd)));
  auto* k = stream5_kernel<kF16W, C, NS, kQ>;
  int xcap = 0;
  for (const auto& p : prods) {
    xcap = std::max(xcap, p.cols);
    if (rows_per_stage(p.row_bytes) < 1) return 0.0;
  }
  const size_t smem = size_t(2 * xcap) * 4 + size_t(NS) * kStage + size_t(2 + 2 * NS) * 8 +
                      size_t(NS) * 8 + (kQ ? size_t(2 * xcap) + size_t(2 * xcap / 32) * 4 : 0);
  if (smem > 227 * 1024) return 0.0;
  CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int sms = 0;
  const int per_sm = resident_per_sm(reinterpret_cast<const void*>(k), (C + 2) * 32, smem, &sms);
  if (per_sm == 0) return 0.0;
  const int grid = sms;
  *blocks_out = grid;
  unsigned *bar = nullptr, *counters = nullptr;
  CHECK(cudaMalloc(&bar, 4096));
  CHECK(cudaMemset(bar, 0, 4096));
  CHECK(cudaMalloc(&counters, prods.size() * 4));
  int n = int(prods.size());
  unsigned base = 0;
  void* args[] = {&n, &bar, &base, &mode, &xcap, &counters};
  const double us = time_cooperative(
      reinterpret_cast<const void*>(k), grid, (C + 2) * 32, smem, args, s,
      [&] { CHECK(cudaMemsetAsync(counters, 0, prods.size() * 4, s)); },
      [&] {
        for (int p = 0; p < n; ++p) base += barrier_before(mode, p) ? unsigned(grid) : 0u;
      });
  {
    long long pr[8];
    CHECK(cudaMemcpyFromSymbol(pr, g_prof5, sizeof pr));
    const long long zero[8] = {};
    CHECK(cudaMemcpyToSymbol(g_prof5, zero, sizeof zero));
    int khz = 0;
    int dev = 0;
    CHECK(cudaGetDevice(&dev));
    CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
    const double a = pr[3] ? 1e3 / khz / double(pr[3]) : 0,
                 c = pr[7] ? 1e3 / khz / double(pr[7]) : 0;
    std::printf(
        "    block 0, us a product: sync warp: own warps %.2f, grid barrier %.2f, x %.2f;"
        " warp 0: x wait %.2f, stage waits %.2f, rows %.2f\n",
        pr[0] * a, pr[1] * a, pr[2] * a, pr[4] * c, pr[5] * c, pr[6] * c);
  }
  CHECK(cudaFree(bar));
  CHECK(cudaFree(counters));
  return us;
}

// stream5_kernel with 16 consumer warps and 6 stages (the best of 8-24 warps, 4-6 stages);
// int8_x: Q8_0 rows against x quantized to int8.
template <bool kF16W>
double run5(const std::vector<SProd>& prods, bool int8_x, int mode, cudaStream_t s, int* blocks) {
  if constexpr (!kF16W) {
    if (int8_x) return time_stream5<false, 16, 6, true>(prods, mode, s, blocks);
  }
  return time_stream5<kF16W, 16, 6>(prods, mode, s, blocks);
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
  const size_t smem = size_t(maxc) * 4;
  CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int n = int(prods.size());
  return time_barrier_kernel(reinterpret_cast<const void*>(k), W * 32, smem, n, mode,
                             mode == 0 ? n : 0, s, blocks_out);
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

// stream_kernel in blocks of 32 warps, 2 chunks in flight a warp (the best of 8-32 warps,
// depth 2-12).
template <bool kF16W>
double run(const std::vector<SProd>& prods, int mode, cudaStream_t s, int* blocks) {
  return time_stream<kF16W, 32, 2>(prods, mode, s, blocks);
}

}  // namespace stream
