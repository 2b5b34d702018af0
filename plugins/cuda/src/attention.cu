// Causal attention over the KV cache, split-K (kernels.h attention): the path for head
// layouts the one-kernel decode attention (attn_decode.cu) does not take.
//
// Kernel 1, block (chunk c, kv head g, token i), kAttnThreads threads: the group's q heads of
// token i (group = n_head / n_head_kv, sharing kv head g) against cache positions
// [c*chunk, min((c+1)*chunk, pos_i + 1)) of slot seq_i, kAttnTile keys at a time:
//   scores: thread t takes key t of the tile, reads its K row once, dots it with every
//           q head of the group (q in shared memory)
//   online softmax per head (one warp per head): running max m, sum l of exp(s - m);
//           the probabilities are rounded to f16 (the CPU rounds its normalised ones)
//   mix:    thread per (head, dim pair): o = o * exp(m_old - m_new) + Σ_p P_p v_p
// and writes the unnormalised (o, m, l) partial. Kernel 2 merges the chunks of each
// (token, head): att = Σ_c o_c e^(m_c - M) / Σ_c l_c e^(m_c - M).
#include <cuda_fp16.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "device_util.cuh"
#include "kernels.h"

namespace shimmy::cuda {

SplitPlan split_plan(int64_t n_tokens, int64_t max_ctx, int64_t n_head_kv) {
  // Aim at ~256 blocks for short batches (decode); one chunk per token once the batch
  // alone fills the GPU.
  const int64_t max_split = (max_ctx + kAttnTile - 1) / kAttnTile;
  int64_t want = (256 + n_tokens * n_head_kv - 1) / (n_tokens * n_head_kv);
  if (want < 1) want = 1;
  int64_t n_split = want < max_split ? want : max_split;
  if (n_split < 1) n_split = 1;
  int64_t chunk = (max_ctx + n_split - 1) / n_split;
  chunk = (chunk + kAttnTile - 1) / kAttnTile * kAttnTile;
  n_split = (max_ctx + chunk - 1) / chunk;
  return SplitPlan{static_cast<int>(n_split), chunk};
}

int64_t attn_partial_floats(int64_t n_tokens, int64_t max_ctx, int64_t n_head, int64_t n_head_kv,
                            int64_t hd) {
  // The decode kernel's counters first (never touched by the split kernels), then the
  // larger of the two kernels' partials.
  const SplitPlan sp = split_plan(n_tokens, max_ctx, n_head_kv);
  const int64_t split = dec_counter_floats(n_head_kv) + n_tokens * n_head * sp.n_split * (hd + 2);
  if (!dec_supported(static_cast<int>(hd), static_cast<int>(n_head / n_head_kv))) return split;
  const int64_t dec = dec_partial_floats(max_ctx, n_head, n_head_kv, hd);
  return split > dec ? split : dec;
}

namespace {

template <bool F16>
__device__ __forceinline__ float load_kv(const void* base, int64_t idx) {
  if constexpr (F16) {
    return __half2float(static_cast<const __half*>(base)[idx]);
  } else {
    return static_cast<const float*>(base)[idx];
  }
}

// Dots one K row (hd values) with `group` q heads held in shared memory [group][hd].
template <bool F16>
__device__ __forceinline__ void dot_row(const void* kbase, int64_t row_off, const float* qs,
                                        int group, int hd, float* acc) {
  if constexpr (F16) {
    if ((hd & 7) == 0) {
      const uint4* kr = reinterpret_cast<const uint4*>(static_cast<const __half*>(kbase) + row_off);
      for (int d0 = 0; d0 < hd; d0 += 8) {
        const uint4 raw = kr[d0 / 8];
        const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
        float kv[8];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(h2[e]);
          kv[2 * e] = f.x;
          kv[2 * e + 1] = f.y;
        }
#pragma unroll
        for (int hh = 0; hh < kAttnMaxGroup; ++hh) {
          if (hh < group) {
            const float* q = qs + hh * hd + d0;
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[hh] += q[e] * kv[e];
          }
        }
      }
      return;
    }
  }
  for (int d = 0; d < hd; ++d) {
    const float kv = load_kv<F16>(kbase, row_off + d);
#pragma unroll
    for (int hh = 0; hh < kAttnMaxGroup; ++hh) {
      if (hh < group) acc[hh] += qs[hh * hd + d] * kv;
    }
  }
}

template <bool F16>
__global__ void __launch_bounds__(kAttnThreads)
    attn_split_kernel(AttnParams p, int n_split, int64_t chunk, float scale) {
  extern __shared__ float smem[];
  const int group = p.n_head / p.n_head_kv, hd = p.hd, gd = group * hd;
  float* qs = smem;                    // [group][hd]
  float* os = qs + gd;                 // [group][hd] running output
  float* sc = os + gd;                 // [group][kAttnTile] scores, then probabilities
  float* st = sc + group * kAttnTile;  // m[group], l[group], alpha[group]
  float *m_run = st, *l_run = st + group, *alpha = st + 2 * group;

  const int c = blockIdx.x, g = blockIdx.y, i = blockIdx.z, tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int H = p.n_head;
  const int64_t KV = int64_t(p.n_head_kv) * hd;
  const int64_t n_pos = int64_t(p.pos[i]) + 1;
  const int64_t p0 = int64_t(c) * chunk, p1 = p0 + chunk < n_pos ? p0 + chunk : n_pos;
  float* part_o = p.part;
  float* part_ml = p.part + int64_t(p.n_tokens) * H * n_split * hd;
  const int64_t slot0 =
      (int64_t(i) * H + int64_t(g) * group) * n_split + c;  // head hh: + hh*n_split

  if (p0 >= p1) {  // this chunk lies beyond the token's position
    if (tid < group) {
      part_ml[(slot0 + int64_t(tid) * n_split) * 2] = -INFINITY;
      part_ml[(slot0 + int64_t(tid) * n_split) * 2 + 1] = 0.0f;
    }
    return;
  }
  const float* q = p.q + int64_t(i) * H * hd + int64_t(g) * group * hd;
  for (int e = tid; e < gd; e += kAttnThreads) {
    qs[e] = q[e];
    os[e] = 0.0f;
  }
  if (tid < group) {
    m_run[tid] = -INFINITY;
    l_run[tid] = 0.0f;
  }
  __syncthreads();

  const int64_t base = int64_t(p.seq[i]) * p.max_ctx * KV + int64_t(g) * hd;
  for (int64_t t0 = p0; t0 < p1; t0 += kAttnTile) {
    const int nt = static_cast<int>(p1 - t0 < kAttnTile ? p1 - t0 : kAttnTile);
    if (tid < nt) {
      float acc[kAttnMaxGroup];
#pragma unroll
      for (int hh = 0; hh < kAttnMaxGroup; ++hh) acc[hh] = 0.0f;
      dot_row<F16>(p.k_cache, base + (t0 + tid) * KV, qs, group, hd, acc);
#pragma unroll
      for (int hh = 0; hh < kAttnMaxGroup; ++hh) {
        if (hh < group) sc[hh * kAttnTile + tid] = acc[hh] * scale;
      }
    }
    __syncthreads();
    for (int hh = warp; hh < group; hh += kAttnThreads / 32) {
      float* s = sc + hh * kAttnTile;
      float mx = -INFINITY;
      for (int t = lane; t < nt; t += 32) mx = fmaxf(mx, s[t]);
      mx = warp_max(mx);
      const float m_old = m_run[hh], m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
      for (int t = lane; t < nt; t += 32) {
        const float e = expf(s[t] - m_new);
        sum += e;
        s[t] = F16 ? round_f16(e) : e;  // the CPU rounds only with an f16 cache
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float a = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
        alpha[hh] = a;
        l_run[hh] = l_run[hh] * a + sum;
        m_run[hh] = m_new;
      }
    }
    __syncthreads();
    if (F16 && (hd & 1) == 0) {
      // Two dims per thread (half2 loads, coalesced across the block), keys unrolled.
      for (int e = tid; e < gd / 2; e += kAttnThreads) {
        const int hh = (2 * e) / hd, d = (2 * e) % hd;
        const float* pr = sc + hh * kAttnTile;
        const __half2* vr = reinterpret_cast<const __half2*>(static_cast<const __half*>(p.v_cache) +
                                                             base + t0 * KV + d);
        const int64_t stride = KV / 2;
        float a0 = 0.0f, a1 = 0.0f;
#pragma unroll 8
        for (int t = 0; t < nt; ++t) {
          const float2 v2 = __half22float2(vr[t * stride]);
          a0 += pr[t] * v2.x;
          a1 += pr[t] * v2.y;
        }
        os[hh * hd + d] = os[hh * hd + d] * alpha[hh] + a0;
        os[hh * hd + d + 1] = os[hh * hd + d + 1] * alpha[hh] + a1;
      }
    } else {
      for (int e = tid; e < gd; e += kAttnThreads) {
        const int hh = e / hd, d = e % hd;
        const float* pr = sc + hh * kAttnTile;
        float acc = 0.0f;
#pragma unroll 8
        for (int t = 0; t < nt; ++t)
          acc += pr[t] * load_kv<F16>(p.v_cache, base + (t0 + t) * KV + d);
        os[e] = os[e] * alpha[hh] + acc;
      }
    }
    __syncthreads();
  }
  for (int e = tid; e < gd; e += kAttnThreads) {
    const int hh = e / hd, d = e % hd;
    part_o[(slot0 + int64_t(hh) * n_split) * hd + d] = os[e];
  }
  if (tid < group) {
    part_ml[(slot0 + int64_t(tid) * n_split) * 2] = m_run[tid];
    part_ml[(slot0 + int64_t(tid) * n_split) * 2 + 1] = l_run[tid];
  }
}

// Block (head h, token i): merges the n_split partials of (i, h) into att.
__global__ void attn_combine_kernel(AttnParams p, int n_split) {
  const int h = blockIdx.x, i = blockIdx.y, H = p.n_head, hd = p.hd;
  const int64_t slot = (int64_t(i) * H + h) * n_split;
  const float* o = p.part + slot * hd;
  const float* ml = p.part + int64_t(p.n_tokens) * H * n_split * hd + slot * 2;
  float M = -INFINITY;
  for (int c = 0; c < n_split; ++c) {
    if (ml[2 * c + 1] > 0.0f) M = fmaxf(M, ml[2 * c]);
  }
  float L = 0.0f;
  for (int c = 0; c < n_split; ++c) {
    if (ml[2 * c + 1] > 0.0f) L += ml[2 * c + 1] * expf(ml[2 * c] - M);
  }
  float* out = p.att + int64_t(i) * H * hd + int64_t(h) * hd;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0.0f;
    for (int c = 0; c < n_split; ++c) {
      if (ml[2 * c + 1] > 0.0f) acc += o[int64_t(c) * hd + d] * expf(ml[2 * c] - M);
    }
    out[d] = acc / L;
  }
}

}  // namespace

