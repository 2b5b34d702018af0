// Weight matrix products on the device, for every weight type the CPU backend computes.
// The contract between the plugin's layer code (plugins/cuda/src/*.cu) and the kernels in
// plugins/cuda/src/mm/ (owned separately so both can be built and tested on their own).
//
// Shapes (GGUF, as src/model/model.h): a weight is [rows, cols] with cols the input
// dimension; x is [m, cols] f32 row-major; y is [m, ldy] f32 and receives y[i][r] for
// r < rows. Everything is device memory; every call is asynchronous on `s` and safe inside
// CUDA graph capture (no allocation, no synchronization).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace shimmy::cuda {

struct DeviceWeight {
  const void* data = nullptr;  // device copy (layout chosen by upload_weight)
  uint32_t type = 0;           // ggml type id
  int64_t rows = 0, cols = 0;
  size_t row_bytes = 0;        // bytes per row in the device layout
};

// Whether the kernels compute this ggml type.
bool type_supported(uint32_t type);

// Bytes the device copy of a [rows, cols] tensor of `type` takes (the planner uses it).
size_t weight_device_bytes(uint32_t type, int64_t rows, int64_t cols);

// Copies host rows (GGUF layout, host_row_bytes apart) into dst (weight_device_bytes big),
// repacking if the kernels want another layout; fills *out.
cudaError_t upload_weight(const void* host, uint32_t type, int64_t rows, int64_t cols,
                          size_t host_row_bytes, void* dst, DeviceWeight* out, cudaStream_t s);

// Scratch the product needs for up to max_m activation rows.
size_t matmul_workspace_bytes(const DeviceWeight& w, int64_t max_m);

// y[i][r] = Σ_k W[r][k] · x[i][k], i < m, r < w.rows. Small m (decode, parallel decode):
// matrix-vector kernels that dequantize on the fly; large m (prompt): tensor cores.
void matmul(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy, void* ws,
            cudaStream_t s);

}  // namespace shimmy::cuda
