// AVX2 matrix product over packed F16 weights (packed.h): groups of 8 rows stored k-major,
// so one 16-byte load gives value k of 8 rows, converted once and multiplied by a broadcast
// act value for up to 6 act rows: 12 FMAs per k for 6 act rows × 16 weight rows, with the
// accumulators in registers (an outer-product microkernel, FMA bound).
//
// Numerics: each (act row, weight row) result is one FMA chain over k in order,
// acc = fma(w_k, a_k, acc) from 0. The k range is walked in chunks (cache blocking) with
// the accumulators stored to the output and reloaded, which does not change a single
// rounding: results are the same for every m and tile position (batch invariant).
#include <algorithm>

#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/simd_avx2.h"

namespace shimmy::quant {
namespace {

constexpr int kRows = 8;
constexpr int64_t kChunk = 256;  // k values per cache block

// NA act rows × NG groups of 8 weight rows over k in [k0, k1). GCC 12 keeps an array of
// accumulators on the stack (a store and a load per FMA), so the two hot shapes, 6 × 2
// (prompt) and 1 × 4 (decode), have named accumulators; the generic one serves the edges.
template <int NA, int NG>
inline void micro(const uint16_t* w, size_t gstride, const float* a, size_t astride, int64_t k0,
                  int64_t k1, float* out, int64_t ldo) {
  __m256 acc[NA][NG];
  for (int i = 0; i < NA; ++i)
    for (int g = 0; g < NG; ++g)
      acc[i][g] = k0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out + i * ldo + g * kRows);
  for (int64_t k = k0; k < k1; ++k) {
    __m256 wv[NG];
    for (int g = 0; g < NG; ++g)
      wv[g] = _mm256_cvtph_ps(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(w + size_t(g) * gstride + size_t(k) * kRows)));
    for (int i = 0; i < NA; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + size_t(i) * astride + size_t(k));
      for (int g = 0; g < NG; ++g) acc[i][g] = _mm256_fmadd_ps(wv[g], av, acc[i][g]);
    }
  }
  for (int i = 0; i < NA; ++i)
    for (int g = 0; g < NG; ++g) _mm256_storeu_ps(out + i * ldo + g * kRows, acc[i][g]);
}

static inline __m256 ld(const float* out, int64_t k0) {
  return k0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out);
}
static inline __m256 wload(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

template <>
inline void micro<6, 2>(const uint16_t* w, size_t gstride, const float* a, size_t astride,
                        int64_t k0, int64_t k1, float* out, int64_t ldo) {
  float* o[6];
  const float* ar[6];
  for (int i = 0; i < 6; ++i) o[i] = out + i * ldo, ar[i] = a + size_t(i) * astride;
  __m256 c00 = ld(o[0], k0), c01 = ld(o[0] + 8, k0), c10 = ld(o[1], k0), c11 = ld(o[1] + 8, k0),
         c20 = ld(o[2], k0), c21 = ld(o[2] + 8, k0), c30 = ld(o[3], k0), c31 = ld(o[3] + 8, k0),
         c40 = ld(o[4], k0), c41 = ld(o[4] + 8, k0), c50 = ld(o[5], k0), c51 = ld(o[5] + 8, k0);
  const uint16_t* w1 = w + gstride;
  for (int64_t k = k0; k < k1; ++k) {
    const __m256 w0v = wload(w + size_t(k) * kRows), w1v = wload(w1 + size_t(k) * kRows);
    __m256 av = _mm256_broadcast_ss(ar[0] + k);
    c00 = _mm256_fmadd_ps(w0v, av, c00), c01 = _mm256_fmadd_ps(w1v, av, c01);
    av = _mm256_broadcast_ss(ar[1] + k);
    c10 = _mm256_fmadd_ps(w0v, av, c10), c11 = _mm256_fmadd_ps(w1v, av, c11);
    av = _mm256_broadcast_ss(ar[2] + k);
    c20 = _mm256_fmadd_ps(w0v, av, c20), c21 = _mm256_fmadd_ps(w1v, av, c21);
    av = _mm256_broadcast_ss(ar[3] + k);
    c30 = _mm256_fmadd_ps(w0v, av, c30), c31 = _mm256_fmadd_ps(w1v, av, c31);
    av = _mm256_broadcast_ss(ar[4] + k);
    c40 = _mm256_fmadd_ps(w0v, av, c40), c41 = _mm256_fmadd_ps(w1v, av, c41);
    av = _mm256_broadcast_ss(ar[5] + k);
    c50 = _mm256_fmadd_ps(w0v, av, c50), c51 = _mm256_fmadd_ps(w1v, av, c51);
  }
  _mm256_storeu_ps(o[0], c00), _mm256_storeu_ps(o[0] + 8, c01);
  _mm256_storeu_ps(o[1], c10), _mm256_storeu_ps(o[1] + 8, c11);
  _mm256_storeu_ps(o[2], c20), _mm256_storeu_ps(o[2] + 8, c21);
  _mm256_storeu_ps(o[3], c30), _mm256_storeu_ps(o[3] + 8, c31);
  _mm256_storeu_ps(o[4], c40), _mm256_storeu_ps(o[4] + 8, c41);
  _mm256_storeu_ps(o[5], c50), _mm256_storeu_ps(o[5] + 8, c51);
}

template <>
inline void micro<1, 4>(const uint16_t* w, size_t gstride, const float* a, size_t astride,
                        int64_t k0, int64_t k1, float* out, int64_t ldo) {
  __m256 c0 = ld(out, k0), c1 = ld(out + 8, k0), c2 = ld(out + 16, k0), c3 = ld(out + 24, k0);
  const uint16_t *w0 = w, *w1 = w + gstride, *w2 = w + 2 * gstride, *w3 = w + 3 * gstride;
  for (int64_t k = k0; k < k1; ++k) {
    const size_t o = size_t(k) * kRows;
    // Decode streams the weights from DRAM once: fetch each group's stream ~512 B ahead.
    if ((k & 3) == 0) {
      _mm_prefetch(reinterpret_cast<const char*>(w0 + o + 256), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w1 + o + 256), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w2 + o + 256), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w3 + o + 256), _MM_HINT_T0);
    }
    const __m256 av = _mm256_broadcast_ss(a + k);
    c0 = _mm256_fmadd_ps(wload(w0 + o), av, c0);
    c1 = _mm256_fmadd_ps(wload(w1 + o), av, c1);
    c2 = _mm256_fmadd_ps(wload(w2 + o), av, c2);
    c3 = _mm256_fmadd_ps(wload(w3 + o), av, c3);
  }
  _mm256_storeu_ps(out, c0), _mm256_storeu_ps(out + 8, c1);
  _mm256_storeu_ps(out + 16, c2), _mm256_storeu_ps(out + 24, c3);
}

