// AVX2 versions of the Q8_0, Q8_1 and F16 activation quantizers: the same bytes as the
// scalar ones in quantize_act.cpp for every finite input (same formulas; _mm256_round_ps
// with round-to-nearest-even is nearest_int; F16C conversion is f32_to_fp16), about 5×
// faster. Only the output for NaN/inf inputs may differ.
#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/simd_avx2.h"

namespace shimmy::quant {
namespace {

using namespace avx2;

float hmax(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

// One 32-block: writes q, returns the float scale; *sum = Σq when asked.
float q8_block(const float* x, int8_t* q, int* sum) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 v[4], amax = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(x + 8 * k);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
  }
  const float m = hmax(amax);
  const float d = m / 127.f;
  const __m256 id = _mm256_set1_ps(m != 0.f ? 127.f / m : 0.f);
  __m256i i[4];
  for (int k = 0; k < 4; ++k)
    i[k] = _mm256_cvtps_epi32(
        _mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  if (sum) {
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    *sum = _mm_cvtsi128_si32(t);
  }
  // packs interleave the 128-bit lanes; the permute restores value order.
  const __m256i p16a = _mm256_packs_epi32(i[0], i[1]), p16b = _mm256_packs_epi32(i[2], i[3]);
  __m256i p8 = _mm256_packs_epi16(p16a, p16b);
  p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  p8 = _mm256_max_epi8(p8, _mm256_set1_epi8(-127));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), p8);
  return d;
}

void act_q8_0(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(out);
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b)
    b->d = _cvtss_sh(q8_block(x, b->qs, nullptr), _MM_FROUND_TO_NEAREST_INT);
}

void act_q8_1(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(out);
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b) {
    int sum = 0;
    const float d = q8_block(x, b->qs, &sum);
    b->d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    b->s = _cvtss_sh(d * float(sum), _MM_FROUND_TO_NEAREST_INT);
  }
}

void act_f16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<float*>(out);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) y[i] = fp16_to_f32(f32_to_fp16(x[i]));
}

}  // namespace

QuantizeFn quantize_act_avx2_fn(ActType t) {
  switch (t) {
    case ActType::Q8_0:
      return act_q8_0;
    case ActType::Q8_1:
      return act_q8_1;
    case ActType::F16:
      return act_f16;
    default:
      return nullptr;
  }
}

}  // namespace shimmy::quant
