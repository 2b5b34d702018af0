// SwiGLU of the feed-forward block (kernels.h swiglu, swiglu_rows).
#include "device_util.cuh"
#include "kernels.h"
#include "launch.h"

namespace shimmy::cuda {
namespace {

// out[r][j] = silu(g[r][j]) * u[r][j] over rows x f values, inputs ld apart, out f apart.
// kInter8: g and u are one [rows, 2f] product interleaved by 8 (mm/matmul.h matmul_swiglu):
// gate j at column 16 (j / 8) + j % 8, up 8 further; u is unused.
template <bool kInter8>
__global__ void swiglu_kernel(const float* __restrict__ g, const float* u, int64_t ld, float* out,
                              int64_t rows, int64_t f) {
  pdl_wait();  // gate and up come from the previous kernel
  pdl_trigger();
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < f;
         j += int64_t(gridDim.x) * blockDim.x) {
      const int64_t jg = kInter8 ? (j >> 3) * 16 + (j & 7) : j;
      const float x = g[r * ld + jg];
      const float y = kInter8 ? g[r * ld + jg + 8] : u[r * ld + j];
      out[r * f + j] = x / (1.0f + expf(-x)) * y;  // as ops.cpp: silu(g) * u, same order
    }
  }
}

dim3 swiglu_grid(int64_t rows, int64_t f) {
  const int64_t bx = (f + 255) / 256;
  return dim3(static_cast<unsigned>(bx < 65535 ? bx : 65535),
              static_cast<unsigned>(rows < 65535 ? rows : 65535));
}

}  // namespace

void swiglu_rows(const float* gate, const float* up, int64_t ld, float* out, int64_t rows,
                 int64_t f, cudaStream_t s) {
  if (rows <= 0 || f <= 0) return;
  launch_pdl(swiglu_kernel<false>, swiglu_grid(rows, f), dim3(256), 0, s, gate, up, ld, out, rows,
             f);
}

void swiglu_rows8(const float* gu, int64_t ld, float* out, int64_t rows, int64_t f,
                  cudaStream_t s) {
  if (rows <= 0 || f <= 0) return;
  launch_pdl(swiglu_kernel<true>, swiglu_grid(rows, f), dim3(256), 0, s, gu, gu, ld, out, rows, f);
}

void swiglu(const float* gate, float* up, int64_t n, cudaStream_t s) {
  swiglu_rows(gate, up, n, up, 1, n, s);
}

}  // namespace shimmy::cuda
