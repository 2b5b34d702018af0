// AVX2 attention loops: scores as 8-lane FMA dots (4 positions at a time, each with its
// own accumulator and a fixed horizontal sum), the weighted sum of V rows as FMAs into
// the output held in 8-lane chunks. hd must be a multiple of 8 for the vector part; any
// remainder is done in scalar, in order.
#include <immintrin.h>

#include "backend/cpu/attention.h"
#include "backend/cpu/quant/blocks.h"

namespace shimmy::cpu {
namespace {

inline float hsum8(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline __m256 load_h8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

float dot_tail(const float* q, const uint16_t* k, int64_t d0, int64_t hd) {
  float s = 0.0f;
  for (int64_t d = d0; d < hd; ++d) s += q[d] * quant::fp16_to_f32(k[d]);
  return s;
}

void scores_f16(const float* q, const uint16_t* k, size_t stride, int64_t n_pos, int64_t hd,
                float scale, float* sc) {
  const int64_t hv = hd & ~int64_t{7};
  int64_t p = 0;
  for (; p + 4 <= n_pos; p += 4) {
    const uint16_t* k0 = k + size_t(p) * stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t d = 0; d < hv; d += 8) {
      const __m256 qv = _mm256_loadu_ps(q + d);
      a0 = _mm256_fmadd_ps(qv, load_h8(k0 + d), a0);
      a1 = _mm256_fmadd_ps(qv, load_h8(k0 + stride + d), a1);
      a2 = _mm256_fmadd_ps(qv, load_h8(k0 + 2 * stride + d), a2);
      a3 = _mm256_fmadd_ps(qv, load_h8(k0 + 3 * stride + d), a3);
    }
    sc[p] = (hsum8(a0) + dot_tail(q, k0, hv, hd)) * scale;
    sc[p + 1] = (hsum8(a1) + dot_tail(q, k0 + stride, hv, hd)) * scale;
    sc[p + 2] = (hsum8(a2) + dot_tail(q, k0 + 2 * stride, hv, hd)) * scale;
    sc[p + 3] = (hsum8(a3) + dot_tail(q, k0 + 3 * stride, hv, hd)) * scale;
  }
  for (; p < n_pos; ++p) {
    const uint16_t* k0 = k + size_t(p) * stride;
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t d = 0; d < hv; d += 8)
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load_h8(k0 + d), a0);
    sc[p] = (hsum8(a0) + dot_tail(q, k0, hv, hd)) * scale;
  }
}

void mix_f16(const float* w, const uint16_t* v, size_t stride, int64_t n_pos, int64_t hd,
             float* out) {
  const int64_t hv = hd & ~int64_t{7};
  int64_t d = 0;
  // 32 output values (4 registers) per pass over the positions.
  for (; d + 32 <= hv; d += 32) {
    __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
    for (int64_t p = 0; p < n_pos; ++p) {
      const uint16_t* vr = v + size_t(p) * stride + d;
      const __m256 wp = _mm256_broadcast_ss(w + p);
      o0 = _mm256_fmadd_ps(wp, load_h8(vr), o0);
      o1 = _mm256_fmadd_ps(wp, load_h8(vr + 8), o1);
      o2 = _mm256_fmadd_ps(wp, load_h8(vr + 16), o2);
      o3 = _mm256_fmadd_ps(wp, load_h8(vr + 24), o3);
    }
    _mm256_storeu_ps(out + d, o0);
    _mm256_storeu_ps(out + d + 8, o1);
    _mm256_storeu_ps(out + d + 16, o2);
    _mm256_storeu_ps(out + d + 24, o3);
  }
  for (; d < hv; d += 8) {
    __m256 o0 = _mm256_setzero_ps();
    for (int64_t p = 0; p < n_pos; ++p)
      o0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + p), load_h8(v + size_t(p) * stride + d), o0);
    _mm256_storeu_ps(out + d, o0);
  }
  for (; d < hd; ++d) {
    float s = 0.0f;
    for (int64_t p = 0; p < n_pos; ++p) s += w[p] * quant::fp16_to_f32(v[size_t(p) * stride + d]);
    out[d] = s;
  }
}

}  // namespace

AttentionKernels attention_kernels_avx2() {
  return AttentionKernels{&scores_f16, &mix_f16};
}

}  // namespace shimmy::cpu
