// Causal attention over the KV cache in one kernel (kernels.h attention, head dims 64 and
// 128 with group * hd <= 1024): decode, parallel decode and mixed batches.
//
// The positions of a slot are cut into chunks of dec_chunk(max_ctx) keys (128 unless the
// context is longer than 64 chunks of 128), a function of the context alone, so a row's
// result never depends on the batch around it. Block (chunk c, kv head g, token i) skips
// chunks beyond pos_i. Its warps are (key tile kt < 4, head slice): warp kt takes the 32-key
// tiles c*chunk + 32 kt, + 128, ... for the slice's heads of the group (up to 4 slices):
//   scores: lane t dots key t's K row with the slice's q heads (q in shared memory): K is
//           read from memory once for the group (the slices' loads hit L1)
//   softmax per head over the tile (shuffles): running max m, sum l of e^(s - m); the
//           probabilities go to shared memory rounded to f16 (as the split kernel)
//   mix:    lane owns hd/32 dims of each head and walks the tile's V rows (coalesced)
// The tile's K and V loads are issued before q is staged (one memory round trip for both).
// The 4 key tiles merge through shared memory into the chunk's (o, m, l). A token whose
// position fits in one chunk writes att directly. Otherwise every chunk writes its partial,
// and the block that finishes last (a counter per (token, kv head), left at zero) merges
// the chunks in chunk order: att = Σ_c o_c e^(m_c - M) / Σ_c l_c e^(m_c - M). The merge
// order is fixed, so the result is deterministic and batch invariant.
//
// p.part starts with the counters (kDecTokens x n_head_kv ints), then the partials of
// kDecTokens tokens; larger batches launch once per kDecTokens tokens (attention() gives
// batches of more than kDecTokens tokens to the split kernels).
#include <cuda_fp16.h>

#include <cmath>
#include <cstdlib>

#include "device_util.cuh"
#include "kernels.h"
#include "launch.h"

