// Bias, per-head q/k RMSNorm, rope, q rounding and the KV-cache store (kernels.h
// qkv_rope_store). One block per (head, token): blocks [0, n_head) take q heads, blocks
// [n_head, n_head + n_head_kv) take one k head and the v head of the same index.
//
// On the critical path of every decode layer, so built around round trips to memory: what
// the previous kernel does not write (biases, norm weights, the rope table, the slot and
// position of the cache row) is loaded before the PDL wait, and the head's q or k/v values
// arrive in one batch of loads after it. A thread holds dims d and d + blockDim (kPer = 2)
// and rotates pair j = its index; blocks have max(128, hd / 2) threads.
#include <algorithm>

#include "device_util.cuh"
#include "kernels.h"
#include "launch.h"

namespace shimmy::cuda {
namespace {

constexpr int kMinThreads = 128;
constexpr int kPer = 2;

template <bool F16>
__global__ void __launch_bounds__(1024) qkv_kernel(QkvParams p) {
  extern __shared__ float head[];  // [hd]
  __shared__ double red[32];
  const int hidx = blockIdx.x, i = blockIdx.y, hd = p.hd, tid = threadIdx.x, nth = blockDim.x;
  const bool is_q = hidx < p.n_head;
  const int hh = is_q ? hidx : hidx - p.n_head;
  const int64_t Q = int64_t(p.n_head) * hd, KV = int64_t(p.n_head_kv) * hd;
  const float* bias = is_q ? p.bq : p.bk;
  const float* norm = is_q ? p.q_norm : p.k_norm;
  const int half = p.n_rot / 2;

  // Before the wait: nothing here is written by the previous kernel.
  float bb[kPer] = {}, bv[kPer] = {}, nw[kPer] = {};  // bias of q or k, of v, norm
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int d = tid + k * nth;
    if (d >= hd) continue;
    if (bias) bb[k] = __ldg(bias + int64_t(hh) * hd + d);
    if (!is_q && p.bv) bv[k] = __ldg(p.bv + int64_t(hh) * hd + d);
    if (norm) nw[k] = __ldg(norm + d);
  }
  float c = 0.f, sn = 0.f;
  if (tid < half) {
    c = __ldg(p.cs + int64_t(i) * p.n_rot + 2 * tid);
    sn = __ldg(p.cs + int64_t(i) * p.n_rot + 2 * tid + 1);
  }
  const int64_t row =
      is_q ? 0 : (int64_t(__ldg(p.seq + i)) * p.max_ctx + __ldg(p.pos + i)) * KV + int64_t(hh) * hd;

  pdl_wait();  // q, k, v come from the previous kernel
  pdl_trigger();
  const float* src = is_q ? p.q + i * p.ld_q + hh * hd : p.k + i * p.ld_kv + hh * hd;
  const float* vs = p.v + i * p.ld_kv + hh * hd;
  float x[kPer] = {}, vv[kPer] = {};
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int d = tid + k * nth;
    if (d >= hd) continue;
    x[k] = src[d];
    if (!is_q) vv[k] = vs[d];
  }
  double acc = 0.0;
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int d = tid + k * nth;
    if (d >= hd) continue;
    if (bias) x[k] += bb[k];
    head[d] = x[k];
    acc += static_cast<double>(x[k]) * x[k];
  }
  if (norm) {
    const float scale = rms_scale(block_sum(acc, red), hd, p.eps);
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int d = tid + k * nth;
      if (d < hd) head[d] = __fmul_rn(head[d], scale) * nw[k];
    }
  }
  __syncthreads();
  if (tid < half) {  // as ops.cpp rope_apply
    const int a = p.neox ? tid : 2 * tid, b = p.neox ? tid + half : 2 * tid + 1;
    rope_rotate(head[a], head[b], c, sn);
  }
  __syncthreads();

  if (is_q) {
    float* dst = p.q_out + i * Q + hh * hd;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int d = tid + k * nth;
      if (d < hd) dst[d] = round_f16(head[d]);
    }
    return;
  }
#pragma unroll
  for (int k = 0; k < kPer; ++k) {  // k from the rotated head; v: bias only
    const int d = tid + k * nth;
    if (d >= hd) continue;
    const float kv = head[d], v = p.bv ? vv[k] + bv[k] : vv[k];
    if constexpr (F16) {
      static_cast<__half*>(p.k_cache)[row + d] = __float2half_rn(kv);
      static_cast<__half*>(p.v_cache)[row + d] = __float2half_rn(v);
    } else {
      static_cast<float*>(p.k_cache)[row + d] = kv;
      static_cast<float*>(p.v_cache)[row + d] = v;
    }
  }
}

}  // namespace

void qkv_rope_store(const QkvParams& p, cudaStream_t s) {
  if (p.n_tokens <= 0) return;
  const dim3 grid(static_cast<unsigned>(p.n_head + p.n_head_kv), static_cast<unsigned>(p.n_tokens));
  // kPer dims a thread, one rope pair a thread (n_rot <= hd <= 2048).
  const int threads = std::min(1024, std::max(kMinThreads, (p.hd / 2 + 31) / 32 * 32));
  const size_t smem = sizeof(float) * static_cast<size_t>(p.hd);
  if (p.kv_f16) {
    launch_pdl(qkv_kernel<true>, grid, dim3(threads), smem, s, p);
  } else {
    launch_pdl(qkv_kernel<false>, grid, dim3(threads), smem, s, p);
  }
}

}  // namespace shimmy::cuda
