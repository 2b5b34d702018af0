// Flash attention for prompt processing (kernels.h attention_flash) on tensor cores
// (mma.sync m16n8k16, f16 in, f32 accumulate), FlashAttention-2 style: the scores, the
// probabilities and the output stay in registers, K/V tiles stream through shared memory.
//
// Block (query tile of 64, head h): 4 warps, warp w owns query rows 16w..16w+15 of the tile;
// its q rows are A fragments in registers (q is f16-rounded already, so exact).
// Per key tile [t0, t0 + 64) up to the tile's largest position, double-buffered (cp.async,
// the next tile's copy overlaps this one's math; rows past the largest position are zeros):
//   S = Q K^T            8 mma n-tiles of 8 keys, K fragments by ldmatrix
//   s = S * scale, -inf where key > the row's position
//   online softmax per row (a quad of lanes holds a row's 64 scores): m, l, alpha
//   P = f16(e^(s - m_new))  (the CPU rounds its normalised probabilities to f16), the
//                           accumulator layout of S is the A layout of P V: no shuffle
//   O = O * alpha + P V  V fragments by ldmatrix.trans
// and finally att = O / l. All rows of the batch belong to one sequence slot (the caller
// checks); their positions may be anything (a prompt continuing a cached prefix, too).
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "kernels.h"

