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
#include <algorithm>
#include <vector>

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
      if constexpr (NA == 1) {
        // Decode streams the weights from DRAM once: fetch the next tile's rows early
        // (the hardware prefetcher ramps up too slowly on rows of ~1-2 KiB).
        for (int j = 0; j < NW; ++j)
          _mm_prefetch(reinterpret_cast<const char*>(w + (NW + j) * ws + b * sizeof(B)),
                       _MM_HINT_T0);
      }
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

// ---- prompt-sized tiles over a band unpacked once -----------------------------------
// With many act rows, drive_tile would rebuild every weight block's levels and scale
// once per group of 4 act rows. Packed::tile instead unpacks the band once into scratch
// (32 level bytes, plus |levels| for Signed types, and the f32 scale per block) and
// converts the act scales to f32 once, so the inner loop is loads plus the per-pair
// integer dot and FMA. The per-pair operations are exactly Q32::run's (same integer
// lanes, same dw*da product, same FMA order, same hsum), so results stay bit-identical
// to vec_dot. Only the Offset and Signed kinds use it (Affine keeps drive_tile).
struct alignas(32) Bytes32 {
  uint8_t b[32];
};

struct Scratch {
  std::vector<Bytes32> lv, ab;  // [row][block] levels; |levels| (Signed kinds)
  std::vector<Bytes32> ao;      // [act row][block] off·Σa per lane of 4 (Offset kinds)
  std::vector<float> dw, da;    // [row][block] weight scales; [act row][block] act scales
  std::vector<float> pr;        // [pair][block] dw*da of the current tile
};

template <class T>
struct Packed {
  using B = typename T::B;

