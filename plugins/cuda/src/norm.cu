// Fused residual add + RMSNorm (kernels.h residual_rmsnorm).
#include "device_util.cuh"
#include "kernels.h"
#include "launch.h"

namespace shimmy::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    residual_rmsnorm_kernel(float* __restrict__ x, const float* __restrict__ add,
                            const float* __restrict__ w, float* __restrict__ h,
                            const int32_t* __restrict__ out_row, int64_t n, float eps) {
  __shared__ double red[32];
  pdl_wait();  // x and add come from the previous kernels
  pdl_trigger();
  const int64_t row = blockIdx.x;
  float* xr = x + row * n;
  double acc = 0.0;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) {
    float v = xr[j];
    if (add) {
      v += add[row * n + j];
      xr[j] = v;
    }
    acc += static_cast<double>(v) * v;
  }
  if (!h) return;
  const float scale = rms_scale(block_sum(acc, red), n, eps);
  const int64_t dst = out_row ? out_row[row] : row;
  if (dst < 0) return;
  float* hr = h + dst * n;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) hr[j] = __fmul_rn(xr[j], scale) * w[j];
}

}  // namespace

void residual_rmsnorm(float* x, const float* add, const float* w, float* h, const int32_t* out_row,
                      int64_t rows, int64_t n, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  launch_pdl(residual_rmsnorm_kernel, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, s, x,
             add, w, h, out_row, n, eps);
}

}  // namespace shimmy::cuda
