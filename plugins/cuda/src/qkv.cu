// Bias, per-head q/k RMSNorm, rope, q rounding and the KV-cache store (kernels.h
// qkv_rope_store). One block per (head, token): blocks [0, n_head) take q heads, blocks
// [n_head, n_head + n_head_kv) take one k head and the v head of the same index.
#include "device_util.cuh"
#include "kernels.h"
#include "launch.h"

namespace shimmy::cuda {
namespace {

constexpr int kThreads = 128;

// Rotates the first n_rot dims of one head held in shared memory, as ops.cpp rope_apply.
__device__ void rope_head(float* v, const float* cs, int n_rot, bool neox) {
  const int half = n_rot / 2;
  for (int j = threadIdx.x; j < half; j += kThreads) {
    const float c = cs[2 * j], sn = cs[2 * j + 1];
    const int a = neox ? j : 2 * j, b = neox ? j + half : 2 * j + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, sn));
    v[b] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, c));
  }
}

template <bool F16>
__device__ void store_row(void* cache, int64_t off, const float* v, int hd) {
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    if constexpr (F16) {
      static_cast<__half*>(cache)[off + d] = __float2half_rn(v[d]);
    } else {
      static_cast<float*>(cache)[off + d] = v[d];
    }
  }
}

template <bool F16>
__global__ void __launch_bounds__(kThreads) qkv_kernel(QkvParams p) {
  extern __shared__ float head[];  // [hd]
  __shared__ double red[32];
  const int hidx = blockIdx.x, i = blockIdx.y, hd = p.hd;
  const bool is_q = hidx < p.n_head;
  const int hh = is_q ? hidx : hidx - p.n_head;
  pdl_wait();  // q, k, v come from the previous kernel
  pdl_trigger();
  const int64_t Q = int64_t(p.n_head) * hd, KV = int64_t(p.n_head_kv) * hd;
  const float* src = is_q ? p.q + i * p.ld_q + hh * hd : p.k + i * p.ld_kv + hh * hd;
  const float* bias = is_q ? p.bq : p.bk;
  const float* norm = is_q ? p.q_norm : p.k_norm;

  double acc = 0.0;
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float x = src[d];
    if (bias) x += bias[hh * hd + d];
    head[d] = x;
    acc += static_cast<double>(x) * x;
  }
  if (norm) {
    const float scale = rms_scale(block_sum(acc, red), hd, p.eps);
    for (int d = threadIdx.x; d < hd; d += kThreads) head[d] = __fmul_rn(head[d], scale) * norm[d];
  }
  __syncthreads();
  rope_head(head, p.cs + int64_t(i) * p.n_rot, p.n_rot, p.neox);
  __syncthreads();

  if (is_q) {
    float* dst = p.q_out + i * Q + hh * hd;
    for (int d = threadIdx.x; d < hd; d += kThreads) dst[d] = round_f16(head[d]);
    return;
  }
  const int64_t row = (int64_t(p.seq[i]) * p.max_ctx + p.pos[i]) * KV + int64_t(hh) * hd;
  store_row<F16>(p.k_cache, row, head, hd);
  // v: bias only, then the same cache row.
  const float* vs = p.v + i * p.ld_kv + hh * hd;
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float x = vs[d];
    if (p.bv) x += p.bv[hh * hd + d];
    if constexpr (F16) {
      static_cast<__half*>(p.v_cache)[row + d] = __float2half_rn(x);
    } else {
      static_cast<float*>(p.v_cache)[row + d] = x;
    }
  }
}

}  // namespace

void qkv_rope_store(const QkvParams& p, cudaStream_t s) {
  if (p.n_tokens <= 0) return;
  const dim3 grid(static_cast<unsigned>(p.n_head + p.n_head_kv), static_cast<unsigned>(p.n_tokens));
  const size_t smem = sizeof(float) * static_cast<size_t>(p.hd);
  if (p.kv_f16) {
    launch_pdl(qkv_kernel<true>, grid, dim3(kThreads), smem, s, p);
  } else {
    launch_pdl(qkv_kernel<false>, grid, dim3(kThreads), smem, s, p);
  }
}

}  // namespace shimmy::cuda