  template <int NA, int NW>
  static void run(int64_t nb, Scratch& s, int64_t j0, const uint8_t* a, size_t as, int64_t i0,
                  float* out, int64_t ldo) {
    // The dw*da products of the tile first, 8 blocks per multiply: pr[(i*NW + j)*nb + b].
    const int64_t nbp = (nb + 7) & ~int64_t{7};
    float* pr = s.pr.data();
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) {
        const float* dw = s.dw.data() + (j0 + j) * nbp;
        const float* da = s.da.data() + (i0 + i) * nbp;
        float* p = pr + (i * NW + j) * nbp;
        for (int64_t b = 0; b < nbp; b += 8)
          _mm256_storeu_ps(p + b, _mm256_mul_ps(_mm256_loadu_ps(dw + b), _mm256_loadu_ps(da + b)));
      }
    const __m256i ones = _mm256_set1_epi16(1);
    const Bytes32* lv = s.lv.data() + j0 * nb;
    const Bytes32* ab = T::kind == Kind::Signed ? s.ab.data() + j0 * nb : nullptr;
    const Bytes32* ao = s.ao.data() + i0 * nb;
    const float* prc = pr;
    // acc[i*NW + j] for pair (i, j): a plain array of values passed through `step` so
    // that GCC keeps all of it in registers (with a 2-D member array it stores every
    // accumulator on each iteration).
    __m256 acc[NA * NW];
    for (int k = 0; k < NA * NW; ++k) acc[k] = _mm256_setzero_ps();
    if constexpr (NA * NW == 8) {
      // Named copies: GCC 12 keeps them in registers (the array it would store each step).
      __m256 c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3], c4 = acc[4], c5 = acc[5],
             c6 = acc[6], c7 = acc[7];
      for (int64_t b = 0; b < nb; ++b) {
        __m256 t[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
        step<NA, NW>(t, b, nb, nbp, lv, ab, ao, prc, a, as, i0, ones);
        c0 = t[0], c1 = t[1], c2 = t[2], c3 = t[3], c4 = t[4], c5 = t[5], c6 = t[6], c7 = t[7];
      }
      acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3, acc[4] = c4, acc[5] = c5, acc[6] = c6,
      acc[7] = c7;
    } else {
      for (int64_t b = 0; b < nb; ++b)
        step<NA, NW>(acc, b, nb, nbp, lv, ab, ao, prc, a, as, i0, ones);
    }
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) out[(i0 + i) * ldo + j0 + j] = hsum(acc[i * NW + j]);
  }

  template <int NA, int NW>
  [[gnu::always_inline]] static inline void step(__m256 (&acc)[NA * NW], int64_t b, int64_t nb,
                                                 int64_t nbp, const Bytes32* lv, const Bytes32* ab,
                                                 const Bytes32* ao, const float* prc,
                                                 const uint8_t* a, size_t as, int64_t i0,
                                                 __m256i ones) {
    __m256i q[NW];
    for (int j = 0; j < NW; ++j) {
      if constexpr (T::kind == Kind::Signed)
        q[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(&ab[j * nb + b]));
      else
        q[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(&lv[j * nb + b]));
    }
    for (int i = 0; i < NA; ++i) {
      const auto* ba = reinterpret_cast<const BlockQ8_0*>(a + (i0 + i) * as) + b;
      const __m256i av = loadu(ba->qs);
      for (int j = 0; j < NW; ++j) {
        __m256i p32;
        if constexpr (T::kind == Kind::Signed) {
          const __m256i sq = _mm256_load_si256(reinterpret_cast<const __m256i*>(&lv[j * nb + b]));
          p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(q[j], _mm256_sign_epi8(av, sq)), ones);
        } else {
          // Σ(q - off)·a = Σq·a - off·Σa, per lane of 4 values: exact in i32 either way.
          p32 = _mm256_sub_epi32(
              _mm256_madd_epi16(_mm256_maddubs_epi16(q[j], av), ones),
              _mm256_load_si256(reinterpret_cast<const __m256i*>(&ao[i * nb + b])));
        }
        const __m256 d = _mm256_broadcast_ss(&prc[(i * NW + j) * nbp + b]);
        acc[i * NW + j] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p32), acc[i * NW + j]);
      }
    }
  }

  // The act side (f32 scales, offset sums) is prepared once per call; the weights are
  // unpacked band by band (about 32 KiB of source rows, which stay in L2 as scratch).
  static void tile(int64_t n, const void* w, size_t ws, int64_t nw, const void* a, size_t as,
                   int64_t na, float* out, int64_t ldo) {
    if (na < 4) return drive_tile<Q32<T>>(n, w, ws, nw, a, as, na, out, ldo);
    thread_local Scratch s;
    const int64_t nb = n / 32;
    const int64_t nbp = (nb + 7) & ~int64_t{7};  // scales padded to whole vectors
    const auto* W = static_cast<const uint8_t*>(w);
    const auto* A = static_cast<const uint8_t*>(a);
    const int64_t band = std::max<int64_t>(8, int64_t((32u << 10) / std::max<size_t>(ws, 1)));
    const int64_t rows = std::min(band, nw);
    s.lv.resize(size_t(rows * nb));
    if constexpr (T::kind == Kind::Signed) s.ab.resize(size_t(rows * nb));
    s.dw.assign(size_t(rows * nbp), 0.f);
    s.da.assign(size_t(na * nbp), 0.f);
    s.pr.resize(size_t(8 * nbp));
    if constexpr (T::kind == Kind::Offset) s.ao.resize(size_t(na * nb));
    for (int64_t i = 0; i < na; ++i) {
      const auto* ba = reinterpret_cast<const BlockQ8_0*>(A + i * as);
      for (int64_t b = 0; b < nb; ++b) {
        s.da[i * nbp + b] = h2f(ba[b].d);
        if constexpr (T::kind == Kind::Offset) {
          const __m256i off = _mm256_maddubs_epi16(_mm256_set1_epi8(T::offset), loadu(ba[b].qs));
          _mm256_store_si256(reinterpret_cast<__m256i*>(&s.ao[i * nb + b]),
                             _mm256_madd_epi16(off, _mm256_set1_epi16(1)));
        }
      }
    }
    for (int64_t r0 = 0; r0 < nw; r0 += band) {
      const int64_t nr = std::min(band, nw - r0);
      for (int64_t j = 0; j < nr; ++j) {
        const B* bw = reinterpret_cast<const B*>(W + (r0 + j) * ws);
        for (int64_t b = 0; b < nb; ++b) {
          const __m256i q = T::levels(bw + b);
          _mm256_store_si256(reinterpret_cast<__m256i*>(&s.lv[j * nb + b]), q);
          if constexpr (T::kind == Kind::Signed)
            _mm256_store_si256(reinterpret_cast<__m256i*>(&s.ab[j * nb + b]),
                               _mm256_sign_epi8(q, q));
          s.dw[j * nbp + b] = h2f(bw[b].d);
        }
      }
      float* o = out + r0;
      int64_t i = 0;
      for (; i + 4 <= na; i += 4) {
        int64_t j = 0;
        for (; j + 2 <= nr; j += 2) run<4, 2>(nb, s, j, A, as, i, o, ldo);
        for (; j < nr; ++j) run<4, 1>(nb, s, j, A, as, i, o, ldo);
      }
      for (; i < na; ++i) {
        int64_t j = 0;
        for (; j + 4 <= nr; j += 4) run<1, 4>(nb, s, j, A, as, i, o, ldo);
        for (; j < nr; ++j) run<1, 1>(nb, s, j, A, as, i, o, ldo);
      }
    }
  }
};

template <class T>
DotFns packed_fns() {
  return DotFns{&drive_dot<Q32<T>>, &Packed<T>::tile, true};
}

}  // namespace

DotFns avx2_dot_fns_q32(TensorType t) {
  switch (t) {
    case TensorType::Q4_0:
      return packed_fns<TQ4_0>();
    case TensorType::Q5_0:
      return packed_fns<TQ5_0>();
    case TensorType::Q8_0:
      return packed_fns<TQ8_0>();
    case TensorType::IQ4_NL:
      return packed_fns<TIQ4_NL>();
    case TensorType::Q4_1:
      return make_dot_fns<Q32<TQ4_1>>();
    case TensorType::Q5_1:
      return make_dot_fns<Q32<TQ5_1>>();
    default:
      return {};
  }
}

}  // namespace shimmy::quant
