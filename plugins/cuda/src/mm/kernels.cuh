// The two weight-product kernels, templated on the weight type (decode.cuh decodes it).
// Include only from types_*.cu: each instantiates a few types.
//
// Decode, m <= 16 (mmv_kernel): a block of 1..16 warps (32 for F16/BF16) owns 16 weight
// rows (as many warps as keep the whole grid resident: Launcher::decode_warps); the warps
// take interleaved steps of the row, each loading its next step while computing the current
// one, and add up their partial sums through shared memory at the end. A warp reads each
// weight once, with 16- or 8-byte loads straight into mma A fragments of small integers
// (exact), and x from global memory (L1/L2) as the B fragment, one column per x row (NT =
// 1: m <= 8, 2: m <= 16). x is split into two bf16 parts (hi + residual: 16 significant
// bits; f16 parts for F16 weights, 22 bits), each multiplied by the exact weight values, so
// the sum matches float32 arithmetic to a few ulps. Scales and mins are applied per 16 or
// 32 values in float32. For m = 1 a warp splits each x slice once and shuffles it to the
// lanes that need it. On sm_90 the launch is a programmatic dependent launch (see
// pdl_wait).
//
// Prompt, m > 16 (mmp_kernel): a block computes a 128 (weight rows) x 64 (x rows) tile.
// Each k chunk (128 values; 64 for F16/BF16, 32 for F32) of the raw weight rows and of x
// (pre-rounded to bf16, f16 for F16 weights) is staged in shared memory by cp.async, two
// chunks in flight; grids too small for the device split k (sum_splits adds the parts).
// 8 warps = 4 (32 weight rows, 2 A tiles) x 2 (32 x rows); each warp decodes its A
// fragments from shared memory to real bf16 values (scale folded in) and runs mma.sync
// m16n8k16 with float32 accumulators.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "mm/decode.cuh"
#include "mm/ops.h"

namespace shimmy::cuda::mm {

// ---- PTX wrappers ---------------------------------------------------------------------
template <bool kF16>
__device__ __forceinline__ void mma16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
  if constexpr (kF16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}
template <int N>
__device__ __forceinline__ void cp_async(void* dst, const void* src) {
  if constexpr (N == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "n"(N));
  }
}
// 16 bytes, or 16 zero bytes when !ok (src is then not read).
__device__ __forceinline__ void cp_async16_or_zero(void* dst, const void* src, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(ok ? 16 : 0));
}
// Programmatic dependent launch (sm_90+; no-ops before): weights do not depend on the
// previous kernel in the stream, x and y do. A decode kernel lets its successor launch once
// all its blocks are past their main loop, and waits for its predecessor only after its
// first weight loads are out.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n");
#endif
}

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// x pairs (v.x, v.y) and (v.z, v.w) -> b[0] = 16-bit roundings, b[1] = 16-bit residuals.
template <bool kF16>
__device__ __forceinline__ void split_x(const float4& v, uint32_t (&b)[2][2]) {
  const float in[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const float lo = in[2 * k], hi = in[2 * k + 1];
    if constexpr (kF16) {
      const __half2 p = __floats2half2_rn(lo, hi);
      b[0][k] = f16x2_bits(p);
      b[1][k] = f16x2_bits(__floats2half2_rn(lo - __low2float(p), hi - __high2float(p)));
    } else {
      b[0][k] = pack_bf16(lo, hi);
      b[1][k] = pack_bf16(lo - bf16_lo(b[0][k]), hi - bf16_hi(b[0][k]));
    }
  }
}

template <class D>
__device__ __forceinline__ StepPtrs global_step(const uint8_t* row, const RowLayout& l, int64_t s) {
  constexpr Format F = D::F;
  const int64_t rec = F.super ? s >> 1 : s;
  return StepPtrs{row + l.main_off + s * 4 * F.main_lane, row + l.laux_off + s * 4 * F.laux_lane,
                  row + l.sa_off + rec * F.sa, row + l.sb_off + rec * F.sb};
}

// ---- decode ---------------------------------------------------------------------------
// Most warps a 16-row tile: 32 for the 16-bit float types (53 registers: a 1024-thread
// block fits), 16 for the rest. The grids of 128 tiles (o and down of a 2048-wide model) are
// one block a SM: float weights stream 16 bytes a lane and step, so 16 warps keep too few
// bytes in flight (ncu, F16 [2048, 5632] m = 1: 16 warps a SM, 1.5 TB/s, 66 % of stalls
// waiting on memory).
template <uint32_t T>
constexpr int decode_max_warps() {
  return T == kF16 || T == kBF16 ? 32 : 16;
}
constexpr int kDecodeLogWarps = 6;  // per_sm tables: 1..32 warps

