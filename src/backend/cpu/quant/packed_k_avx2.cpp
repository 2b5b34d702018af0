// AVX2 tiles over packed (row-interleaved) Q4_K / Q6_K groups; layout in packed_k.cpp and
// packed.h. One call computes NA act rows (1..4) against one group of 8 weight rows, one
// row per 32-bit lane, super-block after super-block:
//   levels: a vector holds 4 values of each of the 8 rows (one 32-bit word a row, as
//           stored); a broadcast 4-byte act chunk meets them in one maddubs, and chunks
//           are summed in int16 (no overflow, see below) before one madd with the
//           sub-block's scale, duplicated in both int16 halves of a row's lane;
//   mins:   Σ_s m_s·bsum_s with the row's 6-bit mins (Q4_K) or scales (Q6_K) as int16
//           pairs against broadcast pairs of act block sums;
//   float:  per super-block (d_a·d)·float(sumi) − (d_a·dmin)·float(summ) (Q4_K) or
//           (d_a·d)·float(sumi − 32·summ) (Q6_K), then one add: the scalar vec_dot's
//           operations on exact integers, so results are bit-identical to it.
// Int16 ranges: Q4_K levels <= 15, |a| <= 127: 8 chunks sum to <= 8·2·15·127 = 30480;
// Q6_K levels <= 63: 2 chunks sum to <= 2·2·63·127 = 32004.
#include <vector>

#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/simd_avx2.h"

namespace shimmy::quant {
namespace {

using namespace avx2;
using gguf::TensorType;

constexpr int kRows = 8;

// One act row's super-block, prepared once per call: its scale and 8 int16 pairs of block
// sums (which pairs: each type's `pairs`).
struct KPrep {
  float d;
  int32_t p[8];
};

static inline int32_t pair16(int a, int b) {
  return int32_t(uint32_t(uint16_t(int16_t(a))) | (uint32_t(uint16_t(int16_t(b))) << 16));
}

// Shuffle controls that make a scale vector of int16 pairs (x, x) from byte q of each
// row's 32-bit word: kDupU zero-extends (x in the low byte), kDupS puts x in the high byte
// for an arithmetic shift (sign extension).
struct DupControls {
  alignas(32) uint8_t u[4][32];
  alignas(32) uint8_t s[4][32];
  constexpr DupControls() : u{}, s{} {
    for (int q = 0; q < 4; ++q)
      for (int b = 0; b < 32; ++b) {
        const int word = (b % 16) / 4, pos = b % 4;
        const uint8_t src = uint8_t(4 * word + q);
        u[q][b] = (pos % 2 == 0) ? src : 0x80;
        s[q][b] = (pos % 2 == 1) ? src : 0x80;
      }
  }
};
constexpr DupControls kDup;

static inline __m256i dup_byte_u(__m256i v, int q) {
  return _mm256_shuffle_epi8(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(kDup.u[q])));
}
static inline __m256i dup_byte_s(__m256i v, int q) {
  return _mm256_srai_epi16(
      _mm256_shuffle_epi8(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(kDup.s[q]))), 8);
}

struct PQ4K {
  static constexpr size_t kBlockBytes = 8 * sizeof(BlockQ4_K);
  // B_s = bsums[2s] + bsums[2s+1] (32 values); pairs (B0,B2) (B1,B3) (B4,B6) (B5,B7).
  static void pairs(const BlockQ8_K* y, int32_t* p) {
    int B[8];
    for (int s = 0; s < 8; ++s) B[s] = y->bsums[2 * s] + y->bsums[2 * s + 1];
    p[0] = pair16(B[0], B[2]);
    p[1] = pair16(B[1], B[3]);
    p[2] = pair16(B[4], B[6]);
    p[3] = pair16(B[5], B[7]);
  }

