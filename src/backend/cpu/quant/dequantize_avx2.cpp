// AVX2 dequantization of the 16-bit float types (F16 with F16C, BF16 with a 16-bit shift),
// 8 values at a time. The same values as dequantize.cpp for every input but signalling NaNs,
// which F16C returns quiet. Why: a GPU decode step dequantizes one token-embedding row on
// the host (2048 F16 values of TinyLlama took 7.5 us with the scalar conversion on the
// H100 host, ~0.6 % of a step).
#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/simd_avx2.h"

namespace shimmy::quant {
namespace {

using gguf::TensorType;

void deq_f16_avx2(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) y[i] = avx2::h2f(x[i]);
}

void deq_bf16_avx2(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
  }
  for (; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

}  // namespace

DequantFn dequantize_avx2_fn(TensorType t) {
  switch (t) {
    case TensorType::F16:
      return deq_f16_avx2;
    case TensorType::BF16:
      return deq_bf16_avx2;
    default:
      return nullptr;
  }
}

}  // namespace shimmy::quant
