// Weight matrix products on the device, for every weight type the CPU backend computes.
// The contract between the plugin's layer code (plugins/cuda/src/*.cu) and the kernels in
// plugins/cuda/src/mm/ (owned separately so both can be built and tested on their own).
//
// Shapes (GGUF, as src/model/model.h): a weight is [rows, cols] with cols the input
// dimension; x is [m, cols] f32 row-major; y is [m, ldy] f32 and receives y[i][r] for
// r < rows. Everything is device memory; every call is asynchronous on `s` and safe inside
// CUDA graph capture (no allocation, no synchronization), except upload_weight (load time).
//
// Implementation notes (kernels.cuh has the design):
//   - cols must be a multiple of the type's block (32 for the float types too); x must be
//     16-byte aligned. Weights are repacked at upload (layout.h), about their GGUF size.
//   - m <= 16 (decode): one pass over the weights serves all m rows. Weights enter the tensor
//     cores exactly, x as two bf16 parts (f16 for F16 weights), float32 sums: results agree
//     with float32 arithmetic to ~1e-5 of sum|w x|, and a row's result does not depend on m.
//   - m > 16 (prompt): weights and x rounded to bf16 (F16 weights exact, x to f16), float32
//     accumulation: error <= 2^-8 of sum|w x|. Needs matmul_workspace_bytes of scratch.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace shimmy::cuda {

struct DeviceWeight {
  const void* data = nullptr;  // device copy (layout chosen by upload_weight)
  uint32_t type = 0;           // ggml type id
  int64_t rows = 0, cols = 0;
  size_t row_bytes = 0;  // bytes per row in the device layout
  bool ref = false;      // computed by the reference kernels (../matmul_ref.h)
};

// Whether the kernels compute this ggml type.
bool type_supported(uint32_t type);

// Bytes the device copy of a [rows, cols] tensor of `type` takes (the planner uses it); 0
// when the type or the shape is not supported.
size_t weight_device_bytes(uint32_t type, int64_t rows, int64_t cols);

// Where the rows of a weight lie on the host (GGUF layout): row r at first + r * stride, or,
// with `second` (the interleaved gate/up weight of matmul_swiglu), source row
// interleave_src_row(r, f) of [first: f rows; second: f rows].
struct HostRows {
  const void* first = nullptr;
  const void* second = nullptr;
  size_t stride = 0;
  int64_t f = 0;
  const uint8_t* row(int64_t r) const;
};

// Page-locked staging for the uploads of one load: two buffers, so the host repacks the next
// chunk of rows while the copy engine moves the previous one (a pageable buffer costs a
// driver-side copy and a synchronization per chunk). The caller synchronizes the stream
// before the staging goes; the destructor waits for its copies too.
class UploadStaging {
 public:
  UploadStaging() = default;
  ~UploadStaging();
  UploadStaging(const UploadStaging&) = delete;
  UploadStaging& operator=(const UploadStaging&) = delete;
  // Two buffers of `bytes` each; on failure the staging stays unusable (ok() false) and
  // upload_weight takes its pageable path.
  cudaError_t init(size_t bytes);
  bool ok() const { return bytes_ != 0; }

 private:
  friend cudaError_t upload_weight(const HostRows&, uint32_t, int64_t, int64_t, void*,
                                   DeviceWeight*, cudaStream_t, UploadStaging*);
  uint8_t* buf_[2] = {nullptr, nullptr};
  cudaEvent_t done_[2] = {nullptr, nullptr};  // the copy that last read buf_[k]
  size_t bytes_ = 0;
  int next_ = 0;
};

// Copies the host rows into dst (weight_device_bytes big), repacking if the kernels want
// another layout; fills *out. Repacks on the host a chunk of rows at a time: through
// `staging` when given and usable (asynchronous: the copies are queued on `s`), else through
// a pageable buffer, synchronizing `s` after each chunk.
cudaError_t upload_weight(const HostRows& host, uint32_t type, int64_t rows, int64_t cols,
                          void* dst, DeviceWeight* out, cudaStream_t s,
                          UploadStaging* staging = nullptr);
// Rows host_row_bytes apart.
inline cudaError_t upload_weight(const void* host, uint32_t type, int64_t rows, int64_t cols,
                                 size_t host_row_bytes, void* dst, DeviceWeight* out,
                                 cudaStream_t s, UploadStaging* staging = nullptr) {
  return upload_weight(HostRows{host, nullptr, host_row_bytes, 0}, type, rows, cols, dst, out, s,
                       staging);
}

// Scratch the product needs for up to max_m activation rows (0 while max_m <= 16).
size_t matmul_workspace_bytes(const DeviceWeight& w, int64_t max_m);

// y[i][r] = Σ_k W[r][k] · x[i][k], i < m, r < w.rows. Small m (decode, parallel decode):
// matrix-vector kernels that dequantize on the fly; large m (prompt): tensor cores.
void matmul(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy, void* ws,
            cudaStream_t s);

// Gate/up product with SwiGLU, m <= 16 (decode): w is a stacked gate/up weight of 2f rows
// (f % 8 == 0) interleaved by 8, rows 16b..16b+7 = gate rows 8b..8b+7 and rows
// 16b+8..16b+15 = up rows 8b..8b+7 (interleave_rows8 gives that order); y[i][j] =
// silu(gate_j . x_i) * (up_j . x_i) for j < f: the same bits as matmul followed by the
// SwiGLU kernel. Returns false (and launches nothing) when m > 16 or the shape does not fit.
inline constexpr int64_t kSwigluMaxM = 16;
bool matmul_swiglu(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy,
                   cudaStream_t s);

// Row order of that interleave: device row r holds source row interleave_src_row(r, f) of
// [gate; up] (2f rows).
inline int64_t interleave_src_row(int64_t r, int64_t f) {
  return (r & 8) ? f + (r >> 4) * 8 + (r & 7) : (r >> 4) * 8 + (r & 7);
}

}  // namespace shimmy::cuda
