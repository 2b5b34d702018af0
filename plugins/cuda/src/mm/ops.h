// What each weight type's kernels (types_*.cu) give matmul.cu: host functions that
// launch its kernels. Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "mm/layout.h"

namespace shimmy::cuda {
struct DeviceWeight;  // matmul.h
}

namespace shimmy::cuda::mm {

// Largest m the decode kernels take; larger m goes to the prompt kernels.
inline constexpr int64_t kDecodeMaxM = 16;

struct MmArgs {
  const uint8_t* w = nullptr;  // device rows, layout.h
  int64_t row_bytes = 0;
  int64_t rows = 0, cols = 0;
  RowLayout layout;
  const float* x = nullptr;  // [m, cols], 16-byte aligned
  int64_t m = 0;
  float* y = nullptr;  // [m, ldy]
  int64_t ldy = 0;
  // Decode only: rows are gate/up interleaved by 8 (matmul.h matmul_swiglu) and y receives
  // silu(gate) * up, rows / 2 values per x row.
  bool swiglu = false;
};

struct TypeOps {
  // Kernel attributes and occupancy for the current device; call before launching (it
  // never runs inside graph capture: upload_weight calls it).
  cudaError_t (*prepare)();
  // m <= 16: one pass over the weights for all m rows of x.
  void (*decode)(const MmArgs& a, cudaStream_t s);
  // Any m (meant for m > 16): x16 is x rounded to 16 bits (f16 when x_f16, else bf16),
  // [m, cols] row-major; part holds m * min(8 * rows, 4096) floats of k-split partial sums
  // when max_splits(rows) > 1.
  void (*prompt)(const MmArgs& a, const uint16_t* x16, float* part, cudaStream_t s);
  bool x_f16;
};

// The kernels' view of one product y[m, ldy] = x[m, cols] W^T of an uploaded weight of a
// type the kernels take (matmul.cu; swiglu stays false).
MmArgs args_for(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy);

// One per type (types_*.cu).
const TypeOps& ops_f32();
const TypeOps& ops_f16();
const TypeOps& ops_bf16();
const TypeOps& ops_q4_0();
const TypeOps& ops_q4_1();
const TypeOps& ops_q5_0();
const TypeOps& ops_q5_1();
const TypeOps& ops_q8_0();
const TypeOps& ops_iq4_nl();
const TypeOps& ops_q2_k();
const TypeOps& ops_q3_k();
const TypeOps& ops_q4_k();
const TypeOps& ops_q5_k();
const TypeOps& ops_q6_k();

// Most k splits of a prompt product (each writes m * rows partial sums to the workspace).
inline int64_t max_splits(int64_t rows) {
  return rows <= 512 ? 8 : rows <= 2048 ? 4096 / rows : 1;
}

// y = sum of the nsplit partial products part[nsplit][m][rows] (matmul.cu).
void sum_splits(const float* part, int nsplit, const MmArgs& a, cudaStream_t s);

// x [n floats, n % 4 == 0] -> 16-bit copy (matmul.cu).
void convert_x(const float* x, uint16_t* out, int64_t n, bool to_f16, cudaStream_t s);

}  // namespace shimmy::cuda::mm