namespace shimmy::cuda {

int64_t dec_chunk(int64_t max_ctx) {
  int64_t c = (max_ctx + kDecMaxChunks - 1) / kDecMaxChunks;
  c = (c + kDecTile * kDecWarps - 1) / (kDecTile * kDecWarps) * (kDecTile * kDecWarps);
  return c < kDecTile * kDecWarps ? kDecTile * kDecWarps : c;
}

bool dec_supported(int hd, int group) {
  return (hd == 64 || hd == 128) && group * hd <= 1024;
}

int64_t dec_partial_floats(int64_t max_ctx, int64_t n_head, int64_t n_head_kv, int64_t hd) {
  const int64_t n_chunks = (max_ctx + dec_chunk(max_ctx) - 1) / dec_chunk(max_ctx);
  // counters, then o [kDecTokens][n_head][n_chunks][hd], ml [..][2]
  return dec_counter_floats(n_head_kv) + kDecTokens * n_head * n_chunks * (hd + 2);
}

namespace {

// Dims per lane in the mix, and keys whose V the lane loads at once (32 registers).
template <int HD, bool F16>
struct Shape {
  static constexpr int kDl = HD / 32;
  static constexpr int kWords = F16 ? kDl / 2 : kDl;  // 32-bit words of V per lane and key
  static constexpr int kBatch = 32 / kWords;
  static constexpr int kKVec = F16 ? HD / 8 : 1;  // K row held in registers (f16 only)
};

// The lane's registers for one 32-key tile: its key's K row (f16 caches) and the V words of
// the first kBatch keys, loaded together so that one memory round trip serves the tile.
template <int HD, bool F16>
struct Tile {
  uint4 k[Shape<HD, F16>::kKVec];
  uint32_t v[Shape<HD, F16>::kBatch][Shape<HD, F16>::kWords];
};

// V words of key row `row`, the lane's dims.
template <int HD, bool F16>
__device__ __forceinline__ void load_v(const void* vc, int64_t row, int lane,
                                       uint32_t (&w)[Shape<HD, F16>::kWords]) {
  constexpr int W = Shape<HD, F16>::kWords;
  const uint32_t* p =
      reinterpret_cast<const uint32_t*>(static_cast<const char*>(vc) + row * (F16 ? 2 : 4)) +
      lane * W;
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

// Issues the loads of the tile at k0 for its rows j with want(j): K row k0 + lane in lane
// j (f16 caches), V row k0 + j for j < kBatch (compile-time indices into the tile).
template <int HD, bool F16, class Want>
__device__ __forceinline__ void load_rows(const AttnParams& p, int64_t base, int64_t KV, int64_t k0,
                                          int lane, Tile<HD, F16>& t, Want want) {
  if constexpr (F16) {
    if (want(lane)) {
      const uint4* kr = reinterpret_cast<const uint4*>(static_cast<const __half*>(p.k_cache) +
                                                       base + (k0 + lane) * KV);
#pragma unroll
      for (int c = 0; c < HD / 8; ++c) t.k[c] = __ldg(kr + c);
    }
  }
#pragma unroll
  for (int j = 0; j < Shape<HD, F16>::kBatch; ++j) {
    if (want(j)) load_v<HD, F16>(p.v_cache, base + (k0 + j) * KV, lane, t.v[j]);
  }
}

// The tile [k0, k0 + nt) but its row `skip`.
template <int HD, bool F16>
__device__ __forceinline__ void load_tile(const AttnParams& p, int64_t base, int64_t KV, int64_t k0,
                                          int nt, int lane, Tile<HD, F16>& t, int skip = -1) {
  load_rows<HD, F16>(p, base, KV, k0, lane, t, [=](int j) { return j < nt && j != skip; });
}

// s[hh] += q_hh . k for the lane's key; q in shared memory [group][HD].
template <int HD, bool F16, int GW>
__device__ __forceinline__ void score(const AttnParams& p, int64_t row, const Tile<HD, F16>& t,
                                      const float* qs, int h0, int group, float (&s)[GW]) {
  const float4* q4 = reinterpret_cast<const float4*>(qs);
  constexpr int kVec = F16 ? 8 : 4;  // values per 16-byte load
#pragma unroll
  for (int c = 0; c < HD / kVec; ++c) {
    float k[kVec];
    if constexpr (F16) {
      const __half2* h2 = reinterpret_cast<const __half2*>(&t.k[c]);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(h2[e]);
        k[2 * e] = f.x;
        k[2 * e + 1] = f.y;
      }
    } else {
      const float4 v =
          __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(p.k_cache) + row) + c);
      k[0] = v.x, k[1] = v.y, k[2] = v.z, k[3] = v.w;
    }
#pragma unroll
    for (int a = 0; a < GW; ++a) {
      if (h0 + a < group) {
#pragma unroll
        for (int e4 = 0; e4 < kVec / 4; ++e4) {
          const float4 q = q4[((h0 + a) * HD + c * kVec) / 4 + e4];
          s[a] += q.x * k[4 * e4] + q.y * k[4 * e4 + 1] + q.z * k[4 * e4 + 2] + q.w * k[4 * e4 + 3];
        }
      }
    }
  }
}

