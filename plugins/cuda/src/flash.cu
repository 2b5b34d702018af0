// Flash attention for prompt processing (kernels.h attention_flash): tensor cores (wmma,
// f16 in, f32 accumulate) over 64-query x 64-key tiles with an online softmax, so the
// n x n score matrix never leaves shared memory and K/V are read once per 64 queries.
//
// Block (query tile, head h): 4 warps, warp w owns query rows 16w..16w+15 of the tile.
// Per key tile [t0, t0 + 64) up to the tile's largest position:
//   all:    K and V rows of kv head h / group -> shared memory (f16, zero past the end)
//   warp:   S = Q K^T (wmma), s = S * scale, masked to keys <= the row's position
//           online softmax per row (2 lanes a row): m, l, alpha = e^(m_old - m_new);
//           P = f16(e^(s - m_new))  (the CPU rounds its normalised probabilities to f16)
//           O = O * alpha + P V (wmma per 16 output dims, O in shared memory, f32)
// and finally att = O / l. All rows of the batch belong to one sequence slot (the caller
// checks); their positions may be anything (a prompt continuing a cached prefix, too).
#include <cuda_fp16.h>
#include <mma.h>

#include <cmath>

#include "device_util.cuh"
#include "kernels.h"

namespace shimmy::cuda {
namespace {

using namespace nvcuda;

constexpr int kQ = 64, kK = 64, kWarps = 4, kThreads = 32 * kWarps;
constexpr int kSld = kK + 4;  // floats per S row
constexpr int kPld = kK + 8;  // halves per P row

struct FlashSmem {
  int ld;  // halves per Q/K/V row (hd + 8)
  size_t q, k, v, s, p, o, pos, bytes;
};

__host__ __device__ inline FlashSmem flash_smem(int hd) {
  FlashSmem f;
  f.ld = hd + 8;
  size_t off = 0;
  auto take = [&](size_t b) {
    const size_t at = off;
    off += (b + 127) / 128 * 128;
    return at;
  };
  f.q = take(size_t(kQ) * f.ld * 2);
  f.k = take(size_t(kK) * f.ld * 2);
  f.v = take(size_t(kK) * f.ld * 2);
  f.s = take(size_t(kWarps) * 16 * kSld * 4);
  f.p = take(size_t(kWarps) * 16 * kPld * 2);
  f.o = take(size_t(kQ) * (hd + 4) * 4);
  f.pos = take(size_t(kQ) * 4 + kWarps * 16 * 4);  // row positions, then alpha per row
  f.bytes = off;
  return f;
}

__global__ void __launch_bounds__(kThreads) flash_kernel(AttnParams p, float scale) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int hd = p.hd, h = blockIdx.y, group = p.n_head / p.n_head_kv, g = h / group;
  const FlashSmem f = flash_smem(hd);
  const int ld = f.ld, old = hd + 4;
  __half* Qs = reinterpret_cast<__half*>(smem + f.q);
  __half* Ks = reinterpret_cast<__half*>(smem + f.k);
  __half* Vs = reinterpret_cast<__half*>(smem + f.v);
  int* pos_s = reinterpret_cast<int*>(smem + f.pos);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  float* Sw = reinterpret_cast<float*>(smem + f.s) + warp * 16 * kSld;
  __half* Pw = reinterpret_cast<__half*>(smem + f.p) + warp * 16 * kPld;
  float* Os = reinterpret_cast<float*>(smem + f.o);
  float* alpha_w = reinterpret_cast<float*>(pos_s + kQ) + warp * 16;

  const int i0 = blockIdx.x * kQ;
  const int64_t Q = int64_t(p.n_head) * hd, KV = int64_t(p.n_head_kv) * hd;
  // Rows of the tile: position (-1 past the batch), q as f16 (exact: q is f16-rounded).
  for (int r = tid; r < kQ; r += kThreads) pos_s[r] = i0 + r < p.n_tokens ? p.pos[i0 + r] : -1;
  for (int e = tid; e < kQ * hd; e += kThreads) {
    const int r = e / hd, d = e % hd;
    Qs[r * ld + d] =
        __float2half_rn(i0 + r < p.n_tokens ? p.q[(i0 + r) * Q + int64_t(h) * hd + d] : 0.0f);
  }
  for (int e = tid; e < kQ * old; e += kThreads) Os[e] = 0.0f;
  __syncthreads();
  int max_pos = -1;
  for (int r = 0; r < kQ; ++r) max_pos = max(max_pos, pos_s[r]);
  const int64_t seq = p.seq[i0];
  const __half* kc = static_cast<const __half*>(p.k_cache) + seq * p.max_ctx * KV + int64_t(g) * hd;
  const __half* vc = static_cast<const __half*>(p.v_cache) + seq * p.max_ctx * KV + int64_t(g) * hd;

