// ggml weight types as the plugin sees them: ids and block sizes (file-format facts, as in
// src/gguf/types.h; the plugin does not link the core, so it keeps its own small table).
#pragma once

#include <cstddef>
#include <cstdint>

namespace shimmy::cuda {

enum GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kIQ4_NL = 20,
  kBF16 = 30,
};

struct BlockTraits {
  int64_t block;       // values per block (1 for float types)
  size_t block_bytes;  // bytes per block
};

// Block traits of the weight types above; {0, 0} for any other id.
constexpr BlockTraits block_traits(uint32_t type) {
  switch (type) {
    case kF32:
      return {1, 4};
    case kF16:
      return {1, 2};
    case kBF16:
      return {1, 2};
    case kQ4_0:
      return {32, 18};
    case kQ4_1:
      return {32, 20};
    case kQ5_0:
      return {32, 22};
    case kQ5_1:
      return {32, 24};
    case kQ8_0:
      return {32, 34};
    case kIQ4_NL:
      return {32, 18};
    case kQ2_K:
      return {256, 84};
    case kQ3_K:
      return {256, 110};
    case kQ4_K:
      return {256, 144};
    case kQ5_K:
      return {256, 176};
    case kQ6_K:
      return {256, 210};
    default:
      return {0, 0};
  }
}

// Bytes of one GGUF row of n values (0 if the type is unknown or n is not whole blocks).
constexpr size_t gguf_row_bytes(uint32_t type, int64_t n) {
  const BlockTraits t = block_traits(type);
  if (t.block == 0 || n % t.block != 0) return 0;
  return static_cast<size_t>(n / t.block) * t.block_bytes;
}

}  // namespace shimmy::cuda
