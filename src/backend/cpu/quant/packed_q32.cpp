// Packed (row-interleaved) Q4_0 / Q8_0: the repacker, the scalar tiles (reference and
// fallback) and the entry points of packed.h. Layout and numerics: packed.h.
#include <cstring>

#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/packed.h"

namespace shimmy::quant {
namespace {

using gguf::TensorType;

constexpr int kRows = 8;

// Bytes of one block of a group (8 GGUF blocks).
size_t group_block_bytes(TensorType t) {
  return t == TensorType::Q4_0 ? 8 * sizeof(BlockQ4_0) : 8 * sizeof(BlockQ8_0);
}

// Integer dot of row j of a group block with one Q8_0 act block (levels as in dot_scalar).
int isum_q4_0(const uint8_t* gb, int j, const int8_t* a) {
  int s = 0;
  for (int v = 0; v < 4; ++v)
    for (int t = 0; t < 4; ++t) {
      const uint8_t byte = gb[16 + 32 * v + 4 * j + t];
      s += ((byte & 0xF) - 8) * a[4 * v + t] + ((byte >> 4) - 8) * a[16 + 4 * v + t];
    }
  return s;
}
int isum_q8_0(const uint8_t* gb, int j, const int8_t* a) {
  int s = 0;
  for (int c = 0; c < 8; ++c)
    for (int t = 0; t < 4; ++t) s += int(int8_t(gb[16 + 32 * c + 4 * j + t])) * a[4 * c + t];
  return s;
}

template <int (*Isum)(const uint8_t*, int, const int8_t*)>
void tile_scalar(int64_t n, const void* w, size_t ws, int64_t nw, const void* a, size_t as,
                 int64_t na, float* out, int64_t ldo) {
  const int64_t nb = n / 32;
  const size_t gbytes = size_t(kRows) * ws, bbytes = gbytes / size_t(nb);
  for (int64_t g = 0; g < nw / kRows; ++g) {
    const auto* grp = static_cast<const uint8_t*>(w) + size_t(g) * gbytes;
    for (int64_t i = 0; i < na; ++i) {
      const auto* ab =
          reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(a) + size_t(i) * as);
      for (int j = 0; j < kRows; ++j) {
        float sum = 0;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* gb = grp + size_t(b) * bbytes;
          uint16_t d;
          std::memcpy(&d, gb + 2 * j, 2);
          sum += (fp16_to_f32(d) * fp16_to_f32(ab[b].d)) * float(Isum(gb, j, ab[b].qs));
        }
        out[i * ldo + g * kRows + j] = sum;
      }
    }
  }
}

}  // namespace

DotFns packed_scalar_fns(TensorType t) {
  switch (t) {
    case TensorType::Q4_0:
      return DotFns{nullptr, &tile_scalar<isum_q4_0>, true};
    case TensorType::Q8_0:
      return DotFns{nullptr, &tile_scalar<isum_q8_0>, true};
    default:
      return packed_scalar_fns_k(t);
  }
}

bool can_pack(const WeightKernels& k, int64_t rows, int64_t n) {
  return k.packed != nullptr && rows > 0 && rows % kRows == 0 && n > 0 && n % k.block == 0;
}

void pack_rows(const WeightKernels& k, const void* src, size_t src_stride, int64_t rows, int64_t n,
               void* dst) {
  const auto* S = static_cast<const uint8_t*>(src);
  auto* D = static_cast<uint8_t*>(dst);
  if (k.type == TensorType::F16) {  // k-major: value k of the group's 8 rows together
    for (int64_t g = 0; g < rows / kRows; ++g)
      for (int j = 0; j < kRows; ++j) {
        const uint8_t* row = S + size_t(g * kRows + j) * src_stride;
        uint8_t* o = D + size_t(g) * size_t(kRows) * size_t(n) * 2 + size_t(j) * 2;
        for (int64_t c = 0; c < n; ++c) std::memcpy(o + size_t(c) * kRows * 2, row + 2 * c, 2);
      }
    return;
  }
  if (pack_rows_k(k.type, src, src_stride, rows, n, dst)) return;
  const int64_t nb = n / 32;
  const size_t bbytes = group_block_bytes(k.type);
  for (int64_t g = 0; g < rows / kRows; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* gb = D + (size_t(g) * size_t(nb) + size_t(b)) * bbytes;
      for (int j = 0; j < kRows; ++j) {
        const uint8_t* row = S + size_t(g * kRows + j) * src_stride;
        if (k.type == TensorType::Q4_0) {
          const auto* blk = reinterpret_cast<const BlockQ4_0*>(row) + b;
          std::memcpy(gb + 2 * j, &blk->d, 2);
          for (int v = 0; v < 4; ++v) std::memcpy(gb + 16 + 32 * v + 4 * j, blk->qs + 4 * v, 4);
        } else {
          const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
          std::memcpy(gb + 2 * j, &blk->d, 2);
          for (int c = 0; c < 8; ++c) std::memcpy(gb + 16 + 32 * c + 4 * j, blk->qs + 4 * c, 4);
        }
      }
    }
  }
}

}  // namespace shimmy::quant
