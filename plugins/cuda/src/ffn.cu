// SwiGLU of the feed-forward block (kernels.h swiglu, swiglu_rows).
#include "device_util.cuh"
#include "kernels.h"
#include "launch.h"

namespace shimmy::cuda {
namespace {

// out[r][j] = silu(g[r][j]) * u[r][j] over rows x f values, inputs ld apart, out f apart.
__global__ void swiglu_kernel(const float* __restrict__ g, const float* u, int64_t ld, float* out,
                              int64_t rows, int64_t f) {
  pdl_wait();  // gate and up come from the previous kernel
  pdl_trigger();
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < f;
         j += int64_t(gridDim.x) * blockDim.x) {
      const float x = g[r * ld + j];
      out[r * f + j] = x / (1.0f + expf(-x)) * u[r * ld + j];  // as ops.cpp: silu(g) * u, same order
    }
  }
}

}  // namespace

void swiglu_rows(const float* gate, const float* up, int64_t ld, float* out, int64_t rows, int64_t f,
                 cudaStream_t s) {
  if (rows <= 0 || f <= 0) return;
  const int64_t bx = (f + 255) / 256;
  const dim3 grid(static_cast<unsigned>(bx < 65535 ? bx : 65535),
                  static_cast<unsigned>(rows < 65535 ? rows : 65535));
  launch_pdl(swiglu_kernel, grid, dim3(256), 0, s, gate, up, ld, out, rows, f);
}

void swiglu(const float* gate, float* up, int64_t n, cudaStream_t s) {
  swiglu_rows(gate, up, n, up, 1, n, s);
}

}  // namespace shimmy::cuda
