// Causal attention over the KV cache in one kernel (kernels.h attention, head dims 64 and
// 128 with group * hd <= 1024): decode, parallel decode and mixed batches.
//
// The positions of a slot are cut into chunks of dec_chunk(max_ctx) keys (128 unless the
// context is longer than 64 chunks of 128), a function of the context alone, so a row's
// result never depends on the batch around it. Block (chunk c, kv head g, token i), 4 warps,
// skips chunks beyond pos_i. Each warp takes 32-key tiles c*chunk + 32w, + 128, ...:
//   scores: lane t dots key t's K row with every q head of the group (q in shared memory):
//           K is read once for the group
//   softmax per head over the tile (shuffles): running max m, sum l of e^(s - m); the
//           probabilities go to shared memory rounded to f16 (as the split kernel)
//   mix:    lane owns hd/32 dims of every head and walks the tile's V rows (coalesced)
// The 4 warps merge through shared memory into the chunk's (o, m, l). A token whose
// position fits in one chunk writes att directly. Otherwise every chunk writes its partial,
// and the block that finishes last (a counter per (token, kv head), left at zero) merges
// the chunks in chunk order: att = Σ_c o_c e^(m_c - M) / Σ_c l_c e^(m_c - M). The merge
// order is fixed, so the result is deterministic and batch invariant.
//
// Partials hold kDecTokens tokens; larger batches launch once per kDecTokens tokens.
#include <cuda_fp16.h>

#include <cmath>

#include "device_util.cuh"
#include "kernels.h"
#include "launch.h"

namespace shimmy::cuda {

int64_t dec_chunk(int64_t max_ctx) {
  int64_t c = (max_ctx + kDecMaxChunks - 1) / kDecMaxChunks;
  c = (c + kDecTile * kDecWarps - 1) / (kDecTile * kDecWarps) * (kDecTile * kDecWarps);
  return c < kDecTile * kDecWarps ? kDecTile * kDecWarps : c;
}

bool dec_supported(int hd, int group) { return (hd == 64 || hd == 128) && group * hd <= 1024; }

int64_t dec_partial_floats(int64_t max_ctx, int64_t n_head, int64_t n_head_kv, int64_t hd) {
  const int64_t n_chunks = (max_ctx + dec_chunk(max_ctx) - 1) / dec_chunk(max_ctx);
  // o [kDecTokens][n_head][n_chunks][hd], ml [..][2], then kDecTokens * n_head_kv counters
  return kDecTokens * n_head * n_chunks * (hd + 2) + kDecTokens * n_head_kv;
}

namespace {

constexpr int kThreads = kDecWarps * 32;

// Dims per lane in the mix, and keys whose V the lane loads at once (32 registers).
template <int HD, bool F16>
struct Shape {
  static constexpr int kDl = HD / 32;
  static constexpr int kWords = F16 ? kDl / 2 : kDl;  // 32-bit words of V per lane and key
  static constexpr int kBatch = 32 / kWords;
  static constexpr int kMaxGroup = 1024 / HD;
};

// Dot of key row `row` (HD values) with the group's q heads (qs [group][HD]) into s.
template <int HD, bool F16, int GM>
__device__ __forceinline__ void score_row(const void* kc, int64_t row, const float* qs, int group,
                                          float (&s)[GM]) {
  const float4* q4 = reinterpret_cast<const float4*>(qs);
  constexpr int kVec = F16 ? 8 : 4;  // values per 16-byte load
#pragma unroll
  for (int c = 0; c < HD / kVec; ++c) {
    float k[kVec];
    if constexpr (F16) {
      const uint4 raw = __ldg(reinterpret_cast<const uint4*>(static_cast<const __half*>(kc) + row) + c);
      const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(h2[e]);
        k[2 * e] = f.x;
        k[2 * e + 1] = f.y;
      }
    } else {
      const float4 v = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(kc) + row) + c);
      k[0] = v.x, k[1] = v.y, k[2] = v.z, k[3] = v.w;
    }
#pragma unroll
    for (int hh = 0; hh < GM; ++hh) {
      if (hh < group) {
#pragma unroll
        for (int e4 = 0; e4 < kVec / 4; ++e4) {
          const float4 q = q4[(hh * HD + c * kVec) / 4 + e4];
          s[hh] += q.x * k[4 * e4] + q.y * k[4 * e4 + 1] + q.z * k[4 * e4 + 2] + q.w * k[4 * e4 + 3];
        }
      }
    }
  }
}