// One step (128 values, 32 for float types) of 16 rows: ra = row g, rb = row g + 8.
// kM1 (m = 1): lane (g, t) splits x slice (G, h) = (g / 2, g % 2) once per step and the
// fragments are shuffled from it; otherwise each lane splits its own x row's slices.
// Columns of C beyond m hold garbage that is never stored.
template <uint32_t T, int NT, bool kM1>
__device__ __forceinline__ void mmv_step(const MmArgs& a, int64_t s, const Raw<Dec<T>>& ra,
                                         const Raw<Dec<T>>& rb, int g, int t, const uint32_t* table,
                                         float (&acc)[NT][4]) {
  using D = Dec<T>;
  constexpr Format F = D::F;
  constexpr int kGroups = F.step / 32;
  constexpr int NA = D::kExactParts;
  constexpr unsigned kAll = 0xffffffffu;
  const int half = int(s & 1);
  const int64_t ng = min(int64_t(kGroups), (a.cols - s * F.step) / 32);  // short last step
  const float* xs = a.x + s * F.step + 4 * t;
  uint32_t sx[2][2];
  float sp = 0.f;
  if constexpr (kM1) {
    const int G = g >> 1, h = g & 1;
    float4 xv = make_float4(0.f, 0.f, 0.f, 0.f);
    if (G < ng) xv = __ldg(reinterpret_cast<const float4*>(xs + 32 * G + 16 * h));
    split_x<D::kF16>(xv, sx);
    if constexpr (D::kMin) {  // the slice's x sum, in every lane of its quad
      sp = (xv.x + xv.y) + (xv.z + xv.w);
      sp += __shfl_xor_sync(kAll, sp, 1);
      sp += __shfl_xor_sync(kAll, sp, 2);
    }
  }
#pragma unroll
  for (int G = 0; G < kGroups; ++G) {
    if (G >= ng) break;
    float c[NT][2][4] = {};  // one chain per x part, so the two mmas do not wait on each other
    float px[NT] = {};       // this lane's x sum for the min term (not kM1)
    float sca = 1.f, mna = 0.f, scb = 1.f, mnb = 0.f;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      uint32_t fa[NA][2], fb[NA][2];
      D::template frag<NA>(ra, G, h, half, fa, sca, mna, table);
      D::template frag<NA>(rb, G, h, half, fb, scb, mnb, table);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        uint32_t bx[2][2];
        if constexpr (kM1) {
#pragma unroll
          for (int j = 0; j < 2; ++j)
#pragma unroll
            for (int k = 0; k < 2; ++k) bx[j][k] = __shfl_sync(kAll, sx[j][k], 4 * (2 * G + h) + t);
        } else {
          const int n = nt * 8 + g;
          float4 xv = make_float4(0.f, 0.f, 0.f, 0.f);
          if (n < a.m)
            xv = __ldg(reinterpret_cast<const float4*>(xs + n * a.cols + 32 * G + 16 * h));
          split_x<D::kF16>(xv, bx);
          if constexpr (D::kMin) {  // the slice's x sum of column g, then slices added
            float q = (xv.x + xv.y) + (xv.z + xv.w);
            q += __shfl_xor_sync(kAll, q, 1);
            q += __shfl_xor_sync(kAll, q, 2);
            px[nt] += q;
          }
        }
#pragma unroll
        for (int i = 0; i < NA; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j)
            mma16816<D::kF16>(c[nt][j], fa[i][0], fb[i][0], fa[i][1], fb[i][1], bx[j][0], bx[j][1]);
      }
      if constexpr (!D::kScale) {
        if (h == 1) {
#pragma unroll
          for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[nt][q] += c[nt][0][q] + c[nt][1][q];
        }
      }
      if constexpr (D::kScale) {
        if (D::kScale16 || h == 1) {
          // Scale (and min) of the last 16 (kScale16) or 32 values into the accumulators.
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            acc[nt][0] = fmaf(sca, c[nt][0][0] + c[nt][1][0], acc[nt][0]);
            acc[nt][1] = fmaf(sca, c[nt][0][1] + c[nt][1][1], acc[nt][1]);
            acc[nt][2] = fmaf(scb, c[nt][0][2] + c[nt][1][2], acc[nt][2]);
            acc[nt][3] = fmaf(scb, c[nt][0][3] + c[nt][1][3], acc[nt][3]);
#pragma unroll
            for (int q = 0; q < 8; ++q) c[nt][q >> 2][q & 3] = 0.f;
            if constexpr (D::kMin) {
              float s0, s1;
              // The same additions in the same order on both paths (batch invariance).
              if constexpr (kM1) {  // column 0 only: slice (G, h), or (G, 0) + (G, 1)
                s0 = D::kScale16 ? __shfl_sync(kAll, sp, 4 * (2 * G + h))
                                 : __shfl_sync(kAll, sp, 8 * G) + __shfl_sync(kAll, sp, 8 * G + 4);
                s1 = s0;
              } else {  // x columns 2t and 2t + 1: lanes 8t and 8t + 4 hold their sums
                s0 = __shfl_sync(kAll, px[nt], 8 * t);
                s1 = __shfl_sync(kAll, px[nt], 8 * t + 4);
                px[nt] = 0.f;
              }
              acc[nt][0] = fmaf(mna, s0, acc[nt][0]);
              acc[nt][1] = fmaf(mna, s1, acc[nt][1]);
              acc[nt][2] = fmaf(mnb, s0, acc[nt][2]);
              acc[nt][3] = fmaf(mnb, s1, acc[nt][3]);
            }
          }
        }
      }
    }
  }
}