// Warp w of the block: key tile kt = w % kDecWarps, head slice hs = w / kDecWarps, heads
// [hs * GW, hs * GW + GW) of the group (HS slices: the group rounded up to a power of two,
// cut in at most 4); the HS warps of a key tile read the same K and V rows (L1 hits).
template <int HD, bool F16, int GW, int HS>
__global__ void __launch_bounds__(kDecWarps* HS * 32)
    attn_decode_kernel(AttnParams p, int i0, int64_t chunk, int n_chunks, float scale, int exp) {
  using S = Shape<HD, F16>;
  constexpr int DL = S::kDl, NT = kDecWarps * HS * 32;
  extern __shared__ float smem[];
  const int group = p.n_head / p.n_head_kv, gd = group * HD;
  float* qs = smem;                         // [group][HD]
  float* pw = qs + gd;                      // [key tiles][32 keys][group] probabilities
  float* wo = pw + kDecWarps * 32 * group;  // [key tiles][group][HD] warp outputs
  float* wml = wo + kDecWarps * gd;         // [key tiles][group][2] warp m, l
  __shared__ int last;

  const int c = blockIdx.x, g = blockIdx.y, z = blockIdx.z, i = i0 + z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int kt = warp % kDecWarps, h0 = (warp / kDecWarps) * GW;
  const int H = p.n_head;
  const int64_t KV = int64_t(p.n_head_kv) * HD;
  // The batch area (positions, slots) was uploaded before the step: read it before the wait,
  // so that the K/V loads go out right after it (one round trip fewer).
  const int64_t n_pos = int64_t(__ldg(p.pos + i)) + 1;
  const int64_t base = int64_t(__ldg(p.seq + i)) * p.max_ctx * KV + int64_t(g) * HD;
  const int64_t p0 = int64_t(c) * chunk, p1 = p0 + chunk < n_pos ? p0 + chunk : n_pos;
  int64_t k0 = p0 + 32 * kt;
  const int nt0 = k0 < p1 ? static_cast<int>(p1 - k0 < 32 ? p1 - k0 : 32) : 0;
  Tile<HD, F16> tile;
  // One token: every cache row it reads but its own (which the rope kernel before this one
  // writes) is from earlier steps, so the first tile's K and V loads go out before the wait
  // (the rows come from device memory; the weights streamed since evicted them from L2).
  // With more tokens, others of the same slot may write rows this one reads.
  const bool early = p.n_tokens == 1 && exp == 0;
  const int own = static_cast<int>(n_pos - 1 - k0);  // the token's own row in the tile
  if (early && nt0 > 0) load_tile<HD, F16>(p, base, KV, k0, nt0, lane, tile, own);
  pdl_wait();  // q and the cache rows of this step come from the previous kernel
  pdl_trigger();
  if (p0 >= p1 || exp == 1) return;  // beyond the token's position
  const int n_active = static_cast<int>((n_pos + chunk - 1) / chunk);

  // The first tile's K and V loads (the own row, with early) go out before q is staged.
  if (nt0 > 0) {
    if (!early) {
      load_tile<HD, F16>(p, base, KV, k0, nt0, lane, tile);
    } else if (own >= 0 && own < nt0) {
      load_rows<HD, F16>(p, base, KV, k0, lane, tile, [=](int j) { return j == own; });
    }
  }
  const float* q = p.q + int64_t(i) * H * HD + int64_t(g) * gd;
  for (int e = tid; e < gd / 4; e += NT)
    reinterpret_cast<float4*>(qs)[e] = reinterpret_cast<const float4*>(q)[e];
  __syncthreads();
  if (exp == 2) {
    if (tid == 0) p.att[0] = qs[1] + __uint_as_float(tile.v[0][0] ^ tile.k[0].x);
    return;
  }

  float m_run[GW], l_run[GW], o[GW][DL];
#pragma unroll
  for (int a = 0; a < GW; ++a) {
    m_run[a] = -INFINITY;
    l_run[a] = 0.0f;
#pragma unroll
    for (int j = 0; j < DL; ++j) o[a][j] = 0.0f;
  }
  float* pr = pw + kt * 32 * group;
  for (; k0 < p1; k0 += 32 * kDecWarps) {
    const int nt = static_cast<int>(p1 - k0 < 32 ? p1 - k0 : 32);  // keys of this tile
    float s[GW];
#pragma unroll
    for (int a = 0; a < GW; ++a) s[a] = 0.0f;
    if (lane < nt) score<HD, F16, GW>(p, base + (k0 + lane) * KV, tile, qs, h0, group, s);
    // Softmax over the tile, the heads' reductions interleaved.
    float mx[GW], e[GW];
#pragma unroll
    for (int a = 0; a < GW; ++a) mx[a] = s[a] = lane < nt ? s[a] * scale : -INFINITY;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
#pragma unroll
      for (int a = 0; a < GW; ++a) mx[a] = fmaxf(mx[a], __shfl_xor_sync(0xffffffffu, mx[a], off));
    }
#pragma unroll
    for (int a = 0; a < GW; ++a) {
      mx[a] = fmaxf(m_run[a], mx[a]);  // the new running max
      e[a] = lane < nt ? expf(s[a] - mx[a]) : 0.0f;
      // The CPU rounds the probabilities only with an f16 cache.
      if (h0 + a < group) pr[lane * group + h0 + a] = F16 ? round_f16(e[a]) : e[a];
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
#pragma unroll
      for (int a = 0; a < GW; ++a) e[a] += __shfl_xor_sync(0xffffffffu, e[a], off);
    }
#pragma unroll
    for (int a = 0; a < GW; ++a) {
      const float al = m_run[a] == -INFINITY ? 0.0f : expf(m_run[a] - mx[a]);
      l_run[a] = l_run[a] * al + e[a];
      m_run[a] = mx[a];
#pragma unroll
      for (int j = 0; j < DL; ++j) o[a][j] *= al;
    }
    __syncwarp();
    for (int t0 = 0; t0 < nt; t0 += S::kBatch) {
      if (t0 > 0) {
#pragma unroll
        for (int t = 0; t < S::kBatch; ++t) {
          if (t0 + t < nt) load_v<HD, F16>(p.v_cache, base + (k0 + t0 + t) * KV, lane, tile.v[t]);
        }
      }
#pragma unroll
      for (int t = 0; t < S::kBatch; ++t) {
        if (t0 + t < nt) {
          float v[DL];
          v_floats<HD, F16>(tile.v[t], v);
          const float* pt = pr + (t0 + t) * group + h0;
#pragma unroll
          for (int a = 0; a < GW; ++a) {
            if (h0 + a < group) {
              const float w = pt[a];
#pragma unroll
              for (int j = 0; j < DL; ++j) o[a][j] = fmaf(w, v[j], o[a][j]);
            }
          }
        }
      }
    }
    __syncwarp();  // pr is rewritten by the next tile
    const int64_t kn = k0 + 32 * kDecWarps;
    if (kn < p1)
      load_tile<HD, F16>(p, base, KV, kn, static_cast<int>(p1 - kn < 32 ? p1 - kn : 32), lane,
                         tile);
  }
  if (exp == 3) {
    if (tid == 0) p.att[0] = o[0][0] + m_run[0] + l_run[0];
    return;
  }
  // The warps' (o, m, l) -> shared memory; a key tile without keys leaves m = -inf, l = 0.