// V words of key row `row`, the lane's dims.
template <int HD, bool F16>
__device__ __forceinline__ void load_v(const void* vc, int64_t row, int lane,
                                       uint32_t (&w)[Shape<HD, F16>::kWords]) {
  constexpr int W = Shape<HD, F16>::kWords;
  const uint32_t* p = reinterpret_cast<const uint32_t*>(static_cast<const char*>(vc) +
                                                        row * (F16 ? 2 : 4)) + lane * W;
  if constexpr (W == 1) {
    w[0] = __ldg(p);
  } else if constexpr (W == 2) {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(p));
    w[0] = v.x, w[1] = v.y;
  } else {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
  }
}
template <int HD, bool F16>
__device__ __forceinline__ void v_floats(const uint32_t (&w)[Shape<HD, F16>::kWords],
                                         float (&v)[Shape<HD, F16>::kDl]) {
  constexpr int W = Shape<HD, F16>::kWords;
#pragma unroll
  for (int j = 0; j < W; ++j) {
    if constexpr (F16) {
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[j]));
      v[2 * j] = f.x;
      v[2 * j + 1] = f.y;
    } else {
      v[j] = __uint_as_float(w[j]);
    }
  }
}

template <int HD, bool F16>
__global__ void __launch_bounds__(kThreads)
    attn_decode_kernel(AttnParams p, int i0, int64_t chunk, int n_chunks, float scale) {
  using S = Shape<HD, F16>;
  constexpr int GM = S::kMaxGroup, DL = S::kDl;
  extern __shared__ float smem[];
  const int group = p.n_head / p.n_head_kv, gd = group * HD;
  float* qs = smem;                          // [group][HD]
  float* pw = qs + gd;                       // [warps][32 keys][group] probabilities
  float* wo = pw + kDecWarps * 32 * group;   // [warps][group][HD] warp outputs
  float* wml = wo + kDecWarps * gd;          // [warps][group][2] warp m, l
  __shared__ int last;

  pdl_wait();  // q and the cache rows of this step come from the previous kernel
  pdl_trigger();
  const int c = blockIdx.x, g = blockIdx.y, z = blockIdx.z, i = i0 + z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int H = p.n_head;
  const int64_t KV = int64_t(p.n_head_kv) * HD;
  const int64_t n_pos = int64_t(p.pos[i]) + 1;
  const int64_t p0 = int64_t(c) * chunk, p1 = p0 + chunk < n_pos ? p0 + chunk : n_pos;
  if (p0 >= p1) return;  // beyond the token's position
  const int n_active = static_cast<int>((n_pos + chunk - 1) / chunk);

  const float* q = p.q + int64_t(i) * H * HD + int64_t(g) * gd;
  for (int e = tid; e < gd; e += kThreads) qs[e] = q[e];
  __syncthreads();

  const int64_t base = int64_t(p.seq[i]) * p.max_ctx * KV + int64_t(g) * HD;
  float m_run[GM], l_run[GM], o[GM][DL];
#pragma unroll
  for (int hh = 0; hh < GM; ++hh) {
    m_run[hh] = -INFINITY;
    l_run[hh] = 0.0f;
#pragma unroll
    for (int j = 0; j < DL; ++j) o[hh][j] = 0.0f;
  }
  float* pr = pw + warp * 32 * group;
  for (int64_t k0 = p0 + 32 * warp; k0 < p1; k0 += 32 * kDecWarps) {
    const int nt = static_cast<int>(p1 - k0 < 32 ? p1 - k0 : 32);  // keys of this tile
    // First V batch in flight while the scores are computed.
    uint32_t vw[S::kBatch][S::kWords];
#pragma unroll
    for (int t = 0; t < S::kBatch; ++t) {
      if (t < nt) load_v<HD, F16>(p.v_cache, base + (k0 + t) * KV, lane, vw[t]);
    }
    float s[GM];
#pragma unroll
    for (int hh = 0; hh < GM; ++hh) s[hh] = 0.0f;
    if (lane < nt) score_row<HD, F16, GM>(p.k_cache, base + (k0 + lane) * KV, qs, group, s);
#pragma unroll
    for (int hh = 0; hh < GM; ++hh) {
      if (hh < group) {
        const float sc = lane < nt ? s[hh] * scale : -INFINITY;
        const float m_new = fmaxf(m_run[hh], warp_max(sc));
        const float e = lane < nt ? expf(sc - m_new) : 0.0f;
        const float sum = warp_sum(e);
        const float a = m_run[hh] == -INFINITY ? 0.0f : expf(m_run[hh] - m_new);
        l_run[hh] = l_run[hh] * a + sum;
        m_run[hh] = m_new;
#pragma unroll
        for (int j = 0; j < DL; ++j) o[hh][j] *= a;
        pr[lane * group + hh] = F16 ? round_f16(e) : e;  // the CPU rounds only with an f16 cache
      }
    }
    __syncwarp();
    for (int t0 = 0; t0 < nt; t0 += S::kBatch) {
      if (t0 > 0) {
#pragma unroll
        for (int t = 0; t < S::kBatch; ++t) {
          if (t0 + t < nt) load_v<HD, F16>(p.v_cache, base + (k0 + t0 + t) * KV, lane, vw[t]);
        }
      }
#pragma unroll
      for (int t = 0; t < S::kBatch; ++t) {
        if (t0 + t < nt) {
          float v[DL];
          v_floats<HD, F16>(vw[t], v);
          const float* pt = pr + (t0 + t) * group;
#pragma unroll
          for (int hh = 0; hh < GM; ++hh) {
            if (hh < group) {
              const float w = pt[hh];
#pragma unroll
              for (int j = 0; j < DL; ++j) o[hh][j] = fmaf(w, v[j], o[hh][j]);
            }
          }
        }
      }
    }
    __syncwarp();  // pr is rewritten by the next tile
  }
  // The warps' (o, m, l) -> shared memory; a warp without keys leaves m = -inf, l = 0.
#pragma unroll
  for (int hh = 0; hh < GM; ++hh) {
    if (hh < group) {
#pragma unroll
      for (int j = 0; j < DL; ++j) wo[(warp * group + hh) * HD + lane * DL + j] = o[hh][j];
      if (lane == 0) {
        wml[(warp * group + hh) * 2] = m_run[hh];
        wml[(warp * group + hh) * 2 + 1] = l_run[hh];
      }
    }
  }
  __syncthreads();

  // Merge the warps (fixed order): element e = (head hh, dim d) of the group.
  float* part_o = p.part;
  float* part_ml = p.part + int64_t(kDecTokens) * H * n_chunks * HD;
  int* counter = reinterpret_cast<int*>(part_ml + int64_t(kDecTokens) * H * n_chunks * 2) +
                 z * p.n_head_kv + g;
  float* att = p.att + int64_t(i) * H * HD + int64_t(g) * gd;
  for (int e = tid; e < gd; e += kThreads) {
    const int hh = e / HD;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kDecWarps; ++w) M = fmaxf(M, wml[(w * group + hh) * 2]);
    float O = 0.0f, L = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecWarps; ++w) {
      const float mw = wml[(w * group + hh) * 2];
      const float f = mw == -INFINITY ? 0.0f : expf(mw - M);
      O += wo[w * gd + e] * f;
      L += wml[(w * group + hh) * 2 + 1] * f;
    }
    if (n_active == 1) {
      att[e] = O / L;
    } else {
      const int64_t slot = (int64_t(z) * H + int64_t(g) * group + hh) * n_chunks + c;
      part_o[slot * HD + e % HD] = O;
      if (e % HD == 0) {
        part_ml[slot * 2] = M;
        part_ml[slot * 2 + 1] = L;
      }
    }
  }
  if (n_active == 1) return;

  // The last chunk to finish merges them all.
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    const int ticket = atomicAdd(counter, 1);
    last = ticket == n_active - 1;
    if (last) atomicExch(counter, 0);
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  for (int e = tid; e < gd; e += kThreads) {
    const int hh = e / HD;
    const int64_t slot0 = (int64_t(z) * H + int64_t(g) * group + hh) * n_chunks;
    float M = -INFINITY;
    for (int cc = 0; cc < n_active; ++cc) M = fmaxf(M, __ldcg(part_ml + (slot0 + cc) * 2));
    float O = 0.0f, L = 0.0f;
    for (int cc = 0; cc < n_active; ++cc) {
      const float f = expf(__ldcg(part_ml + (slot0 + cc) * 2) - M);
      O += __ldcg(part_o + (slot0 + cc) * HD + e % HD) * f;
      L += __ldcg(part_ml + (slot0 + cc) * 2 + 1) * f;
    }
    att[e] = O / L;
  }
}