// silu(g) * u with the operations of the SwiGLU kernel (ffn.cu) and ops.cpp: same bits.
__device__ __forceinline__ float silu_mul(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

// Warp `warp` of `nw` takes steps warp, warp + nw, ...; the loads of the next kDepth steps
// are issued before the current step is computed (the same steps in the same order for
// every depth: the sums do not depend on it).
// `wait()` (every thread calls it once): pdl_wait, or a grid barrier in a persistent kernel.
template <uint32_t T, int NT, bool kM1, int kDepth, class Wait>
__device__ __forceinline__ void mmv_loop(const MmArgs& a, const uint8_t* wa, const uint8_t* wb,
                                         int warp, int nw, int g, int t, const uint32_t* table,
                                         float (&acc)[NT][4], Wait wait) {
  using D = Dec<T>;
  const int64_t nsteps = (a.cols + D::F.step - 1) / D::F.step;
  int64_t s = warp;
  Raw<D> ca[kDepth], cb[kDepth];
#pragma unroll
  for (int d = 0; d < kDepth; ++d) {
    if (s + d * nw < nsteps) {
      load_raw<D, true>(global_step<D>(wa, a.layout, s + d * nw), t, ca[d]);
      load_raw<D, true>(global_step<D>(wb, a.layout, s + d * nw), t, cb[d]);
    }
  }
  wait();  // x and y belong to the previous kernel until here
  for (; s < nsteps; s += nw) {
    Raw<D> na, nb;
    const int64_t sn = s + kDepth * nw;
    if (sn < nsteps) {
      load_raw<D, true>(global_step<D>(wa, a.layout, sn), t, na);
      load_raw<D, true>(global_step<D>(wb, a.layout, sn), t, nb);
    }
    mmv_step<T, NT, kM1>(a, s, ca[0], cb[0], g, t, table, acc);
#pragma unroll
    for (int d = 0; d + 1 < kDepth; ++d) {
      ca[d] = ca[d + 1];
      cb[d] = cb[d + 1];
    }
    ca[kDepth - 1] = na;
    cb[kDepth - 1] = nb;
  }
}

// A block of nw warps (1..decode_max_warps, blockDim.x / 32) owns 16 weight rows: tile
// `tile` (blockIdx.x in the product kernels). kDepth: steps in flight besides the current
// one (decode_depth). wait: as mmv_loop.
template <uint32_t T, int NT, int kDepth, class Wait>
__device__ __forceinline__ void mmv_body(const MmArgs& a, int64_t tile, Wait wait) {
  using D = Dec<T>;
  extern __shared__ float red[];  // [nw][NT * 4][32] when nw > 1 (decode_smem)
  __shared__ uint32_t table[D::kTable ? 256 : 1];
  if constexpr (D::kTable) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) table[i] = iq4nl_pair(i);
    __syncthreads();
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int nw = blockDim.x >> 5;
  const int64_t r0 = tile * 16;
  const uint8_t* wa = a.w + min(r0 + g, a.rows - 1) * a.row_bytes;
  const uint8_t* wb = a.w + min(r0 + g + 8, a.rows - 1) * a.row_bytes;
  float acc[NT][4] = {};
  if (NT == 1 && a.m == 1) {
    mmv_loop<T, NT, true, kDepth>(a, wa, wb, warp, nw, g, t, table, acc, wait);
  } else {
    mmv_loop<T, NT, false, kDepth>(a, wa, wb, warp, nw, g, t, table, acc, wait);
  }
  // The successor may launch once every block is past its loads: it then overlaps our tail
  // only. (Triggering at the start let it crowd big grids: Q4_K [32000, 2048] 27 -> 36 us.)
  pdl_launch_dependents();
  auto store = [&](int q, int l, float v) {  // q = nt * 4 + c, l = lane of the fragment
    const int nt = q >> 2, c = q & 3;
    const int64_t row = r0 + (l >> 2) + 8 * (c >> 1);
    const int64_t n = nt * 8 + 2 * (l & 3) + (c & 1);
    if (row < a.rows && n < a.m) a.y[n * a.ldy + row] = v;
  };
  // SwiGLU epilogue: fragment rows g (c = 0, 1) are gate row j = 8 * tile + g, rows
  // g + 8 (c = 2, 3) the matching up row.
  auto store_glu = [&](int nt, int c, int l, float gate, float up) {
    const int64_t j = tile * 8 + (l >> 2);
    const int64_t n = nt * 8 + 2 * (l & 3) + c;
    if (2 * j < a.rows && n < a.m) a.y[n * a.ldy + j] = silu_mul(gate, up);
  };
  if (nw == 1) {
    if (a.swiglu) {
#pragma unroll
      for (int q = 0; q < NT * 2; ++q)
        store_glu(q >> 1, q & 1, lane, acc[q >> 1][q & 1], acc[q >> 1][(q & 1) + 2]);
      return;
    }
#pragma unroll
    for (int q = 0; q < NT * 4; ++q) store(q, lane, acc[q >> 2][q & 3]);
    return;
  }
  constexpr int kPerWarp = NT * 4 * 32;
#pragma unroll
  for (int q = 0; q < NT * 4; ++q) red[warp * kPerWarp + q * 32 + lane] = acc[q >> 2][q & 3];
  __syncthreads();
  if (a.swiglu) {  // the same sums in the same order as below, gate and up in one thread
    for (int i = threadIdx.x; i < NT * 2 * 32; i += blockDim.x) {
      const int nt = i >> 6, c = (i >> 5) & 1, l = i & 31;
      const int qg = nt * 4 + c, qu = qg + 2;
      float vg = 0.f, vu = 0.f;
      for (int w = 0; w < nw; ++w) {
        vg += red[w * kPerWarp + qg * 32 + l];
        vu += red[w * kPerWarp + qu * 32 + l];
      }
      store_glu(nt, c, l, vg, vu);
    }
    return;
  }
  for (int i = threadIdx.x; i < kPerWarp; i += blockDim.x) {
    float v = 0.f;
    for (int w = 0; w < nw; ++w) v += red[w * kPerWarp + i];
    store(i >> 5, i & 31, v);
  }
}

