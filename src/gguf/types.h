// ggml tensor types as stored in GGUF files: ids, names, block size and bytes per block.
//
// These are file-format facts: every type a GGUF file may name is listed, so that sizes
// and offsets are validated even for types the engine cannot compute. Types whose ids
// were retired upstream (4, 5, 31-33, 36-38) are kept as "removed" so a file naming them
// gets a precise error instead of "unknown type".
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace shimmy::gguf {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct TypeTraits {
  std::string_view name;  // "Q4_K"
  uint32_t block_size;    // elements per block
  uint32_t block_bytes;   // bytes per block
};

// Traits of a known type id, or nullopt for an id no GGUF writer uses (or one retired).
std::optional<TypeTraits> type_traits(uint32_t id);

// Name of a type id, "type<N>" for unknown ones.
std::string type_name(uint32_t id);

// Bytes for a row of n elements of this type; nullopt if n is not a multiple of the
// block size or the multiplication overflows.
std::optional<uint64_t> row_bytes(TensorType t, uint64_t n);

inline constexpr uint32_t kNumTypeIds = 40;

}  // namespace shimmy::gguf