template <int NA>
inline void row_tile(int64_t ng, const uint16_t* w, size_t gstride, const float* a, size_t astride,
                     int64_t k0, int64_t k1, float* out, int64_t ldo) {
  constexpr int NG = NA == 1 ? 4 : 2;  // decode: 4 independent chains per act row
  int64_t g = 0;
  for (; g + NG <= ng; g += NG)
    micro<NA, NG>(w + size_t(g) * gstride, gstride, a, astride, k0, k1, out + g * kRows, ldo);
  for (; g < ng; ++g)
    micro<NA, 1>(w + size_t(g) * gstride, gstride, a, astride, k0, k1, out + g * kRows, ldo);
}

void tile_f16(int64_t n, const void* w, size_t ws, int64_t nw, const void* a, size_t as, int64_t na,
              float* out, int64_t ldo) {
  const auto* W = static_cast<const uint16_t*>(w);
  const auto* A = static_cast<const float*>(a);
  const size_t gstride = size_t(kRows) * size_t(n), astride = as / sizeof(float);
  const int64_t ng = nw / kRows;
  // Bands of ~32 KiB of weight chunk (16 groups × 256 k × 16 bytes = 64 KiB at most).
  const int64_t band = 8;
  // k chunks keep a band's weights in cache while several act tiles pass over them; with
  // one act tile (decode) there is no reuse, and whole rows stream better from DRAM.
  const int64_t chunk = na > 6 ? kChunk : n;
  for (int64_t k0 = 0; k0 < n; k0 += chunk) {
    const int64_t k1 = std::min(n, k0 + chunk);
    for (int64_t g0 = 0; g0 < ng; g0 += band) {
      const int64_t nb = std::min(band, ng - g0);
      const uint16_t* wg = W + size_t(g0) * gstride;
      float* o = out + g0 * kRows;
      int64_t i = 0;
      for (; i + 6 <= na; i += 6)
        row_tile<6>(nb, wg, gstride, A + size_t(i) * astride, astride, k0, k1, o + i * ldo, ldo);
      switch (na - i) {
        case 5:
          row_tile<5>(nb, wg, gstride, A + size_t(i) * astride, astride, k0, k1, o + i * ldo, ldo);
          break;
        case 4:
          row_tile<4>(nb, wg, gstride, A + size_t(i) * astride, astride, k0, k1, o + i * ldo, ldo);
          break;
        case 3:
          row_tile<3>(nb, wg, gstride, A + size_t(i) * astride, astride, k0, k1, o + i * ldo, ldo);
          break;
        case 2:
          row_tile<2>(nb, wg, gstride, A + size_t(i) * astride, astride, k0, k1, o + i * ldo, ldo);
          break;
        case 1:
          row_tile<1>(nb, wg, gstride, A + size_t(i) * astride, astride, k0, k1, o + i * ldo, ldo);
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace

DotFns packed_avx2_fns_f16() {
  return DotFns{nullptr, &tile_f16, true};
}

}  // namespace shimmy::quant