// kW: the most warps a block (launch bounds). Blocks of 32 warps get their own kernels: built
// for 1024 threads (64 registers), the m = 16 F16 kernel ran 14 % slower at 16 warps or less
// ([5632, 2048] 15.6 -> 17.7 us, [32000, 2048] 60 -> 69).
template <uint32_t T, int NT, int kDepth, int kW = 16>
__global__ void __launch_bounds__(kW * 32) mmv_kernel(const MmArgs a) {
  mmv_body<T, NT, kDepth>(a, blockIdx.x, [] { pdl_wait(); });
}

// Register cap of the NT = 2, depth-1 kernel, 0 for none. The warps a tile come from the
// NT = 1 kernel's occupancy for every m (decode_warps: a row's sums must not depend on m),
// so where the NT = 2 kernel needs more registers a grid that is one wave at m <= 8 spills
// into a second at m > 8. ptxas (CUDA 13.0, sm_90) gave Q4_K 74 registers at NT 1 and 95
// at NT 2, so TinyLlama's gate/up [11264, 2048] had 704 tiles of 4 warps for 660 slots, and
// [5632, 2048] 352 tiles of 8 warps for 264 (ncu: 1.33 waves; m = 16 took 2.65x the m = 1
// time, Q4_0 1.73x). The cap is the NT = 1 kernel's allocation (8-register units); the
// launcher takes the capped kernel only where it makes one wave of two (decode).
// NT 1 / NT 2 registers: Q4_1 80 / 94, Q5_0 74 / 84, Q5_1 80 / 96, IQ4_NL 75 / 86, Q2_K
// 79 / 86, Q3_K 74 / 85, Q4_K 74 / 95, Q5_K 80 / 98, Q6_K 82 / 98.
template <uint32_t T>
constexpr int decode_nt2_regs() {
  switch (T) {
    case kQ4_1:
    case kQ5_0:
    case kQ5_1:
    case kIQ4_NL:
    case kQ2_K:
    case kQ3_K:
    case kQ4_K:
    case kQ5_K:
      return 80;
    case kQ6_K:  // 82
      return 88;
    default:
      return 0;
  }
}
// The capped NT = 2 kernel (__maxnreg__ and __launch_bounds__ do not go together).
template <uint32_t T>
__global__ void __maxnreg__((decode_nt2_regs<T>() ? decode_nt2_regs<T>() : 128))
    mmv_kernel_nt2(const MmArgs a) {
  mmv_body<T, 2, 1>(a, blockIdx.x, [] { pdl_wait(); });
}
template <uint32_t T>
const void* capped_kernel() {
  if constexpr (decode_nt2_regs<T>() != 0) {
    return reinterpret_cast<const void*>(&mmv_kernel_nt2<T>);
  } else {
    return nullptr;
  }
}

// Float weights (F16, BF16, F32) move 16 bytes a lane and row per step, a quarter of a
// Q8_0 step: for m > 1 they keep two steps in flight besides the current one
// (SHIMMY_CUDA_MM_DEPTH=1 keeps one, A/B timing). m = 1 keeps one (two were slower:
// F16 tg128 768 -> 688 tok/s), and decode_warps takes the depth-1 kernels' occupancy for
// every m, so the steps and the order of the sums stay the same for every m.
template <uint32_t T>
constexpr int decode_depth() {
  return Dec<T>::kScale ? 1 : 2;
}

