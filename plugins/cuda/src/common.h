// Small helpers shared by the plugin's host and device code: error text into the ABI's err
// buffers, rounding, and checked CUDA calls.
#pragma once

#include <cuda_runtime.h>

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>

namespace shimmy::cuda {

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
inline size_t align_up(size_t v, size_t a) {
  return (v + a - 1) / a * a;
}

// Writes a printf-style message into err (NUL-terminated, truncated to err_len).
inline void set_err(char* err, size_t err_len, const char* fmt, ...) {
  if (!err || err_len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(err, err_len, fmt, ap);
  va_end(ap);
}

// A failed CUDA call as one sentence: "<what> failed: <name> (<description>)".
inline int32_t cuda_fail(char* err, size_t err_len, const char* what, cudaError_t e) {
  set_err(err, err_len, "CUDA: %s failed: %s (%s)", what, cudaGetErrorName(e),
          cudaGetErrorString(e));
  return static_cast<int32_t>(e == cudaSuccess ? 1 : e);
}

}  // namespace shimmy::cuda

// Inside functions returning int32_t with err/err_len in scope.
#define SHIMMY_CUDA_TRY(call, what)                                                  \
  do {                                                                               \
    const cudaError_t e_ = (call);                                                   \
    if (e_ != cudaSuccess) return ::shimmy::cuda::cuda_fail(err, err_len, what, e_); \
  } while (0)
