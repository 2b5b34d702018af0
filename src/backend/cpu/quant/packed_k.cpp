// Packed (row-interleaved) Q4_K / Q6_K: the repacker and the scalar tile (reference and
// fallback). Layout and numerics: packed.h.
//
// A K group block is the 8 rows' GGUF super-blocks cut into segments (scale fields,
// 6-bit scales, levels); each segment is stored as units (2 or 4 bytes), unit u of row j
// at segment offset (8u + j) * unit. The scalar tile undoes this into 8 GGUF rows and
// calls the scalar vec_dot, so it is the scalar kernel by construction.
#include <cstring>
#include <vector>

#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/packed.h"

namespace shimmy::quant {
namespace {

using gguf::TensorType;

constexpr int kRows = 8;

struct Segment {
  int src;    // byte offset in the GGUF super-block
  int unit;   // bytes per unit (2: an f16 field, 4: a 32-bit word)
  int count;  // units per row
};
struct KLayout {
  size_t block_bytes;  // one GGUF super-block
  int nseg;
  Segment seg[4];
};

// Q4_K group block (1152 bytes): d[8] f16 | dmin[8] f16 | scales, 3 words | qs, 32 words.
constexpr KLayout kQ4K = {sizeof(BlockQ4_K), 4, {{0, 2, 1}, {2, 2, 1}, {4, 4, 3}, {16, 4, 32}}};
// Q6_K group block (1680 bytes): d[8] f16 | scales, 4 words | ql, 32 words | qh, 16 words.
constexpr KLayout kQ6K = {
    sizeof(BlockQ6_K), 4, {{208, 2, 1}, {192, 4, 4}, {0, 4, 32}, {128, 4, 16}}};

const KLayout* layout_of(TensorType t) {
  if (t == TensorType::Q4_K) return &kQ4K;
  if (t == TensorType::Q6_K) return &kQ6K;
  return nullptr;
}

// Moves one super-block between the GGUF layout of row j and a group block (either way).
template <bool kPack>
void move_block(const KLayout& L, uint8_t* gguf, uint8_t* grp, int j) {
  size_t off = 0;
  for (int s = 0; s < L.nseg; ++s) {
    const Segment& g = L.seg[s];
    for (int u = 0; u < g.count; ++u) {
      uint8_t* p = grp + off + size_t(kRows * u + j) * size_t(g.unit);
      uint8_t* q = gguf + g.src + u * g.unit;
      if (kPack)
        std::memcpy(p, q, size_t(g.unit));
      else
        std::memcpy(q, p, size_t(g.unit));
    }
    off += size_t(kRows * g.count * g.unit);
  }
}

// Scalar tile: each group is unpacked back into 8 GGUF rows (thread-local scratch), then
// every pair is the scalar vec_dot.
template <TensorType T>
void tile_scalar(int64_t n, const void* w, size_t ws, int64_t nw, const void* a, size_t as,
                 int64_t na, float* out, int64_t ldo) {
  const KLayout& L = *layout_of(T);
  const VecDotFn dot = scalar_dot_fns(T).vec_dot;
  const int64_t nsb = n / 256;
  thread_local std::vector<uint8_t> rows;
  rows.resize(size_t(kRows) * ws);
  for (int64_t g = 0; g < nw / kRows; ++g) {
    const auto* grp = static_cast<const uint8_t*>(w) + size_t(g) * kRows * ws;
    for (int64_t b = 0; b < nsb; ++b)
      for (int j = 0; j < kRows; ++j)
        move_block<false>(L, rows.data() + size_t(j) * ws + size_t(b) * L.block_bytes,
                          const_cast<uint8_t*>(grp) + size_t(b) * kRows * L.block_bytes, j);
    for (int64_t i = 0; i < na; ++i)
      for (int j = 0; j < kRows; ++j)
        out[i * ldo + g * kRows + j] =
            dot(n, rows.data() + size_t(j) * ws, static_cast<const uint8_t*>(a) + size_t(i) * as);
  }
}

}  // namespace

DotFns packed_scalar_fns_k(TensorType t) {
  switch (t) {
    case TensorType::Q4_K:
      return DotFns{nullptr, &tile_scalar<TensorType::Q4_K>, true};
    case TensorType::Q6_K:
      return DotFns{nullptr, &tile_scalar<TensorType::Q6_K>, true};
    default:
      return {};
  }
}

bool pack_rows_k(TensorType t, const void* src, size_t src_stride, int64_t rows, int64_t n,
                 void* dst) {
  const KLayout* L = layout_of(t);
  if (!L) return false;
  const int64_t nsb = n / 256;
  const size_t gblock = kRows * L->block_bytes;
  for (int64_t g = 0; g < rows / kRows; ++g)
    for (int j = 0; j < kRows; ++j) {
      const auto* row = static_cast<const uint8_t*>(src) + size_t(g * kRows + j) * src_stride;
      for (int64_t b = 0; b < nsb; ++b)
        move_block<true>(*L, const_cast<uint8_t*>(row) + size_t(b) * L->block_bytes,
                         static_cast<uint8_t*>(dst) + (size_t(g * nsb + b)) * gblock, j);
    }
  return true;
}

}  // namespace shimmy::quant
