// AVX2 products of the float weight types with f32 acts (F16/BF16 acts hold values
// already rounded to f16/bf16, so only the weights are converted: F16C for F16, a 16-bit
// shift for BF16). One 8-lane FMA accumulator per pair over chunks of 8, a fixed hsum,
// then the n % 8 tail added in order.
#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/simd_avx2.h"

namespace shimmy::quant {
namespace {

using namespace avx2;
using gguf::TensorType;

struct TF32 {
  static constexpr int64_t kBytes = 4;
  static __m256 load8(const uint8_t* w, int64_t k) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + k);
  }
  static float load1(const uint8_t* w, int64_t k) { return reinterpret_cast<const float*>(w)[k]; }
};
struct TF16 {
  static constexpr int64_t kBytes = 2;
  static __m256 load8(const uint8_t* w, int64_t k) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * k)));
  }
  static float load1(const uint8_t* w, int64_t k) {
    return h2f(reinterpret_cast<const uint16_t*>(w)[k]);
  }
};
struct TBF16 {
  static constexpr int64_t kBytes = 2;
  static __m256 load8(const uint8_t* w, int64_t k) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float load1(const uint8_t* w, int64_t k) {
    return bf16_to_f32(reinterpret_cast<const uint16_t*>(w)[k]);
  }
};

template <class T>
struct FloatDot {
  template <int NA, int NW>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out,
                  int64_t ldo) {
    __m256 acc[NA][NW];
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) acc[i][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
      if constexpr (NA == 1) {
        // Decode: fetch the next tile's rows early, one line per 64 bytes of a row.
        if ((k * T::kBytes) % 64 == 0)
          for (int j = 0; j < NW; ++j)
            _mm_prefetch(reinterpret_cast<const char*>(w + (NW + j) * ws + k * T::kBytes),
                         _MM_HINT_T0);
      }
      __m256 wv[NW];
      for (int j = 0; j < NW; ++j) wv[j] = T::load8(w + j * ws, k);
      for (int i = 0; i < NA; ++i) {
        const __m256 av = _mm256_loadu_ps(reinterpret_cast<const float*>(a + i * as) + k);
        for (int j = 0; j < NW; ++j) acc[i][j] = _mm256_fmadd_ps(wv[j], av, acc[i][j]);
      }
    }
    for (int i = 0; i < NA; ++i) {
      const float* ai = reinterpret_cast<const float*>(a + i * as);
      for (int j = 0; j < NW; ++j) {
        float s = hsum(acc[i][j]);
        for (int64_t t = k; t < n; ++t) s += T::load1(w + j * ws, t) * ai[t];
        out[i * ldo + j] = s;
      }
    }
  }
};

}  // namespace

DotFns avx2_dot_fns_float(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return make_dot_fns<FloatDot<TF32>>();
    case TensorType::F16:
      return make_dot_fns<FloatDot<TF16>>();
    case TensorType::BF16:
      return make_dot_fns<FloatDot<TBF16>>();
    default:
      return {};
  }
}

}  // namespace shimmy::quant
