// AVX2 tiles over packed (row-interleaved) Q4_0 / Q8_0 groups; layout and numerics in
// packed.h. One call computes NA act rows (1..4) against one group of 8 weight rows:
// per block the group's levels are unpacked once into 8 registers (chunk c = values
// 4c..4c+3 of each row, one row per 32-bit lane); each act row then broadcasts its 8
// chunks of 4 bytes, and maddubs + madd leave the 8 rows' integer block sums in one
// register. The float part is (dw*da) * float(isum) added to the row's sum, in block
// order: exactly the scalar vec_dot, so results are bit-identical to it.
#include <vector>

#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/packed.h"
#include "backend/cpu/quant/simd_avx2.h"

namespace shimmy::quant {
namespace {

using namespace avx2;
using gguf::TensorType;

constexpr int kRows = 8;

// Act rows prepared once per call: f32 scales and (Q4_0) the offset 8·Σa per block.
struct ActPrep {
  std::vector<float> da;
  std::vector<int32_t> off;
};

struct PQ4_0 {
  static constexpr size_t kBlockBytes = 8 * sizeof(BlockQ4_0);
  static constexpr bool kOffset = true;
  // Levels of the 8 chunks (unsigned 0..15).
  static inline void levels(const uint8_t* gb, __m256i (&L)[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int v = 0; v < 4; ++v) {
      const __m256i p = loadu(gb + 16 + 32 * v);
      L[v] = _mm256_and_si256(p, m4);
      L[v + 4] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
    }
  }
  // 8 lanes of Σ q·a (q unsigned levels): 8 maddubs summed in i16 (each lane pair is at
  // most 2·15·127, eight of them 30480 < 32767), then one madd.
  static inline __m256i isum(const __m256i (&L)[8], const int8_t* q, __m256i ones) {
    __m256i s = _mm256_maddubs_epi16(L[0], bcast4(q));
    for (int c = 1; c < 8; ++c)
      s = _mm256_add_epi16(s, _mm256_maddubs_epi16(L[c], bcast4(q + 4 * c)));
    return _mm256_madd_epi16(s, ones);
  }
};

struct PQ8_0 {
  static constexpr size_t kBlockBytes = 8 * sizeof(BlockQ8_0);
  static constexpr bool kOffset = false;
  static inline void levels(const uint8_t* gb, __m256i (&L)[8]) {
    for (int c = 0; c < 8; ++c) L[c] = loadu(gb + 16 + 32 * c);
  }
  // Signed × signed: |w| × (a with w's sign); a lane pair reaches 2·127·127, so each
  // chunk goes to i32 on its own.
  static inline __m256i isum(const __m256i (&L)[8], const int8_t* q, __m256i ones) {
    __m256i s = _mm256_setzero_si256();
    for (int c = 0; c < 8; ++c) {
      const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(L[c], L[c]),
                                             _mm256_sign_epi8(bcast4(q + 4 * c), L[c]));
      s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
    }
    return s;
  }
};

template <class T, int NA>
inline void group_tile(int64_t nb, const uint8_t* grp, const uint8_t* a, size_t as, const float* da,
                       const int32_t* off, int64_t nbp, float* out, int64_t ldo) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[NA];
  for (int i = 0; i < NA; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* gb = grp + size_t(b) * T::kBlockBytes;
    if constexpr (NA == 1) prefetch_ahead(gb, T::kBlockBytes);  // decode
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gb)));
    __m256i L[8];
    T::levels(gb, L);
    for (int i = 0; i < NA; ++i) {
      const auto* ab = reinterpret_cast<const BlockQ8_0*>(a + size_t(i) * as) + b;
      __m256i s = T::isum(L, ab->qs, ones);
      if constexpr (T::kOffset) s = _mm256_sub_epi32(s, _mm256_set1_epi32(off[i * nbp + b]));
      const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(da[i * nbp + b]));
      acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(d, _mm256_cvtepi32_ps(s)));
    }
  }
  for (int i = 0; i < NA; ++i) _mm256_storeu_ps(out + i * ldo, acc[i]);
}

template <class T>
void tile(int64_t n, const void* w, size_t ws, int64_t nw, const void* a, size_t as, int64_t na,
          float* out, int64_t ldo) {
  const int64_t nb = n / 32, nbp = nb;
  thread_local ActPrep prep;
  prep.da.resize(size_t(na * nbp));
  if constexpr (T::kOffset) prep.off.resize(size_t(na * nbp));
  const auto* A = static_cast<const uint8_t*>(a);
  for (int64_t i = 0; i < na; ++i) {
    const auto* ab = reinterpret_cast<const BlockQ8_0*>(A + size_t(i) * as);
    for (int64_t b = 0; b < nb; ++b) {
      prep.da[size_t(i * nbp + b)] = h2f(ab[b].d);
      if constexpr (T::kOffset) {
        // 8·Σa of the block: maddubs(8, a) then madd to i32, then the 8 lanes.
        const __m256i s = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_set1_epi8(8), loadu(ab[b].qs)), _mm256_set1_epi16(1));
        __m128i x = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
        x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
        prep.off[size_t(i * nbp + b)] = _mm_cvtsi128_si32(x);
      }
    }
  }
  const float* da = prep.da.data();
  const int32_t* off = T::kOffset ? prep.off.data() : nullptr;
  const auto* W = static_cast<const uint8_t*>(w);
  for_each_group(nw / kRows, size_t(kRows) * ws, na, [&]<int NA>(int64_t g, int64_t i) {
    group_tile<T, NA>(nb, W + size_t(g) * kRows * ws, A + size_t(i) * as, as, da + i * nbp,
                      off ? off + i * nbp : nullptr, nbp, out + i * ldo + g * kRows, ldo);
  });
}

}  // namespace

DotFns packed_avx2_fns(TensorType t) {
  switch (t) {
    case TensorType::Q4_0:
      return DotFns{nullptr, &tile<PQ4_0>, true};
    case TensorType::Q8_0:
      return DotFns{nullptr, &tile<PQ8_0>, true};
    case TensorType::F16:
      return packed_avx2_fns_f16();
    default:
      return packed_avx2_fns_k(t);
  }
}

}  // namespace shimmy::quant