// Dynamic shared memory of mmv_kernel<T, nt, depth> with nw warps.
constexpr size_t decode_smem(int nt, int nw) {
  return nw > 1 ? size_t(nw) * nt * 4 * 32 * 4 : 0;
}

// ---- prompt ---------------------------------------------------------------------------
constexpr int kPromptRows = 128;  // weight rows per block
// x rows per block. 128 would halve the shared-memory traffic of x per weight tile but fits
// one block per SM (two of 64 do): on H100 64 won every TinyLlama and 32000-row shape.
constexpr int kPromptBmx = 64;

template <uint32_t T>
struct PromptShape {
  static constexpr Format F = Dec<T>::F;
  // k values per staged chunk: whole steps, sized so a block fits 99 KB of shared memory.
  static constexpr int kChunk = F.step == 32 ? (F.main_lane == 32 ? 32 : 64) : 128;
  static constexpr int kStepsPerChunk = kChunk / F.step;
  static constexpr int kRec = int(round_up(4 * (F.main_lane + F.laux_lane) + F.sa + F.sb, 16));
  // Row stride: 16-byte lane loads of rows g and g + 1 fall in different bank halves
  // (stride = 64 mod 128); 8-byte loads of rows g..g+3 in different quarters (32 or 96).
  static constexpr int pad_stride(int b) {
    if (F.main_lane >= 16) return int(round_up(b - 64, 128)) + 64;
    b = int(round_up(b, 32));
    return b % 64 == 0 ? b + 32 : b;
  }
  static constexpr int kRowStride = pad_stride(kStepsPerChunk * kRec);
  static constexpr int kXStride = kChunk + 16;  // halves; 2*stride = 32 mod 128 bytes
  static constexpr size_t smem_bytes(int bmx) {
    return size_t(2) * kPromptRows * kRowStride + size_t(2) * bmx * kXStride * 2 +
           (Dec<T>::kTable ? 1024 : 0);
  }
};

// Real-valued 16-bit fragment pairs of one lane (scale and min folded in, then rounded).
template <uint32_t T>
__device__ __forceinline__ void real_frag(const Raw<Dec<T>>& r, int G, int h, int half,
                                          uint32_t (&out)[2], const uint32_t* table) {
  using D = Dec<T>;
  uint32_t q[1][2];
  float sc, mn;
  D::template frag<1>(r, G, h, half, q, sc, mn, table);
  if constexpr (!D::kScale) {
    out[0] = q[0][0], out[1] = q[0][1];
  } else {
#pragma unroll
    for (int k = 0; k < 2; ++k)
      out[k] = pack_bf16(fmaf(sc, bf16_lo(q[0][k]), mn), fmaf(sc, bf16_hi(q[0][k]), mn));
  }
}