namespace shimmy::cuda {
namespace {

constexpr int kQ = 64, kK = 64, kWarps = 4, kThreads = 32 * kWarps;

// ---- PTX (sm_80+) ----------------------------------------------------------------------
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mma_f16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// Four 8x8 b16 matrices; lane i gives the address of row i % 8 of matrix i / 8.
__device__ __forceinline__ void ldsm4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(row)));
}
__device__ __forceinline__ void ldsm4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(row)));
}
// 16 bytes, or 16 zero bytes when !ok (src is then not read).
__device__ __forceinline__ void cp16_or_zero(void* dst, const void* src, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() {
  asm volatile("cp.async.commit_group;\n");
}
template <int N>
__device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Halves per K/V row in shared memory: 16 bytes of padding put the 8 rows of an ldmatrix
// on distinct banks.
__host__ __device__ constexpr int row_halves(int hd) {
  return hd + 8;
}
// Dynamic shared memory of a block: [K, V][2 buffers][kK rows].
constexpr size_t smem_bytes(int hd) {
  return size_t(2) * 2 * kK * size_t(row_halves(hd)) * 2;
}

template <int HD>
__global__ void __launch_bounds__(kThreads) flash_kernel(AttnParams p, float scale) {
  constexpr int LD = row_halves(HD), KS = HD / 16, NT = HD / 8;  // k steps of q, n-tiles of O
  extern __shared__ __align__(128) unsigned char smem[];
  __half* Ks = reinterpret_cast<__half*>(smem);  // [2][kK][LD]
  __half* Vs = Ks + 2 * kK * LD;                 // [2][kK][LD]
  __shared__ int pos_s[kQ];
  const int h = blockIdx.y, group = p.n_head / p.n_head_kv, g = h / group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, quad = lane & 3;
  const int i0 = blockIdx.x * kQ;
  const int64_t Q = int64_t(p.n_head) * HD, KV = int64_t(p.n_head_kv) * HD;
  if (tid < kQ) pos_s[tid] = i0 + tid < p.n_tokens ? p.pos[i0 + tid] : -1;
  __syncthreads();
  int max_pos = -1;
  for (int r = 0; r < kQ; ++r) max_pos = max(max_pos, pos_s[r]);
  const int64_t seq = p.seq[i0];
  const __half* kc = static_cast<const __half*>(p.k_cache) + seq * p.max_ctx * KV + int64_t(g) * HD;
  const __half* vc = static_cast<const __half*>(p.v_cache) + seq * p.max_ctx * KV + int64_t(g) * HD;

  // This lane's rows: r0 = 16w + lane / 4 and r1 = r0 + 8 of the tile.
  const int r0 = warp * 16 + (lane >> 2), r1 = r0 + 8;
  const int pos0 = pos_s[r0], pos1 = pos_s[r1];
  uint32_t qa[KS][4];
  {
    const bool ok0 = i0 + r0 < p.n_tokens, ok1 = i0 + r1 < p.n_tokens;
    const float* q0 = p.q + int64_t(i0 + r0) * Q + int64_t(h) * HD + 2 * quad;
    const float* q1 = p.q + int64_t(i0 + r1) * Q + int64_t(h) * HD + 2 * quad;
    const float2 z = make_float2(0.f, 0.f);
#pragma unroll
    for (int k = 0; k < KS; ++k) {
      const float2 a = ok0 ? *reinterpret_cast<const float2*>(q0 + 16 * k) : z;
      const float2 b = ok1 ? *reinterpret_cast<const float2*>(q1 + 16 * k) : z;
      const float2 c = ok0 ? *reinterpret_cast<const float2*>(q0 + 16 * k + 8) : z;
      const float2 d = ok1 ? *reinterpret_cast<const float2*>(q1 + 16 * k + 8) : z;
      qa[k][0] = pack_half2(a.x, a.y);
      qa[k][1] = pack_half2(b.x, b.y);
      qa[k][2] = pack_half2(c.x, c.y);
      qa[k][3] = pack_half2(d.x, d.y);
    }
  }
  float o[NT][4];
#pragma unroll
  for (int d = 0; d < NT; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;

  // K/V rows [t0, t0 + kK) into buffer b: 16-byte pieces, zeros past max_pos.
  auto load_tile = [&](int t0, int b) {
    constexpr int kPieces = HD / 8;
    for (int e = tid; e < kK * kPieces; e += kThreads) {
      const int r = e / kPieces, c = e % kPieces;
      const bool ok = t0 + r <= max_pos;
      const int64_t at = (ok ? int64_t(t0 + r) * KV : 0) + c * 8;
      cp16_or_zero(Ks + (b * kK + r) * LD + c * 8, kc + at, ok);
      cp16_or_zero(Vs + (b * kK + r) * LD + c * 8, vc + at, ok);
    }
    cp_commit();
  };
  const int n_tiles = max_pos < 0 ? 0 : max_pos / kK + 1;
  if (n_tiles > 0) load_tile(0, 0);
  for (int t = 0; t < n_tiles; ++t) {
    if (t + 1 < n_tiles) {
      load_tile((t + 1) * kK, (t + 1) & 1);
      cp_wait<1>();
    } else {
      cp_wait<0>();
    }
    __syncthreads();
    const __half* Kb = Ks + (t & 1) * kK * LD;
    const __half* Vb = Vs + (t & 1) * kK * LD;

    // S = Q K^T: n-tile j holds keys 8j..8j+7. One ldmatrix.x4 gives the B fragments of
    // n-tiles j and j + 1 for 16 dims: matrices (keys +0, dims +0), (+0, +8), (+8, +0), (+8, +8).
    float s[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int k = 0; k < KS; ++k) {
#pragma unroll
      for (int j = 0; j < 8; j += 2) {
        uint32_t b[4];
        ldsm4(b, Kb + (8 * j + (lane & 7) + 8 * (lane >> 4)) * LD + 16 * k + 8 * ((lane >> 3) & 1));
        mma_f16(s[j], qa[k], b[0], b[1]);
        mma_f16(s[j + 1], qa[k], b[2], b[3]);
      }
    }

    // Scale, mask, online softmax. s[j][0..1]: row r0, keys 8j + 2 quad + {0, 1};
    // s[j][2..3]: row r1, the same keys.
    const int key0 = t * kK + 2 * quad;
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = key0 + 8 * j + e;
        s[j][e] = key <= pos0 ? s[j][e] * scale : -INFINITY;
        s[j][2 + e] = key <= pos1 ? s[j][2 + e] * scale : -INFINITY;
        mx0 = fmaxf(mx0, s[j][e]);
        mx1 = fmaxf(mx1, s[j][2 + e]);
      }
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
    const float alpha0 = m0 == -INFINITY ? 0.f : expf(m0 - n0);
    const float alpha1 = m1 == -INFINITY ? 0.f : expf(m1 - n1);
    // P as the A fragments of P V: k-step kk covers keys 16kk..16kk+15 = n-tiles 2kk, 2kk + 1.
    uint32_t pa[4][4];
    float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float e0 = n0 == -INFINITY ? 0.f : expf(s[j][0] - n0);
      const float e1 = n0 == -INFINITY ? 0.f : expf(s[j][1] - n0);
      const float e2 = n1 == -INFINITY ? 0.f : expf(s[j][2] - n1);
      const float e3 = n1 == -INFINITY ? 0.f : expf(s[j][3] - n1);
      sum0 += e0 + e1;
      sum1 += e2 + e3;
      pa[j >> 1][(j & 1) * 2] = pack_half2(e0, e1);
      pa[j >> 1][(j & 1) * 2 + 1] = pack_half2(e2, e3);
    }
    sum0 += __shfl_xor_sync(0xffffffffu, sum0, 1);
    sum0 += __shfl_xor_sync(0xffffffffu, sum0, 2);
    sum1 += __shfl_xor_sync(0xffffffffu, sum1, 1);
    sum1 += __shfl_xor_sync(0xffffffffu, sum1, 2);
    l0 = l0 * alpha0 + sum0;
    l1 = l1 * alpha1 + sum1;
    m0 = n0;
    m1 = n1;
#pragma unroll
    for (int d = 0; d < NT; ++d) {
      o[d][0] *= alpha0;
      o[d][1] *= alpha0;
      o[d][2] *= alpha1;
      o[d][3] *= alpha1;
    }

    // O += P V: one ldmatrix.x4.trans gives the B fragments of output n-tiles d and d + 1
    // for 16 keys: matrices (keys +0, dims +0), (+8, +0), (+0, +8), (+8, +8).
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
      for (int d = 0; d < NT; d += 2) {
        uint32_t b[4];
        ldsm4_trans(
            b, Vb + (16 * kk + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + 8 * d + 8 * (lane >> 4));
        mma_f16(o[d], pa[kk], b[0], b[1]);
        mma_f16(o[d + 1], pa[kk], b[2], b[3]);
      }
    }
    __syncthreads();  // the next iteration's copy reuses this tile's buffer
  }

  // att = O / l; o[d][0..1] = row r0, dims 8d + 2 quad + {0, 1}; o[d][2..3] = row r1.
  const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
  if (i0 + r0 < p.n_tokens) {
    float* out = p.att + int64_t(i0 + r0) * Q + int64_t(h) * HD + 2 * quad;
#pragma unroll
    for (int d = 0; d < NT; ++d)
      *reinterpret_cast<float2*>(out + 8 * d) = make_float2(o[d][0] * inv0, o[d][1] * inv0);
  }
  if (i0 + r1 < p.n_tokens) {
    float* out = p.att + int64_t(i0 + r1) * Q + int64_t(h) * HD + 2 * quad;
#pragma unroll
    for (int d = 0; d < NT; ++d)
      *reinterpret_cast<float2*>(out + 8 * d) = make_float2(o[d][2] * inv1, o[d][3] * inv1);
  }
}

