// A slow, simple reference implementation of the matmul.h contract (namespace ref, see
// matmul_ref.h): the products whose shape the tensor-core kernels of src/mm/ do not take
// (an input dimension that is not a multiple of 32, such as stories260K's FFN of 172) run
// here. Weights stay in their GGUF layout and are dequantized value by value; products
// accumulate in f32.
//   m > 8: each block of 256 threads computes an 8 (weight rows) x 32 (activation rows)
//          tile of y: it dequantizes 256-column slices of its 8 rows to f32 in shared
//          memory, stages the matching x slice, and accumulates plain dot products.
//   m <= 8 (decode): one warp per weight row, lanes over consecutive columns (a 32-value
//          block per step), all m activation rows at once, then a warp sum.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common.h"
#include "ggml_types.h"
#include "matmul_ref.h"
#include "mm/matmul.h"

namespace shimmy::cuda::ref {
namespace {

__device__ __forceinline__ float h2f(const uint8_t* p) {
  return __half2float(__ushort_as_half(static_cast<uint16_t>(p[0] | (p[1] << 8))));
}
__device__ __forceinline__ uint32_t u32_at(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

// 6-bit scale and min j of a Q4_K/Q5_K scales[12] array.
__device__ __forceinline__ void k4_scale_min(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

__constant__ int8_t kIQ4NLGrid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

// Value c of a row in GGUF layout `row`.
template <uint32_t T>
__device__ float deq(const uint8_t* row, int64_t c) {
  if constexpr (T == kF32) {
    return reinterpret_cast<const float*>(row)[c];
  } else if constexpr (T == kF16) {
    return h2f(row + 2 * c);
  } else if constexpr (T == kBF16) {
    return __uint_as_float(uint32_t(row[2 * c] | (row[2 * c + 1] << 8)) << 16);
  } else if constexpr (T == kQ4_0 || T == kQ4_1 || T == kQ5_0 || T == kQ5_1 || T == kQ8_0 ||
                       T == kIQ4_NL) {
    constexpr BlockTraits bt = block_traits(T);
    const uint8_t* b = row + (c / 32) * bt.block_bytes;
    const int j = static_cast<int>(c % 32);
    const float d = h2f(b);
    if constexpr (T == kQ8_0) {
      return float(static_cast<int8_t>(b[2 + j])) * d;
    } else {
      // qs follows d (Q4_0, IQ4_NL), d+m (Q4_1), d+qh (Q5_0) or d+m+qh (Q5_1).
      constexpr int qs_off = T == kQ4_0 || T == kIQ4_NL ? 2 : T == kQ4_1 ? 4 : T == kQ5_0 ? 6 : 8;
      const uint8_t byte = b[qs_off + (j & 15)];
      int q = j < 16 ? (byte & 0xF) : (byte >> 4);
      if constexpr (T == kIQ4_NL) return d * float(kIQ4NLGrid[q]);
      if constexpr (T == kQ5_0 || T == kQ5_1) q |= int((u32_at(b + qs_off - 4) >> j) & 1) << 4;
      if constexpr (T == kQ4_0) return float(q - 8) * d;
      if constexpr (T == kQ5_0) return float(q - 16) * d;
      const float m = h2f(b + 2);  // Q4_1, Q5_1
      return float(q) * d + m;
    }
  } else {
    constexpr BlockTraits bt = block_traits(T);
    const uint8_t* b = row + (c / 256) * bt.block_bytes;
    const int v = static_cast<int>(c % 256);
    const int h = v / 128, j = (v % 128) / 32, l = v % 32;
    if constexpr (T == kQ2_K) {  // scales[16] qs[64] d dmin
      const float d = h2f(b + 80), dmin = h2f(b + 82);
      const uint8_t sc = b[v / 16];
      const int q = (b[16 + 32 * h + l] >> (2 * j)) & 3;
      return d * float(sc & 0xF) * float(q) - dmin * float(sc >> 4);
    } else if constexpr (T == kQ3_K) {  // hmask[32] qs[64] scales[12] d
      const uint8_t* s = b + 96;
      const int i = v / 16;
      const int lo = i < 8 ? (s[i] & 0xF) : (s[i - 8] >> 4);
      const int hi2 = (s[8 + (i % 4)] >> (2 * (i / 4))) & 3;
      const float dl = h2f(b + 108) * float((lo | (hi2 << 4)) - 32);
      const int q2 = (b[32 + 32 * h + l] >> (2 * j)) & 3;
      const int hb = (b[l] >> (4 * h + j)) & 1;
      return dl * float(q2 - (hb ? 0 : 4));
    } else if constexpr (T == kQ4_K || T == kQ5_K) {  // d dmin scales[12] (qh[32]) qs[128]
      const int ch = v / 32;
      int sc, m;
      k4_scale_min(ch, b + 4, sc, m);
      const float d1 = h2f(b) * float(sc), m1 = h2f(b + 2) * float(m);
      const uint8_t* qs = b + (T == kQ4_K ? 16 : 48);
      const uint8_t byte = qs[32 * (ch / 2) + l];
      int q = (ch & 1) ? (byte >> 4) : (byte & 0xF);
      if constexpr (T == kQ5_K) q |= ((b[16 + l] >> ch) & 1) << 4;
      return d1 * float(q) - m1;
    } else {  // Q6_K: ql[128] qh[64] scales[16] d
      static_assert(T == kQ6_K, "unhandled type");
      const uint8_t ql = b[64 * h + 32 * (j & 1) + l];
      const int lo = j < 2 ? (ql & 0xF) : (ql >> 4);
      const int hi = (b[128 + 32 * h + l] >> (2 * j)) & 3;
      const float d = h2f(b + 208);
      return d * float(static_cast<int8_t>(b[192 + v / 16])) * float((lo | (hi << 4)) - 32);
    }
  }
}

constexpr int kTileR = 8, kTileM = 32, kTileK = 256, kThreads = 256;

template <uint32_t T>
__global__ void __launch_bounds__(kThreads)
    matmul_fallback_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int64_t rows,
                           int64_t cols, const float* __restrict__ x, int64_t m,
                           float* __restrict__ y, int64_t ldy) {
  __shared__ float ws[kTileR][kTileK + 1];
  __shared__ float xs[kTileM][kTileK + 1];
  const int t = threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.x) * kTileR, i0 = int64_t(blockIdx.y) * kTileM;
  const int r = t % kTileR, i = t / kTileR;
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < cols; k0 += kTileK) {
    const int kc = static_cast<int>(cols - k0 < kTileK ? cols - k0 : kTileK);
    for (int e = t; e < kTileR * kTileK; e += kThreads) {
      const int rr = e / kTileK, kk = e % kTileK;
      ws[rr][kk] = (r0 + rr < rows && kk < kc) ? deq<T>(W + (r0 + rr) * row_bytes, k0 + kk) : 0.0f;
    }
    for (int e = t; e < kTileM * kTileK; e += kThreads) {
      const int ii = e / kTileK, kk = e % kTileK;
      xs[ii][kk] = (i0 + ii < m && kk < kc) ? x[(i0 + ii) * cols + k0 + kk] : 0.0f;
    }
    __syncthreads();
    for (int kk = 0; kk < kc; ++kk) acc += ws[r][kk] * xs[i][kk];
    __syncthreads();
  }
  if (r0 + r < rows && i0 + i < m) y[(i0 + i) * ldy + r0 + r] = acc;
}

constexpr int kGemvMaxM = 8, kGemvWarps = 8;

template <uint32_t T>
__global__ void __launch_bounds__(32 * kGemvWarps)
    gemv_fallback_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int64_t rows,
                         int64_t cols, const float* __restrict__ x, int m, float* __restrict__ y,
                         int64_t ldy) {
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t(blockIdx.x) * kGemvWarps + (threadIdx.x >> 5);
  if (r >= rows) return;
  const uint8_t* row = W + r * row_bytes;
  float acc[kGemvMaxM];
#pragma unroll
  for (int i = 0; i < kGemvMaxM; ++i) acc[i] = 0.0f;
  for (int64_t c = lane; c < cols; c += 32) {
    const float w = deq<T>(row, c);
#pragma unroll
    for (int i = 0; i < kGemvMaxM; ++i) {
      if (i < m) acc[i] += w * x[i * cols + c];
    }
  }
#pragma unroll
  for (int i = 0; i < kGemvMaxM; ++i) {
    if (i < m) {
      float v = acc[i];
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (lane == 0) y[i * ldy + r] = v;
    }
  }
}

