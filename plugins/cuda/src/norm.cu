// Fused residual add + RMSNorm (kernels.h residual_rmsnorm).
//
// A decode step runs two of these a layer, each on the critical path, so the kernel is
// built around round trips to memory: the norm weight and the output row index do not
// depend on the previous kernel and are loaded before the PDL wait; x and add arrive in one
// batch of loads and stay in registers (rows of up to kThreads * kPer values), so the
// second pass needs no loads. Longer rows take the same operations from memory.
#include "device_util.cuh"
#include "kernels.h"
#include "launch.h"

namespace shimmy::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kPer = 16;  // values a thread keeps: rows up to 4096

__global__ void __launch_bounds__(kThreads)
    residual_rmsnorm_kernel(float* __restrict__ x, const float* __restrict__ add,
                            const float* __restrict__ w, float* __restrict__ h,
                            const int32_t* __restrict__ out_row, int64_t n, float eps) {
  __shared__ double red[32];
  const int64_t row = blockIdx.x;
  const int tid = threadIdx.x;
  const bool regs = n <= int64_t(kThreads) * kPer;
  // Not written by the previous kernels: the weights and the batch area.
  float wv[kPer];
  if (regs && h) {
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int64_t j = tid + int64_t(k) * kThreads;
      wv[k] = j < n ? __ldg(w + j) : 0.f;
    }
  }
  const int64_t dst = out_row ? __ldg(out_row + row) : row;
  pdl_wait();  // x and add come from the previous kernels
  pdl_trigger();
  float* xr = x + row * n;
  double acc = 0.0;
  if (regs) {
    float v[kPer];
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int64_t j = tid + int64_t(k) * kThreads;
      v[k] = j < n ? xr[j] : 0.f;
    }
    if (add) {
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        const int64_t j = tid + int64_t(k) * kThreads;
        if (j < n) v[k] += add[row * n + j];
      }
    }
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int64_t j = tid + int64_t(k) * kThreads;
      if (j < n) {
        if (add) xr[j] = v[k];
        acc += static_cast<double>(v[k]) * v[k];
      }
    }
    if (!h) return;
    const float scale = rms_scale(block_sum(acc, red), n, eps);
    if (dst < 0) return;
    float* hr = h + dst * n;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int64_t j = tid + int64_t(k) * kThreads;
      if (j < n) hr[j] = __fmul_rn(v[k], scale) * wv[k];
    }
    return;
  }
  for (int64_t j = tid; j < n; j += kThreads) {
    float v = xr[j];
    if (add) {
      v += add[row * n + j];
      xr[j] = v;
    }
    acc += static_cast<double>(v) * v;
  }
  if (!h) return;
  const float scale = rms_scale(block_sum(acc, red), n, eps);
  if (dst < 0) return;
  float* hr = h + dst * n;
  for (int64_t j = tid; j < n; j += kThreads) hr[j] = __fmul_rn(xr[j], scale) * w[j];
}

}  // namespace

void residual_rmsnorm(float* x, const float* add, const float* w, float* h, const int32_t* out_row,
                      int64_t rows, int64_t n, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  launch_pdl(residual_rmsnorm_kernel, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, s, x,
             add, w, h, out_row, n, eps);
}

}  // namespace shimmy::cuda
