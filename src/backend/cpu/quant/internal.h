// Internal to src/backend/cpu/quant: the functions each translation unit contributes to
// the kernel tables in registry.cpp, and the tile driver shared by every ISA.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "backend/cpu/quant/blocks.h"
#include "backend/cpu/quant/kernels.h"

namespace shimmy::quant {

using DequantFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeFn = void (*)(const float* x, void* out, int64_t n);
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);
using TileFn = void (*)(int64_t n, const void* w, size_t w_stride, int64_t nw, const void* a,
                        size_t a_stride, int64_t na, float* out, int64_t ldo);

struct DotFns {
  VecDotFn vec_dot = nullptr;
  TileFn tile = nullptr;
  bool tile_blocks = false;  // tile does its own cache blocking over weight rows
};

// dequantize.cpp: exact scalar dequantization (weights and Q8_0/Q8_1/Q8_K act blocks).
// dequantize_avx2.cpp: faster ones for F16 and BF16 (nullptr for the others), the same
// values but for signalling NaNs (returned quiet).
DequantFn dequantize_fn(gguf::TensorType t);
DequantFn dequantize_avx2_fn(gguf::TensorType t);
// quantize_act.cpp: the act quantizer of an act type. quantize_act_avx2.cpp: faster ones
// for some act types (nullptr for the others), producing the same bytes: activation
// rounding must not depend on the ISA.
QuantizeFn quantize_act_fn(ActType t);
QuantizeFn quantize_act_avx2_fn(ActType t);
// quantize_q32.cpp / quantize_k.cpp: weight quantizers.
QuantizeFn quantize_q32_fn(gguf::TensorType t);
QuantizeFn quantize_k_fn(gguf::TensorType t);

// dot_scalar.cpp / dot_*_avx2.cpp: products of a weight type with its act type.
DotFns scalar_dot_fns(gguf::TensorType t);
DotFns avx2_dot_fns_q32(gguf::TensorType t);
DotFns avx2_dot_fns_k(gguf::TensorType t);
DotFns avx2_dot_fns_float(gguf::TensorType t);
// packed_q32.cpp / packed_q32_avx2.cpp: tiles over row-interleaved groups (packed.h);
// vec_dot is null, tile takes whole groups of 8 rows.
DotFns packed_scalar_fns(gguf::TensorType t);
DotFns packed_avx2_fns(gguf::TensorType t);
DotFns packed_avx2_fns_f16();  // packed_f16_avx2.cpp (AVX2 only: FMA chains)
// packed_k.cpp / packed_k_avx2.cpp: the same for Q4_K and Q6_K; pack_rows_k repacks
// (false for another type).
DotFns packed_scalar_fns_k(gguf::TensorType t);
DotFns packed_avx2_fns_k(gguf::TensorType t);
bool pack_rows_k(gguf::TensorType t, const void* src, size_t src_stride, int64_t rows, int64_t n,
                 void* dst);

// Unpacks one K super-block (Q2_K..Q6_K) into u; false for another type. The AVX2 one also
// fills u->sv. Exposed so tests can compare the two exactly.
bool unpack_k_scalar(gguf::TensorType t, const void* block, KUnpacked* u);
bool unpack_k_avx2(gguf::TensorType t, const void* block, KUnpacked* u);

// ---- tile driver ---------------------------------------------------------------------
// K::run<NA, NW>(n, w, w_stride, a, a_stride, out, ldo) computes an NA × NW tile; every
// pair inside runs the same float operations in the same order whatever NA and NW are,
// so all tile shapes (and vec_dot, the 1 × 1 tile) agree bit for bit. Shapes used:
// 4 × 2 and 4 × 1 while 4 act rows remain, then 1 × 4 and 1 × 1 (decode: one act row
// against 4 weight rows keeps 4 independent accumulation chains in flight).
template <class K>
void drive_tile(int64_t n, const void* w, size_t ws, int64_t nw, const void* a, size_t as,
                int64_t na, float* out, int64_t ldo) {
  const auto* W = static_cast<const uint8_t*>(w);
  const auto* A = static_cast<const uint8_t*>(a);
  int64_t i = 0;
  for (; i + 4 <= na; i += 4) {
    int64_t j = 0;
    for (; j + 2 <= nw; j += 2)
      K::template run<4, 2>(n, W + j * ws, ws, A + i * as, as, out + i * ldo + j, ldo);
    for (; j < nw; ++j)
      K::template run<4, 1>(n, W + j * ws, ws, A + i * as, as, out + i * ldo + j, ldo);
  }
  for (; i < na; ++i) {
    int64_t j = 0;
    for (; j + 4 <= nw; j += 4)
      K::template run<1, 4>(n, W + j * ws, ws, A + i * as, as, out + i * ldo + j, ldo);
    for (; j < nw; ++j)
      K::template run<1, 1>(n, W + j * ws, ws, A + i * as, as, out + i * ldo + j, ldo);
  }
}

// ---- packed group driver ---------------------------------------------------------------
// Walks the ng groups (8 rows, gbytes bytes each) of a packed tile: in bands of groups that
// stay in L2 (~96 KiB) the act rows pass over the band 4 at a time, then the 1-3 rows
// left over meet each group once. tile.template operator()<NA>(g, i) computes act rows
// [i, i + NA) against group g (a template lambda: NA is a constant to the kernel).
template <class GroupTile>
void for_each_group(int64_t ng, size_t gbytes, int64_t na, GroupTile&& tile) {
  const int64_t band = std::max<int64_t>(1, int64_t((96u << 10) / gbytes));
  for (int64_t g0 = 0; g0 < ng; g0 += band) {
    const int64_t g1 = std::min(ng, g0 + band);
    int64_t i = 0;
    for (; i + 4 <= na; i += 4)
      for (int64_t g = g0; g < g1; ++g) tile.template operator()<4>(g, i);
    const int64_t rest = na - i;
    for (int64_t g = g0; g < g1; ++g) {
      if (rest == 3)
        tile.template operator()<3>(g, i);
      else if (rest == 2)
        tile.template operator()<2>(g, i);
      else if (rest == 1)
        tile.template operator()<1>(g, i);
    }
  }
}

template <class K>
float drive_dot(int64_t n, const void* w, const void* a) {
  float r = 0;
  K::template run<1, 1>(n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, &r,
                        1);
  return r;
}

template <class K>
DotFns make_dot_fns() {
  return DotFns{&drive_dot<K>, &drive_tile<K>};
}

}  // namespace shimmy::quant