void attention(const AttnParams& pa, cudaStream_t s) {
  if (pa.n_tokens <= 0) return;
  const char* force = std::getenv("SHIMMY_CUDA_ATTN");  // "split": the two-kernel path (A/B)
  if (pa.n_tokens <= kDecTokens && dec_supported(pa.hd, pa.n_head / pa.n_head_kv) &&
      !(force && std::strcmp(force, "split") == 0)) {
    attention_decode(pa, s);
    return;
  }
  AttnParams p = pa;
  p.part += dec_counter_floats(p.n_head_kv);
  const SplitPlan sp = split_plan(p.n_tokens, p.max_ctx, p.n_head_kv);
  const int group = p.n_head / p.n_head_kv;
  const size_t smem =
      sizeof(float) * (2 * size_t(group) * p.hd + size_t(group) * kAttnTile + 3 * group);
  const float scale = 1.0f / sqrtf(static_cast<float>(p.hd));
  const dim3 grid(static_cast<unsigned>(sp.n_split), static_cast<unsigned>(p.n_head_kv),
                  static_cast<unsigned>(p.n_tokens));
  if (p.kv_f16) {
    attn_split_kernel<true><<<grid, kAttnThreads, smem, s>>>(p, sp.n_split, sp.chunk, scale);
  } else {
    attn_split_kernel<false><<<grid, kAttnThreads, smem, s>>>(p, sp.n_split, sp.chunk, scale);
  }
  const int threads = p.hd >= 128 ? 128 : (p.hd + 31) / 32 * 32;
  attn_combine_kernel<<<dim3(static_cast<unsigned>(p.n_head), static_cast<unsigned>(p.n_tokens)),
                        threads, 0, s>>>(p, sp.n_split);
}

}  // namespace shimmy::cuda
