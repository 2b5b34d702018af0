// AVX2 products of the 32-value block types (Q4_0 Q5_0 Q8_0 IQ4_NL with Q8_0 acts,
// Q4_1 Q5_1 with Q8_1 acts).
//
// Per block, the weight levels become 32 bytes in one register and the integer dot is
// _mm256_maddubs_epi16 (u8 × s8 -> pairs of i16) then _mm256_madd_epi16 with ones
// (-> 8 × i32). Three ways to get an unsigned operand for maddubs:
//   Offset  (Q4_0, Q5_0): levels stored +8/+16 are already unsigned; subtract
//           maddubs(offset, a) in i16, computed once per act block for all weight rows.
//   Signed  (Q8_0, IQ4_NL): |w| × (a with w's sign), via _mm256_sign_epi8.
//   Affine  (Q4_1, Q5_1): levels are unsigned; the min adds m_w * s_a per block.
// Then acc = fma(d_w*d_a, float(i32 lanes), acc) per block, one hsum at the end: the
// same operations for every pair whatever the tile shape.
#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/simd_avx2.h"

namespace shimmy::quant {
namespace {

using namespace avx2;
using gguf::TensorType;

enum class Kind { Offset, Signed, Affine };

struct TQ4_0 {
  using B = BlockQ4_0;
  using A = BlockQ8_0;
  static constexpr Kind kind = Kind::Offset;
  static constexpr int offset = 8;
  static __m256i levels(const B* b) { return nibbles32(b->qs); }
};
struct TQ5_0 {
  using B = BlockQ5_0;
  using A = BlockQ8_0;
  static constexpr Kind kind = Kind::Offset;
  static constexpr int offset = 16;
  static __m256i levels(const B* b) {
    const __m256i hi = _mm256_and_si256(bits_to_bytes(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
  }
};
struct TQ4_1 {
  using B = BlockQ4_1;
  using A = BlockQ8_1;
  static constexpr Kind kind = Kind::Affine;
  static constexpr int offset = 0;
  static __m256i levels(const B* b) { return nibbles32(b->qs); }
};
struct TQ5_1 {
  using B = BlockQ5_1;
  using A = BlockQ8_1;
  static constexpr Kind kind = Kind::Affine;
  static constexpr int offset = 0;
  static __m256i levels(const B* b) {
    const __m256i hi = _mm256_and_si256(bits_to_bytes(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
  }
};
struct TQ8_0 {
  using B = BlockQ8_0;
  using A = BlockQ8_0;
  static constexpr Kind kind = Kind::Signed;
  static constexpr int offset = 0;
  static __m256i levels(const B* b) { return loadu(b->qs); }
};
struct TIQ4_NL {
  using B = BlockIQ4_NL;
  using A = BlockQ8_0;
  static constexpr Kind kind = Kind::Signed;
  static constexpr int offset = 0;
  static __m256i levels(const B* b) {
    const __m256i table =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NL)));
    return _mm256_shuffle_epi8(table, nibbles32(b->qs));
  }
};

template <class T>
struct Q32 {
  using B = typename T::B;
  using A = typename T::A;

  template <int NA, int NW>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out,
                  int64_t ldo) {
    const int64_t nb = n / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[NA][NW];
    float summ[NA][NW];
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) acc[i][j] = _mm256_setzero_ps(), summ[i][j] = 0.f;

    for (int64_t b = 0; b < nb; ++b) {
      __m256i q[NW], qabs[NW];
      __m256 dw[NW];
      float mw[NW];
      for (int j = 0; j < NW; ++j) {
        const B* bw = reinterpret_cast<const B*>(w + j * ws) + b;
        q[j] = T::levels(bw);
        dw[j] = _mm256_set1_ps(h2f(bw->d));
        if constexpr (T::kind == Kind::Signed) qabs[j] = _mm256_sign_epi8(q[j], q[j]);
        if constexpr (T::kind == Kind::Affine) mw[j] = h2f(bw->m);
      }
      for (int i = 0; i < NA; ++i) {
        const A* ba = reinterpret_cast<const A*>(a + i * as) + b;
        const __m256i av = loadu(ba->qs);
        const __m256 da = _mm256_set1_ps(h2f(ba->d));
        __m256i aoff = _mm256_setzero_si256();
        if constexpr (T::kind == Kind::Offset)
          aoff = _mm256_maddubs_epi16(_mm256_set1_epi8(T::offset), av);
        for (int j = 0; j < NW; ++j) {
          __m256i p;
          if constexpr (T::kind == Kind::Signed) {
            p = _mm256_maddubs_epi16(qabs[j], _mm256_sign_epi8(av, q[j]));
          } else {
            p = _mm256_maddubs_epi16(q[j], av);
            if constexpr (T::kind == Kind::Offset) p = _mm256_sub_epi16(p, aoff);
          }
          const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
          acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dw[j], da), s, acc[i][j]);
          if constexpr (T::kind == Kind::Affine) summ[i][j] += mw[j] * h2f(ba->s);
        }
      }
    }
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) out[i * ldo + j] = hsum(acc[i][j]) + summ[i][j];
  }
};

}  // namespace

DotFns avx2_dot_fns_q32(TensorType t) {
  switch (t) {
    case TensorType::Q4_0:
      return make_dot_fns<Q32<TQ4_0>>();
    case TensorType::Q5_0:
      return make_dot_fns<Q32<TQ5_0>>();
    case TensorType::Q8_0:
      return make_dot_fns<Q32<TQ8_0>>();
    case TensorType::IQ4_NL:
      return make_dot_fns<Q32<TIQ4_NL>>();
    case TensorType::Q4_1:
      return make_dot_fns<Q32<TQ4_1>>();
    case TensorType::Q5_1:
      return make_dot_fns<Q32<TQ5_1>>();
    default:
      return {};
  }
}

}  // namespace shimmy::quant
