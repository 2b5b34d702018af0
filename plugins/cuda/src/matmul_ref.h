// Weight products for every shape: the tensor-core kernels of mm/ (matmul.h) where they
// take the shape, else the reference kernels of matmul_fallback.cu (namespace ref), chosen
// once per weight at upload (DeviceWeight::ref). The mm kernels need an input dimension that
// is a multiple of 32; tiny models (stories260K: FFN 172) have others.
#pragma once

#include "mm/matmul.h"

namespace shimmy::cuda {
namespace ref {
bool type_supported(uint32_t type);
size_t weight_device_bytes(uint32_t type, int64_t rows, int64_t cols);
cudaError_t upload_weight(const void* host, uint32_t type, int64_t rows, int64_t cols,
                          size_t host_row_bytes, void* dst, DeviceWeight* out, cudaStream_t s);
size_t matmul_workspace_bytes(const DeviceWeight& w, int64_t max_m);
void matmul(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy, void* ws,
            cudaStream_t s);
}  // namespace ref

// Whether a [rows, cols] weight of `type` goes to the reference kernels: shapes mm/ does not
// take, and F32 weights, which mm/ rounds to bf16 for prompts (too coarse for an F32 model's
// conformance bounds: measured mean 0.017 against the 0.01 allowed on stories260K).
inline bool use_ref(uint32_t type, int64_t rows, int64_t cols) {
  return type == 0 /* F32 */ || weight_device_bytes(type, rows, cols) == 0;
}
inline size_t any_weight_device_bytes(uint32_t type, int64_t rows, int64_t cols) {
  return use_ref(type, rows, cols) ? ref::weight_device_bytes(type, rows, cols)
                                   : weight_device_bytes(type, rows, cols);
}
inline cudaError_t any_upload_weight(const void* host, uint32_t type, int64_t rows, int64_t cols,
                                     size_t host_row_bytes, void* dst, DeviceWeight* out,
                                     cudaStream_t s, UploadStaging* staging = nullptr) {
  if (!use_ref(type, rows, cols))
    return upload_weight(host, type, rows, cols, host_row_bytes, dst, out, s, staging);
  const cudaError_t e = ref::upload_weight(host, type, rows, cols, host_row_bytes, dst, out, s);
  out->ref = true;
  return e;
}
inline size_t any_matmul_workspace_bytes(const DeviceWeight& w, int64_t max_m) {
  return w.ref ? ref::matmul_workspace_bytes(w, max_m) : matmul_workspace_bytes(w, max_m);
}
inline void any_matmul(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy,
                       void* ws, cudaStream_t s) {
  if (w.ref)
    ref::matmul(w, x, m, y, ldy, ws, s);
  else
    matmul(w, x, m, y, ldy, ws, s);
}

}  // namespace shimmy::cuda