template <int HD, bool F16>
void launch(const AttnParams& p, cudaStream_t s) {
  const int group = p.n_head / p.n_head_kv;
  const int64_t chunk = dec_chunk(p.max_ctx);
  const int n_chunks = static_cast<int>((p.max_ctx + chunk - 1) / chunk);
  const size_t smem =
      sizeof(float) * (size_t(group) * HD + size_t(kDecWarps) * 32 * group +
                       size_t(kDecWarps) * group * HD + size_t(kDecWarps) * group * 2);
  const float scale = 1.0f / sqrtf(static_cast<float>(HD));
  for (int i0 = 0; i0 < p.n_tokens; i0 += kDecTokens) {
    const int n = p.n_tokens - i0 < kDecTokens ? p.n_tokens - i0 : kDecTokens;
    launch_pdl(attn_decode_kernel<HD, F16>,
               dim3(static_cast<unsigned>(n_chunks), static_cast<unsigned>(p.n_head_kv),
                    static_cast<unsigned>(n)),
               dim3(kThreads), smem, s, p, i0, chunk, n_chunks, scale);
  }
}

}  // namespace

void attention_decode(const AttnParams& p, cudaStream_t s) {
  if (p.n_tokens <= 0) return;
  if (p.hd == 64) {
    p.kv_f16 ? launch<64, true>(p, s) : launch<64, false>(p, s);
  } else {
    p.kv_f16 ? launch<128, true>(p, s) : launch<128, false>(p, s);
  }
}

}  // namespace shimmy::cuda