#pragma unroll
  for (int a = 0; a < GW; ++a) {
    const int hh = h0 + a;
    if (hh < group) {
#pragma unroll
      for (int j = 0; j < DL; ++j) wo[(kt * group + hh) * HD + lane * DL + j] = o[a][j];
      if (lane == 0) {
        wml[(kt * group + hh) * 2] = m_run[a];
        wml[(kt * group + hh) * 2 + 1] = l_run[a];
      }
    }
  }
  __syncthreads();

  // Merge the key tiles (fixed order): element e = (head hh, dim d) of the group.
  int* counter = reinterpret_cast<int*>(p.part) + z * p.n_head_kv + g;
  float* part_o = p.part + dec_counter_floats(p.n_head_kv);
  float* part_ml = part_o + int64_t(kDecTokens) * H * n_chunks * HD;
  float* att = p.att + int64_t(i) * H * HD + int64_t(g) * gd;
  const int64_t slot_g =
      (int64_t(z) * H + int64_t(g) * group) * n_chunks;  // + hh * n_chunks + chunk
  for (int e = tid; e < gd; e += NT) {
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
      const int64_t slot = slot_g + int64_t(hh) * n_chunks + c;
      part_o[slot * HD + e % HD] = O;
      if (e % HD == 0) {
        part_ml[slot * 2] = M;
        part_ml[slot * 2 + 1] = L;
      }
    }
  }
  if (n_active == 1 || exp == 4) return;

  // The last chunk to finish merges them all, in chunk order.
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
  // Chunk weights e^(m_c - M) / L per head into shared memory ([chunk][group]).
  float* wc = wo;  // n_active * group <= kDecMaxChunks * group <= kDecWarps * gd floats
  for (int t = tid; t < n_active * group; t += NT) {
    const int cc = t / group, hh = t % group;
    wc[t] = __ldcg(part_ml + (slot_g + int64_t(hh) * n_chunks + cc) * 2);
    pw[t] = __ldcg(part_ml + (slot_g + int64_t(hh) * n_chunks + cc) * 2 + 1);
  }
  __syncthreads();
  if (tid < group) {
    float M = -INFINITY, L = 0.0f;
    for (int cc = 0; cc < n_active; ++cc) M = fmaxf(M, wc[cc * group + tid]);
    for (int cc = 0; cc < n_active; ++cc)
      L += pw[cc * group + tid] * expf(wc[cc * group + tid] - M);
    for (int cc = 0; cc < n_active; ++cc) wc[cc * group + tid] = expf(wc[cc * group + tid] - M) / L;
  }
  __syncthreads();
  constexpr int kPer = (GW * HS * HD + NT - 1) / NT;  // elements per thread
  float acc[kPer];