template <int HD>
void launch_flash(const AttnParams& p, cudaStream_t s) {
  // Above 48 KiB a kernel must opt in, once per device.
  static int done[64] = {};
  int dev = 0;
  cudaGetDevice(&dev);
  if (dev < 64 && !done[dev]) {
    cudaFuncSetAttribute(flash_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem_bytes(HD)));
    done[dev] = 1;
  }
  const float scale = 1.0f / sqrtf(static_cast<float>(HD));
  const dim3 grid(static_cast<unsigned>((p.n_tokens + kQ - 1) / kQ),
                  static_cast<unsigned>(p.n_head));
  flash_kernel<HD><<<grid, kThreads, smem_bytes(HD), s>>>(p, scale);
}

}  // namespace

bool flash_supported(int hd, bool kv_f16) {
  return kv_f16 && hd % 16 == 0 && hd >= 16 && hd <= 128;
}

size_t flash_smem_bytes(int hd) {
  return smem_bytes(hd);
}

void attention_flash(const AttnParams& p, cudaStream_t s) {
  if (p.n_tokens <= 0) return;
  switch (p.hd) {
    case 16:
      return launch_flash<16>(p, s);
    case 32:
      return launch_flash<32>(p, s);
    case 48:
      return launch_flash<48>(p, s);
    case 64:
      return launch_flash<64>(p, s);
    case 80:
      return launch_flash<80>(p, s);
    case 96:
      return launch_flash<96>(p, s);
    case 112:
      return launch_flash<112>(p, s);
    case 128:
      return launch_flash<128>(p, s);
    default:
      return;  // flash_supported() is false
  }
}

}  // namespace shimmy::cuda
