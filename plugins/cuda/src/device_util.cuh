// Device helpers shared by the layer kernels: warp/block reductions and f16 rounding.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace shimmy::cuda {

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum of one value per thread over the block (blockDim.x a multiple of 32, <= 1024); every
// thread gets the total. `red` holds 32 values of shared memory.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // red may still be read by a previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  T t = lane < n_warps ? red[lane] : T(0);
  return warp_sum(t);
}

// 1 / sqrt(mean + eps) exactly as the CPU computes it (ops.cpp rms_norm): the mean of the
// squares in double, rounded to float once.
__device__ __forceinline__ float rms_scale(double sum_sq, int64_t n, float eps) {
  return 1.0f / sqrtf(static_cast<float>(sum_sq / static_cast<double>(n)) + eps);
}

__device__ __forceinline__ float round_f16(float x) {
  return __half2float(__float2half_rn(x));
}

// One rope pair (x0, x1) rotated by (cos, sin), as ops.cpp rope_apply.
__device__ __forceinline__ void rope_rotate(float& x0, float& x1, float c, float sn) {
  const float a = x0, b = x1;
  x0 = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, sn));
  x1 = __fadd_rn(__fmul_rn(a, sn), __fmul_rn(b, c));
}

}  // namespace shimmy::cuda

namespace shimmy::cuda {

// Programmatic dependent launch (sm_90+; no-ops before). A kernel launched by launch_pdl()
// may start while its predecessor in the stream still runs: it must call pdl_wait() before
// it reads anything the predecessor writes (every block, before any early exit, so that
// completion stays ordered down the chain). pdl_trigger() lets the successor launch.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n");
#endif
}

}  // namespace shimmy::cuda