// blockIdx.z = k split: split z takes chunks [z * per, (z + 1) * per) and, when part is set,
// writes its partial sums to part[z][m][rows] (sum_splits adds them up) instead of y.
template <uint32_t T, int BMX>
__global__ void __launch_bounds__(256, 2)
    mmp_kernel(const MmArgs a, const uint16_t* __restrict__ x16, float* __restrict__ part) {
  using D = Dec<T>;
  using S = PromptShape<T>;
  constexpr Format F = D::F;
  constexpr int NT = BMX / 16;
  constexpr int kGroups = F.step / 32;
  constexpr int KC = S::kChunk, SPC = S::kStepsPerChunk, REC = S::kRec;
  constexpr int RS = S::kRowStride, XS = S::kXStride;
  constexpr int NM = 4 * F.main_lane / 16, NL = 4 * F.laux_lane / 16, N16 = NM + NL;
  constexpr int kSaOff = 4 * (F.main_lane + F.laux_lane);
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* wsm = smem;
  uint16_t* xsm = reinterpret_cast<uint16_t*>(smem + 2 * kPromptRows * RS);
  uint32_t* table = reinterpret_cast<uint32_t*>(xsm + 2 * BMX * XS);

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int wr = warp & 3, wc = warp >> 2;
  const int64_t n0 = int64_t(blockIdx.x) * kPromptRows, m0 = int64_t(blockIdx.y) * BMX;
  const int64_t nchunks = round_up(a.cols, kColPad) / KC;
  const int64_t per = (nchunks + gridDim.z - 1) / gridDim.z;
  const int64_t c_begin = min(nchunks, int64_t(blockIdx.z) * per);
  const int64_t c_end = min(nchunks, c_begin + per);
  if constexpr (D::kTable) table[tid] = iq4nl_pair(tid);  // visible after the first barrier

  auto stage = [&](int64_t c, int buf) {
    uint8_t* wdst = wsm + buf * kPromptRows * RS;
    for (int i = tid; i < kPromptRows * SPC * N16; i += 256) {
      const int r = i / (SPC * N16), rem = i % (SPC * N16), ss = rem / N16, j = rem % N16;
      const int64_t s = c * SPC + ss;
      const uint8_t* row = a.w + min(n0 + r, a.rows - 1) * a.row_bytes;
      const uint8_t* src = j < NM
                               ? row + a.layout.main_off + s * 4 * D::F.main_lane + 16 * j
                               : row + a.layout.laux_off + s * 4 * D::F.laux_lane + 16 * (j - NM);
      cp_async<16>(wdst + r * RS + ss * REC + 16 * j, src);
    }
    if constexpr (D::F.sa > 0) {
      for (int i = tid; i < kPromptRows * SPC; i += 256) {
        const int r = i / SPC, ss = i % SPC;
        const int64_t s = c * SPC + ss, rec = D::F.super ? s >> 1 : s;
        const uint8_t* row = a.w + min(n0 + r, a.rows - 1) * a.row_bytes;
        uint8_t* d = wdst + r * RS + ss * REC + kSaOff;
        cp_async<D::F.sa>(d, row + a.layout.sa_off + rec * D::F.sa);
        if constexpr (D::F.sb > 0) cp_async<4>(d + D::F.sa, row + a.layout.sb_off + rec * 4);
      }
    }
    uint16_t* xdst = xsm + buf * BMX * XS;
    for (int i = tid; i < BMX * KC / 8; i += 256) {
      const int r = i / (KC / 8), j = i % (KC / 8);
      const int64_t xr = m0 + r, k = c * KC + 8 * j;
      const bool ok = xr < a.m && k < a.cols;
      cp_async16_or_zero(xdst + r * XS + 8 * j, ok ? x16 + xr * a.cols + k : x16, ok);
    }
    cp_async_commit();
  };

  float acc[2][NT][4] = {};
  if (c_begin < c_end) stage(c_begin, int(c_begin & 1));
  for (int64_t c = c_begin; c < c_end; ++c) {
    if (c + 1 < c_end) {
      stage(c + 1, int((c + 1) & 1));
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const uint8_t* wbuf = wsm + (c & 1) * kPromptRows * RS;
    const uint16_t* xbuf = xsm + (c & 1) * BMX * XS;
#pragma unroll
    for (int ss = 0; ss < SPC; ++ss) {
      const int half = int((c * SPC + ss) & 1);
      Raw<D> raw[2][2];
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
          const uint8_t* rec = wbuf + (wr * 32 + 16 * i + 8 * rr + g) * RS + ss * REC;
          load_raw<D, false>(
              StepPtrs{rec, rec + 4 * F.main_lane, rec + kSaOff, rec + kSaOff + F.sa}, t,
              raw[i][rr]);
        }
#pragma unroll
      for (int G = 0; G < kGroups; ++G)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          uint32_t A[2][4];
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            uint32_t p0[2], p1[2];
            real_frag<T>(raw[i][0], G, h, half, p0, table);
            real_frag<T>(raw[i][1], G, h, half, p1, table);
            A[i][0] = p0[0], A[i][1] = p1[0], A[i][2] = p0[1], A[i][3] = p1[1];
          }
          const uint16_t* xp =
              xbuf + (wc * (BMX / 2) + g) * XS + ss * F.step + 32 * G + 16 * h + 4 * t;
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            const uint2 b = *reinterpret_cast<const uint2*>(xp + nt * 8 * XS);
            mma16816<D::kF16>(acc[0][nt], A[0][0], A[0][1], A[0][2], A[0][3], b.x, b.y);
            mma16816<D::kF16>(acc[1][nt], A[1][0], A[1][1], A[1][2], A[1][3], b.x, b.y);
          }
        }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int64_t wrow = n0 + wr * 32 + 16 * i + g + 8 * (c >> 1);
        const int64_t xrow = m0 + wc * (BMX / 2) + nt * 8 + 2 * t + (c & 1);
        if (wrow >= a.rows || xrow >= a.m) continue;
        if (part) {
          part[(int64_t(blockIdx.z) * a.m + xrow) * a.rows + wrow] = acc[i][nt][c];
        } else {
          a.y[xrow * a.ldy + wrow] = acc[i][nt][c];
        }
      }
}

// ---- host side: launches and per-device preparation -------------------------------------
template <uint32_t T>
struct Launcher {
  using S = PromptShape<T>;
  struct DeviceInfo {
    bool ready = false;
    int sms = 1;
    int prompt_per_sm = 0;                       // resident prompt blocks per SM
    int decode_per_sm[2][kDecodeLogWarps] = {};  // resident blocks a SM, NT 1 and 2, 1..32 warps
    bool pdl = false;           // programmatic dependent launch (compute capability >= 9)
    bool strict_warps = false;  // decode_warps from both NT kernels' occupancy
    bool shallow = false;       // SHIMMY_CUDA_MM_DEPTH=1: depth 1 for every type
    int deep_per_sm[kDecodeLogWarps] = {};    // resident m = 1 depth-2 blocks a SM, 1..32 warps
    int capped_per_sm[kDecodeLogWarps] = {};  // the same, register-capped NT = 2 kernel
    int log_warps = 4;    // log2 of the most warps a tile (SHIMMY_CUDA_MM_W32=0: 16, A/B timing)
    bool deep_m1 = true;  // SHIMMY_CUDA_MM_DEEP1=0: m = 1 at depth 1 (A/B timing)
  };
  static constexpr int kMaxDevices = 64;
  static inline DeviceInfo info[kMaxDevices];
  static inline std::mutex mu;

