// SwiGLU of the feed-forward block (kernels.h swiglu).
#include "kernels.h"

namespace shimmy::cuda {
namespace {

__global__ void swiglu_kernel(const float* __restrict__ g, float* __restrict__ u, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float x = g[i];
    u[i] = x / (1.0f + expf(-x)) * u[i];  // as ops.cpp: silu(g) * u, same operation order
  }
}

}  // namespace

void swiglu(const float* gate, float* up, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  const int64_t blocks = (n + 255) / 256;
  swiglu_kernel<<<static_cast<unsigned>(blocks < 65535 ? blocks : 65535), 256, 0, s>>>(gate, up, n);
}

}  // namespace shimmy::cuda
