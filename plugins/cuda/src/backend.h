// The plugin's internal entry points behind the ABI table (plugin.cpp). Plain C++ with no
// CUDA types, so the table and the probe compile without the CUDA headers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plugin_abi.h"

namespace shimmy::cuda {

bool backend_supports_type(uint32_t ggml_type);
int32_t backend_slice_bytes(const ShimmyModelDesc* desc, ShimmySliceBytes* out, char* err,
                            size_t err_len);
int32_t context_create(int ordinal, const ShimmyModelDesc* desc, ShimmyContext** out, char* err,
                       size_t err_len);
void context_destroy(ShimmyContext* c);
int32_t context_eval(ShimmyContext* c, const ShimmyBatch* b, char* err, size_t err_len);
int32_t context_truncate(ShimmyContext* c, int32_t seq, int64_t pos, char* err, size_t err_len);

}  // namespace shimmy::cuda