  static const DeviceInfo& device_info() {
    int dev = 0;
    cudaGetDevice(&dev);
    return info[dev < kMaxDevices ? dev : 0];
  }

  // The 32-warp kernel <NT, depth> (16-bit float types only), else nullptr.
  template <int NT, int kDepth>
  static const void* wide_kernel() {
    if constexpr (decode_max_warps<T>() == 32) {
      return reinterpret_cast<const void*>(&mmv_kernel<T, NT, kDepth, 32>);
    } else {
      return nullptr;
    }
  }
  // Launches mmv_kernel<T, NT, kDepth> for blocks of w warps.
  template <int NT, int kDepth>
  static void launch_mmv(const cudaLaunchConfig_t& cfg, int w, const MmArgs& a) {
    if constexpr (decode_max_warps<T>() == 32) {
      if (w == 32) {
        cudaLaunchKernelEx(&cfg, mmv_kernel<T, NT, kDepth, 32>, a);
        return;
      }
    }
    cudaLaunchKernelEx(&cfg, mmv_kernel<T, NT, kDepth>, a);
  }

  static cudaError_t prepare() {
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    if (dev >= kMaxDevices) return cudaErrorInvalidDevice;
    std::lock_guard<std::mutex> lock(mu);
    DeviceInfo& d = info[dev];
    if (d.ready) return cudaSuccess;
    int optin = 0, major = 0;
    if ((e = cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess)
      return e;
    if ((e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev)) != cudaSuccess)
      return e;
    const char* pdl = std::getenv("SHIMMY_CUDA_MM_PDL");  // "0" turns it off (A/B timing)
    d.pdl = major >= 9 && !(pdl && pdl[0] == '0');
    const char* sw = std::getenv("SHIMMY_CUDA_MM_WARPS");
    d.strict_warps = sw && std::strcmp(sw, "strict") == 0;
    if ((e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) !=
        cudaSuccess)
      return e;
    const void* prompt = reinterpret_cast<const void*>(&mmp_kernel<T, kPromptBmx>);
    const size_t bytes = S::smem_bytes(kPromptBmx);
    d.prompt_per_sm = 0;
    if (bytes > size_t(optin)) return cudaErrorInvalidConfiguration;  // the device is too small
    if ((e = cudaFuncSetAttribute(prompt, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  int(bytes))) != cudaSuccess)
      return e;
    if ((e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&d.prompt_per_sm, prompt, 256, bytes)) !=
        cudaSuccess)
      return e;
    if (d.prompt_per_sm == 0) return cudaErrorInvalidConfiguration;
    const char* dp = std::getenv("SHIMMY_CUDA_MM_DEPTH");
    d.shallow = decode_depth<T>() > 1 && dp && dp[0] == '1';
    const char* deep = std::getenv("SHIMMY_CUDA_MM_DEEP1");
    d.deep_m1 = !(deep && deep[0] == '0');
    const char* w32 = std::getenv("SHIMMY_CUDA_MM_W32");
    d.log_warps = decode_max_warps<T>() == 32 && !(w32 && w32[0] == '0') ? 5 : 4;
    // Resident blocks for 1..32 warps: NT 1 and NT 2 at depth 1, NT 1 at depth 2, and the
    // register-capped NT 2 kernel.
    const void* kern[2][4] = {
        {reinterpret_cast<const void*>(&mmv_kernel<T, 1, 1>),
         reinterpret_cast<const void*>(&mmv_kernel<T, 2, 1>),
         reinterpret_cast<const void*>(&mmv_kernel<T, 1, 2>), capped_kernel<T>()},
        {wide_kernel<1, 1>(), wide_kernel<2, 1>(), nullptr, nullptr}};
    int* per_sm[4] = {d.decode_per_sm[0], d.decode_per_sm[1], d.deep_per_sm, d.capped_per_sm};
    for (int i = 0; i < 4; ++i)
      for (int k = 0; k <= d.log_warps; ++k) {
        const void* f = kern[k > 4][i];
        if (f &&
            (e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                 &per_sm[i][k], f, 32 << k, decode_smem(i % 2 ? 2 : 1, 1 << k))) != cudaSuccess)
          return e;
      }
    d.ready = true;
    return cudaSuccess;
  }

  // Warps per 16-row tile: as many as keep every block resident at once (one wave), at
  // most one per step. The same for every m <= 16 (chosen for m <= 8): the k split fixes
  // the order of the sums, and a row's result must not depend on m.
  static int decode_warps(const DeviceInfo& d, int64_t rows, int64_t cols) {
    const int64_t tiles = (rows + 15) / 16;
    const int64_t nsteps = (cols + Dec<T>::F.step - 1) / Dec<T>::F.step;
    for (int k = d.log_warps; k > 0; --k) {
      const int w = 1 << k;
      // m <= 8 sets it; m > 8 uses the same (SHIMMY_CUDA_MM_WARPS=strict: the smaller of
      // the two kernels' occupancies, A/B timing of m = 16 in one wave)
      const int per_sm = d.strict_warps ? std::min(d.decode_per_sm[0][k], d.decode_per_sm[1][k])
                                        : d.decode_per_sm[0][k];
      if (w <= nsteps && tiles <= int64_t(d.sms) * per_sm) return w;
    }
    return 1;
  }

  static void decode(const MmArgs& a, cudaStream_t s) {
    const DeviceInfo& d = device_info();
    const int nt = a.m <= 8 ? 1 : 2;
    const int w = decode_warps(d, a.rows, a.cols);
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(unsigned((a.rows + 15) / 16));
    cfg.blockDim = dim3(unsigned(w * 32));
    cfg.dynamicSmemBytes = decode_smem(nt, w);
    cfg.stream = s;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = d.pdl ? 1 : 0;
    constexpr int kD = decode_depth<T>();
    // m = 1, quantized types: two steps in flight where the deeper kernel still keeps every
    // tile resident (elsewhere its registers would cost a second wave). Depth never changes
    // the sums. H100 tg128, DEEP1 0 / 1: Q4_0 1094 / 1130, 1081 / 1124, 1077 / 1112, 1079 /
    // 1132; Q8_0 953 / 977, 956 / 974, 974 / 924, 977 / 981; Q4_K_M 1006 / 988, 1003 / 1003.
    // Float types lost at depth 2 or 4 even where one block per SM leaves them latency-bound
    // (F16 750 / 671 everywhere; 739 -> 724 at depth 2 and 684 at depth 4 for those grids).
    const bool deep = Dec<T>::kScale && a.m == 1 && d.deep_m1 &&
                      (a.rows + 15) / 16 <= int64_t(d.sms) * d.deep_per_sm[__builtin_ctz(w)];
    if (deep) {
      cudaLaunchKernelEx(&cfg, mmv_kernel<T, 1, 2>, a);  // quantized types: w <= 16
    } else if (nt == 1 && (a.m == 1 || d.shallow)) {
      launch_mmv<1, 1>(cfg, w, a);
    } else if (nt == 1) {
      launch_mmv<1, kD>(cfg, w, a);
    } else if (d.shallow || kD == 1) {
      // The capped kernel only where it makes one wave of two: its spills (48-164 bytes)
      // cost 6-23 % elsewhere. H100, m = 16, uncapped / capped everywhere: Q4_K [5632, 2048]
      // 17.9 / 12.9 us, Q5_K 18.9 / 15.9, but Q4_K [2048, 5632] 14.8 / 16.1, Q6_K [32000,
      // 2048] 58 / 71.
      const int k = __builtin_ctz(w);
      const int64_t tiles = (a.rows + 15) / 16;
      if constexpr (decode_nt2_regs<T>() != 0) {
        if (tiles > int64_t(d.sms) * d.decode_per_sm[1][k] &&
            tiles <= int64_t(d.sms) * d.capped_per_sm[k]) {
          cudaLaunchKernelEx(&cfg, mmv_kernel_nt2<T>, a);
          return;
        }
      }
      launch_mmv<2, 1>(cfg, w, a);
    } else {
      launch_mmv<2, kD>(cfg, w, a);
    }
  }

  // Prompt tiling: a k split when the tiles cannot fill the device.
  static int prompt_splits(const DeviceInfo& d, int64_t rows, int64_t cols, int64_t m) {
    const int64_t blocks =
        (rows + kPromptRows - 1) / kPromptRows * ((m + kPromptBmx - 1) / kPromptBmx);
    const int64_t slots = int64_t(d.sms) * d.prompt_per_sm;
    const int64_t nchunks = round_up(cols, kColPad) / S::kChunk;
    return int(
        std::max<int64_t>(1, std::min<int64_t>({max_splits(rows), slots / blocks, nchunks / 2})));
  }

  static void prompt(const MmArgs& a, const uint16_t* x16, float* part, cudaStream_t s) {
    const int nsplit = prompt_splits(device_info(), a.rows, a.cols, a.m);
    const dim3 grid(unsigned((a.rows + kPromptRows - 1) / kPromptRows),
                    unsigned((a.m + kPromptBmx - 1) / kPromptBmx), unsigned(nsplit));
    float* out = nsplit > 1 ? part : nullptr;
    mmp_kernel<T, kPromptBmx><<<grid, 256, S::smem_bytes(kPromptBmx), s>>>(a, x16, out);
    if (out) sum_splits(out, nsplit, a, s);
  }

  static const TypeOps& ops() {
    static const TypeOps o{&prepare, &decode, &prompt, Dec<T>::kF16};
    return o;
  }
};

}  // namespace shimmy::cuda::mm