#pragma unroll
  for (int k = 0; k < kPer; ++k) acc[k] = 0.0f;
#pragma unroll 4
  for (int cc = 0; cc < n_active; ++cc) {
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int e = tid + k * NT;
      if (e < gd) {
        const int hh = e / HD;
        acc[k] += __ldcg(part_o + (slot_g + int64_t(hh) * n_chunks + cc) * HD + e % HD) *
                  wc[cc * group + hh];
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int e = tid + k * NT;
    if (e < gd) att[e] = acc[k];
  }
}

// GM: the group rounded up to a power of two, cut into HS = min(GM, 4) slices of GW heads.
// Every head's arithmetic is the same whatever the slices. Measured in a TinyLlama Q8_0
// decode graph on the H100 (2026-11-26): 4 slices 1.118 ms a token and 1.870 ms a
// 16-sequence step (ctx 512-640), 1 slice (128 threads) 1.206 / 1.943 ms; at ctx 16-144,
// 2 slices 1.047 / 1.859, 4 slices 1.073 / 1.836.
template <int HD, bool F16, int GW, int HS>
void launch_sliced(const AttnParams& p, cudaStream_t s);

template <int HD, bool F16, int GM>
void launch(const AttnParams& p, cudaStream_t s) {
  constexpr int HS = GM < 4 ? GM : 4;
  launch_sliced<HD, F16, GM / HS, HS>(p, s);
}

template <int HD, bool F16, int GW, int HS>
void launch_sliced(const AttnParams& p, cudaStream_t s) {
  const int group = p.n_head / p.n_head_kv;
  const int64_t chunk = dec_chunk(p.max_ctx);
  const int n_chunks = static_cast<int>((p.max_ctx + chunk - 1) / chunk);
  const size_t smem =
      sizeof(float) * (size_t(group) * HD + size_t(kDecWarps) * 32 * group +
                       size_t(kDecWarps) * group * HD + size_t(kDecWarps) * group * 2);
  const float scale = 1.0f / sqrtf(static_cast<float>(HD));
  // Timing experiments (results wrong): SHIMMY_CUDA_ATTN_EXP=1 stops after the launch and the
  // wait, 2 after the loads, 3 after the tiles, 4 before the chunk merge.
  // Only in builds configured with -DSHIMMY_CUDA_EXPERIMENTS=ON.
#ifdef SHIMMY_CUDA_EXPERIMENTS
  const char* e = std::getenv("SHIMMY_CUDA_ATTN_EXP");
  const int exp = e ? std::atoi(e) : 0;
#else
  const int exp = 0;
#endif
  for (int i0 = 0; i0 < p.n_tokens; i0 += kDecTokens) {
    const int n = p.n_tokens - i0 < kDecTokens ? p.n_tokens - i0 : kDecTokens;
    launch_pdl(attn_decode_kernel<HD, F16, GW, HS>,
               dim3(static_cast<unsigned>(n_chunks), static_cast<unsigned>(p.n_head_kv),
                    static_cast<unsigned>(n)),
               dim3(kDecWarps * HS * 32), smem, s, p, i0, chunk, n_chunks, scale, exp);
  }
}

template <int HD>
void launch_f16(const AttnParams& p, cudaStream_t s) {
  const int group = p.n_head / p.n_head_kv;
  if (group <= 1) return launch<HD, true, 1>(p, s);
  if (group <= 2) return launch<HD, true, 2>(p, s);
  if (group <= 4) return launch<HD, true, 4>(p, s);
  if (group <= 8) return launch<HD, true, 8>(p, s);
  if constexpr (HD == 64) launch<HD, true, 16>(p, s);
}

}  // namespace

void attention_decode(const AttnParams& p, cudaStream_t s) {
  if (p.n_tokens <= 0) return;
  // f16 caches: the group rounded up to a power of two; f32 caches (rare): the largest.
  if (p.hd == 64) {
    p.kv_f16 ? launch_f16<64>(p, s) : launch<64, false, 16>(p, s);
  } else {
    p.kv_f16 ? launch_f16<128>(p, s) : launch<128, false, 8>(p, s);
  }
}

}  // namespace shimmy::cuda