  // This lane's row (2 lanes a row) and its running statistics.
  const int row = lane >> 1, half_ = lane & 1;
  const int my_pos = pos_s[warp * 16 + row];
  float m_run = -INFINITY, l_run = 0.0f;

  for (int t0 = 0; t0 <= max_pos; t0 += kK) {
    __syncthreads();  // the previous tile's K/V are no longer read
    const int chunks = hd / 8;
    for (int e = tid; e < kK * chunks; e += kThreads) {
      const int r = e / chunks, c = e % chunks;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (t0 + r <= max_pos) {
        kv = *reinterpret_cast<const uint4*>(kc + int64_t(t0 + r) * KV + c * 8);
        vv = *reinterpret_cast<const uint4*>(vc + int64_t(t0 + r) * KV + c * 8);
      }
      *reinterpret_cast<uint4*>(Ks + r * ld + c * 8) = kv;
      *reinterpret_cast<uint4*>(Vs + r * ld + c * 8) = vv;
    }
    __syncthreads();

    // S = Q K^T for this warp's 16 rows.
    for (int j = 0; j < kK / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int k = 0; k < hd / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
        wmma::load_matrix_sync(a, Qs + warp * 16 * ld + k * 16, ld);
        wmma::load_matrix_sync(b, Ks + j * 16 * ld + k * 16, ld);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(Sw + j * 16, acc, kSld, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax: this lane takes 32 columns of its row.
    float* srow = Sw + row * kSld + half_ * 32;
    float mx = -INFINITY;
    for (int c = 0; c < 32; ++c) {
      const int key = t0 + half_ * 32 + c;
      const float s = key <= my_pos ? srow[c] * scale : -INFINITY;
      srow[c] = s;
      mx = fmaxf(mx, s);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m_run, mx);
    float sum = 0.0f;
    __half* prow = Pw + row * kPld + half_ * 32;
    for (int c = 0; c < 32; ++c) {
      const float e = m_new == -INFINITY ? 0.0f : expf(srow[c] - m_new);
      sum += e;
      prow[c] = __float2half_rn(e);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    const float alpha = m_run == -INFINITY ? 0.0f : expf(m_run - m_new);
    l_run = l_run * alpha + sum;
    m_run = m_new;
    if (half_ == 0) alpha_w[row] = alpha;
    __syncwarp();

    // O = O * alpha + P V, 16 output dims at a time through a 16x16 scratch (Sw, now free).
    for (int dt = 0; dt < hd / 16; ++dt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int k = 0; k < kK / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> b;
        wmma::load_matrix_sync(a, Pw + k * 16, kPld);
        wmma::load_matrix_sync(b, Vs + k * 16 * ld + dt * 16, ld);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(Sw, acc, kSld, wmma::mem_row_major);
      __syncwarp();
      float* orow = Os + (warp * 16 + row) * old + dt * 16 + half_ * 8;
      const float* trow = Sw + row * kSld + half_ * 8;
      for (int c = 0; c < 8; ++c) orow[c] = orow[c] * alpha_w[row] + trow[c];
      __syncwarp();
    }
  }

  const int r = warp * 16 + row;
  if (i0 + r >= p.n_tokens) return;
  const float inv = 1.0f / l_run;
  float* out = p.att + int64_t(i0 + r) * Q + int64_t(h) * hd;
  for (int d = half_; d < hd; d += 2) out[d] = Os[r * old + d] * inv;
}

}  // namespace

bool flash_supported(int hd, bool kv_f16) {
  return kv_f16 && hd % 16 == 0 && hd >= 16 && hd <= 128;
}

size_t flash_smem_bytes(int hd) {
  return flash_smem(hd).bytes;
}

void attention_flash(const AttnParams& p, cudaStream_t s) {
  if (p.n_tokens <= 0) return;
  const size_t smem = flash_smem(p.hd).bytes;
  // Above 48 KiB a kernel must opt in, once per device.
  static int done[64] = {};
  int dev = 0;
  cudaGetDevice(&dev);
  if (dev < 64 && !done[dev]) {
    cudaFuncSetAttribute(flash_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(flash_smem(128).bytes));
    done[dev] = 1;
  }
  const float scale = 1.0f / sqrtf(static_cast<float>(p.hd));
  const dim3 grid(static_cast<unsigned>((p.n_tokens + kQ - 1) / kQ),
                  static_cast<unsigned>(p.n_head));
  flash_kernel<<<grid, kThreads, smem, s>>>(p, scale);
}

}  // namespace shimmy::cuda
