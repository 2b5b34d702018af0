#include "gguf/types.h"

#include <array>
#include <string>

namespace shimmy::gguf {

namespace {

// Block layouts (bytes per block) follow the on-disk structs: e.g. Q4_K is
// f16 d + f16 dmin + 12 bytes of 6-bit scales + 128 bytes of nibbles = 144 for 256 values.
constexpr std::array<TypeTraits, kNumTypeIds> kTraits = [] {
  std::array<TypeTraits, kNumTypeIds> t{};
  t[0] = {"F32", 1, 4};
  t[1] = {"F16", 1, 2};
  t[2] = {"Q4_0", 32, 18};
  t[3] = {"Q4_1", 32, 20};
  t[6] = {"Q5_0", 32, 22};
  t[7] = {"Q5_1", 32, 24};
  t[8] = {"Q8_0", 32, 34};
  t[9] = {"Q8_1", 32, 36};
  t[10] = {"Q2_K", 256, 84};
  t[11] = {"Q3_K", 256, 110};
  t[12] = {"Q4_K", 256, 144};
  t[13] = {"Q5_K", 256, 176};
  t[14] = {"Q6_K", 256, 210};
  t[15] = {"Q8_K", 256, 292};
  t[16] = {"IQ2_XXS", 256, 66};
  t[17] = {"IQ2_XS", 256, 74};
  t[18] = {"IQ3_XXS", 256, 98};
  t[19] = {"IQ1_S", 256, 50};
  t[20] = {"IQ4_NL", 32, 18};
  t[21] = {"IQ3_S", 256, 110};
  t[22] = {"IQ2_S", 256, 82};
  t[23] = {"IQ4_XS", 256, 136};
  t[24] = {"I8", 1, 1};
  t[25] = {"I16", 1, 2};
  t[26] = {"I32", 1, 4};
  t[27] = {"I64", 1, 8};
  t[28] = {"F64", 1, 8};
  t[29] = {"IQ1_M", 256, 56};
  t[30] = {"BF16", 1, 2};
  t[34] = {"TQ1_0", 256, 54};
  t[35] = {"TQ2_0", 256, 66};
  t[39] = {"MXFP4", 32, 17};
  return t;
}();

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t id) {
  if (id >= kNumTypeIds || kTraits[id].block_size == 0) return std::nullopt;
  return kTraits[id];
}

std::string type_name(uint32_t id) {
  if (auto t = type_traits(id)) return std::string(t->name);
  return "type" + std::to_string(id);
}

std::optional<uint64_t> row_bytes(TensorType t, uint64_t n) {
  auto tr = type_traits(static_cast<uint32_t>(t));
  if (!tr || n % tr->block_size != 0) return std::nullopt;
  uint64_t blocks = n / tr->block_size;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(blocks, uint64_t{tr->block_bytes}, &bytes)) return std::nullopt;
  return bytes;
}

}  // namespace shimmy::gguf