template <uint32_t T>
void launch(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy,
            cudaStream_t s) {
  if (m <= kGemvMaxM) {
    gemv_fallback_kernel<T>
        <<<static_cast<unsigned>(ceil_div(w.rows, kGemvWarps)), 32 * kGemvWarps, 0, s>>>(
            static_cast<const uint8_t*>(w.data), w.row_bytes, w.rows, w.cols, x,
            static_cast<int>(m), y, ldy);
    return;
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(w.rows, kTileR)),
                  static_cast<unsigned>(ceil_div(m, kTileM)));
  matmul_fallback_kernel<T><<<grid, kThreads, 0, s>>>(static_cast<const uint8_t*>(w.data),
                                                      w.row_bytes, w.rows, w.cols, x, m, y, ldy);
}

}  // namespace

bool type_supported(uint32_t type) {
  return block_traits(type).block != 0;
}

size_t weight_device_bytes(uint32_t type, int64_t rows, int64_t cols) {
  return static_cast<size_t>(rows) * gguf_row_bytes(type, cols);
}

cudaError_t upload_weight(const void* host, uint32_t type, int64_t rows, int64_t cols,
                          size_t host_row_bytes, void* dst, DeviceWeight* out, cudaStream_t s) {
  const size_t rb = gguf_row_bytes(type, cols);
  if (rb == 0 || host_row_bytes < rb) return cudaErrorInvalidValue;
  const cudaError_t e = cudaMemcpy2DAsync(dst, rb, host, host_row_bytes, rb,
                                          static_cast<size_t>(rows), cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess) return e;
  out->data = dst;
  out->type = type;
  out->rows = rows;
  out->cols = cols;
  out->row_bytes = rb;
  return cudaSuccess;
}