  template <int NA>
  static inline void block(const uint8_t* gb, const BlockQ8_K* const* y, const KPrep* const* pp,
                           __m256 (&acc)[NA]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m6 = _mm256_set1_epi8(0x3F),
                  m2 = _mm256_set1_epi8(0x03);
    // Rows' scales[12] as 3 words: sc0-3 | m0-3 | low nibbles of sc4-7, m4-7; the top 2
    // bits of bytes 0-7 are the high bits of sc4-7 / m4-7.
    const __m256i A0 = loadu(gb + 32), A1 = loadu(gb + 64), A2 = loadu(gb + 96);
    const __m256i sc_lo = _mm256_and_si256(A0, m6);
    const __m256i sc_hi =
        _mm256_or_si256(_mm256_and_si256(A2, m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(A0, 6), m2), 4));
    __m256i sumi[NA];
    for (int i = 0; i < NA; ++i) sumi[i] = _mm256_setzero_si256();
    for (int jp = 0; jp < 4; ++jp) {
      const uint8_t* q = gb + 128 + 256 * jp;
      for (int h = 0; h < 2; ++h) {  // sub-block 2jp + h: low nibbles, then high
        const int s = 2 * jp + h;
        const __m256i sv = dup_byte_u(s < 4 ? sc_lo : sc_hi, s & 3);
        __m256i L[8];
        for (int v = 0; v < 8; ++v) {
          const __m256i x = loadu(q + 32 * v);
          L[v] = _mm256_and_si256(h ? _mm256_srli_epi16(x, 4) : x, m4);
        }
        for (int i = 0; i < NA; ++i) {
          const int8_t* a = y[i]->qs + 64 * jp + 32 * h;
          __m256i s16 = _mm256_maddubs_epi16(L[0], bcast4(a));
          for (int v = 1; v < 8; ++v)
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(L[v], bcast4(a + 4 * v)));
          sumi[i] = _mm256_add_epi32(sumi[i], _mm256_madd_epi16(s16, sv));
        }
      }
    }
    const __m256i mn_lo = _mm256_and_si256(A1, m6);
    const __m256i mn_hi =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A2, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(A1, 6), m2), 4));
    const __m256i lo8 = _mm256_set1_epi16(0xFF);
    const __m256i ev_lo = _mm256_and_si256(mn_lo, lo8), od_lo = _mm256_srli_epi16(mn_lo, 8);
    const __m256i ev_hi = _mm256_and_si256(mn_hi, lo8), od_hi = _mm256_srli_epi16(mn_hi, 8);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gb)));
    const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gb + 16)));
    for (int i = 0; i < NA; ++i) {
      const int32_t* p = pp[i]->p;
      const __m256i mn =
          _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(ev_lo, _mm256_set1_epi32(p[0])),
                                            _mm256_madd_epi16(od_lo, _mm256_set1_epi32(p[1]))),
                           _mm256_add_epi32(_mm256_madd_epi16(ev_hi, _mm256_set1_epi32(p[2])),
                                            _mm256_madd_epi16(od_hi, _mm256_set1_epi32(p[3]))));
      const __m256 da = _mm256_set1_ps(pp[i]->d);
      const __m256 t1 = _mm256_mul_ps(_mm256_mul_ps(da, dw), _mm256_cvtepi32_ps(sumi[i]));
      const __m256 t2 = _mm256_mul_ps(_mm256_mul_ps(da, dm), _mm256_cvtepi32_ps(mn));
      acc[i] = _mm256_add_ps(acc[i], _mm256_sub_ps(t1, t2));
    }
  }
};

struct PQ6K {
  static constexpr size_t kBlockBytes = 8 * sizeof(BlockQ6_K);
  // Pairs (bsums[4t], bsums[4t+2]), (bsums[4t+1], bsums[4t+3]) for t = 0..3.
  static void pairs(const BlockQ8_K* y, int32_t* p) {
    for (int t = 0; t < 4; ++t) {
      p[2 * t] = pair16(y->bsums[4 * t], y->bsums[4 * t + 2]);
      p[2 * t + 1] = pair16(y->bsums[4 * t + 1], y->bsums[4 * t + 3]);
    }
  }

