// Host side of the device weight layout (layout.h): GGUF rows -> device rows.
#pragma once

#include <cstdint>

#include "mm/layout.h"

namespace shimmy::cuda::mm {

// Writes one row of `cols` values of `type`, GGUF layout at src, into the device layout at
// dst (row_layout(*format_of(type), cols).row_bytes bytes, zeroed by the caller). False when
// the type is not computed or cols is not a multiple of its block size.
bool repack_row(uint32_t type, const uint8_t* src, uint8_t* dst, int64_t cols);

// The same bytes, one value at a time: the definition repack_row is tested against.
bool repack_row_reference(uint32_t type, const uint8_t* src, uint8_t* dst, int64_t cols);

}  // namespace shimmy::cuda::mm