size_t matmul_workspace_bytes(const DeviceWeight&, int64_t) {
  return 0;
}

void matmul(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy, void*,
            cudaStream_t s) {
  if (m <= 0 || w.rows <= 0) return;
  switch (w.type) {
    case kF32:
      return launch<kF32>(w, x, m, y, ldy, s);
    case kF16:
      return launch<kF16>(w, x, m, y, ldy, s);
    case kBF16:
      return launch<kBF16>(w, x, m, y, ldy, s);
    case kQ4_0:
      return launch<kQ4_0>(w, x, m, y, ldy, s);
    case kQ4_1:
      return launch<kQ4_1>(w, x, m, y, ldy, s);
    case kQ5_0:
      return launch<kQ5_0>(w, x, m, y, ldy, s);
    case kQ5_1:
      return launch<kQ5_1>(w, x, m, y, ldy, s);
    case kQ8_0:
      return launch<kQ8_0>(w, x, m, y, ldy, s);
    case kIQ4_NL:
      return launch<kIQ4_NL>(w, x, m, y, ldy, s);
    case kQ2_K:
      return launch<kQ2_K>(w, x, m, y, ldy, s);
    case kQ3_K:
      return launch<kQ3_K>(w, x, m, y, ldy, s);
    case kQ4_K:
      return launch<kQ4_K>(w, x, m, y, ldy, s);
    case kQ5_K:
      return launch<kQ5_K>(w, x, m, y, ldy, s);
    case kQ6_K:
      return launch<kQ6_K>(w, x, m, y, ldy, s);
    default:
      return;  // create() refuses unsupported types
  }
}

}  // namespace shimmy::cuda::ref