  template <int NA>
  static inline void block(const uint8_t* gb, const BlockQ8_K* const* y, const KPrep* const* pp,
                           __m256 (&acc)[NA]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const uint8_t* ql = gb + 144;
    const uint8_t* qh = gb + 144 + 1024;
    __m256i sumi[NA];
    for (int i = 0; i < NA; ++i) sumi[i] = _mm256_setzero_si256();
    // Value 128h + 32k + 4u + t: low 4 bits in ql word 16h + 8(k&1) + u (high nibble when
    // k >= 2), high 2 bits at bit 2k of qh word 8h + u; 16 values share a scale.
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)
        for (int e = 0; e < 2; ++e) {
          const int s = 8 * h + 2 * k + e;
          const __m256i sv = dup_byte_s(loadu(gb + 16 + 32 * (s >> 2)), s & 3);
          __m256i L[4];
          for (int c = 0; c < 4; ++c) {
            const int u = 4 * e + c;
            const __m256i x = loadu(ql + 32 * (16 * h + 8 * (k & 1) + u));
            const __m256i z = loadu(qh + 32 * (8 * h + u));
            const __m256i lo = _mm256_and_si256(k >= 2 ? _mm256_srli_epi16(x, 4) : x, m4);
            __m256i hi;
            if (k == 0)
              hi = _mm256_slli_epi16(z, 4);
            else if (k == 1)
              hi = _mm256_slli_epi16(z, 2);
            else if (k == 2)
              hi = z;
            else
              hi = _mm256_srli_epi16(z, 2);
            L[c] = _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
          }
          for (int i = 0; i < NA; ++i) {
            const int8_t* a = y[i]->qs + 128 * h + 32 * k + 16 * e;
            const __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(L[0], bcast4(a)),
                                                _mm256_maddubs_epi16(L[1], bcast4(a + 4)));
            const __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(L[2], bcast4(a + 8)),
                                                _mm256_maddubs_epi16(L[3], bcast4(a + 12)));
            sumi[i] = _mm256_add_epi32(
                sumi[i], _mm256_add_epi32(_mm256_madd_epi16(s0, sv), _mm256_madd_epi16(s1, sv)));
          }
        }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gb)));
    for (int i = 0; i < NA; ++i) {
      const int32_t* p = pp[i]->p;
      __m256i mn = _mm256_setzero_si256();
      for (int t = 0; t < 4; ++t) {
        const __m256i S = loadu(gb + 16 + 32 * t);  // rows' scales 4t..4t+3, signed
        const __m256i ev = _mm256_srai_epi16(_mm256_slli_epi16(S, 8), 8);
        const __m256i od = _mm256_srai_epi16(S, 8);
        mn = _mm256_add_epi32(
            mn, _mm256_add_epi32(_mm256_madd_epi16(ev, _mm256_set1_epi32(p[2 * t])),
                                 _mm256_madd_epi16(od, _mm256_set1_epi32(p[2 * t + 1]))));
      }
      const __m256i q = _mm256_sub_epi32(sumi[i], _mm256_slli_epi32(mn, 5));
      const __m256 t1 =
          _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(pp[i]->d), dw), _mm256_cvtepi32_ps(q));
      acc[i] = _mm256_add_ps(acc[i], t1);
    }
  }
};

template <class T, int NA>
void group_tile(int64_t nsb, const uint8_t* grp, const uint8_t* a, size_t as, const KPrep* prep,
                float* out, int64_t ldo) {
  __m256 acc[NA];
  for (int i = 0; i < NA; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nsb; ++b) {
    const uint8_t* gb = grp + size_t(b) * T::kBlockBytes;
    if constexpr (NA == 1) prefetch_ahead(gb, T::kBlockBytes);  // decode
    const BlockQ8_K* y[NA];
    const KPrep* pp[NA];
    for (int i = 0; i < NA; ++i) {
      y[i] = reinterpret_cast<const BlockQ8_K*>(a + size_t(i) * as) + b;
      pp[i] = prep + i * nsb + b;
    }
    T::template block<NA>(gb, y, pp, acc);
  }
  for (int i = 0; i < NA; ++i) _mm256_storeu_ps(out + i * ldo, acc[i]);
}

template <class T>
void tile(int64_t n, const void* w, size_t ws, int64_t nw, const void* a, size_t as, int64_t na,
          float* out, int64_t ldo) {
  const int64_t nsb = n / 256;
  thread_local std::vector<KPrep> prep;
  prep.resize(size_t(na * nsb));
  const auto* A = static_cast<const uint8_t*>(a);
  for (int64_t i = 0; i < na; ++i)
    for (int64_t b = 0; b < nsb; ++b) {
      const auto* y = reinterpret_cast<const BlockQ8_K*>(A + size_t(i) * as) + b;
      KPrep& p = prep[size_t(i * nsb + b)];
      p.d = y->d;
      T::pairs(y, p.p);
    }
  const auto* W = static_cast<const uint8_t*>(w);
  for_each_group(nw / kRows, size_t(kRows) * ws, na, [&]<int NA>(int64_t g, int64_t i) {
    group_tile<T, NA>(nsb, W + size_t(g) * kRows * ws, A + size_t(i) * as, as,
                      prep.data() + i * nsb, out + i * ldo + g * kRows, ldo);
  });
}

}  // namespace

DotFns packed_avx2_fns_k(TensorType t) {
  switch (t) {
    case TensorType::Q4_K:
      return DotFns{nullptr, &tile<PQ4K>, true};
    case TensorType::Q6_K:
      return DotFns{nullptr, &tile<PQ6K>, true};
    default:
      return {};
  }
}

}  // namespace shimmy::quant
