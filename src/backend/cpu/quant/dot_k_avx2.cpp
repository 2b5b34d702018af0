// AVX2 products of the K super-block types (Q2_K..Q6_K) with Q8_K acts.
//
// Each weight super-block is unpacked once per tile into KUnpacked (256 unsigned levels,
// int16 scale vectors, int16 mins; see blocks.h), then dotted with every act row of the
// tile by one core shared by all K types:
//   sumi(8 × i32) = Σ_c madd(maddubs(q[c], a[c]), sv[c])        exact integers
//   mn(8 × i32)   = madd(bsums, mins16)
//   acc  = fma(d_a*d,    float(sumi [- mn if symmetric]), acc)
//   accm = fma(d_a*dmin, float(mn), accm)                        (affine types only)
//   result = hsum(acc) - hsum(accm)
// Ranges: levels <= 63 and |a| <= 127 keep maddubs below 2^15; |scales| <= 127.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/simd_avx2.h"

namespace shimmy::quant {
namespace {

using namespace avx2;
using gguf::TensorType;

void store(uint8_t* p, __m256i v) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(p), v);
}

__m256i bits_at(__m256i x, int shift, int mask) {
  return _mm256_and_si256(_mm256_srl_epi16(x, _mm_cvtsi32_si128(shift)),
                          _mm256_set1_epi8(char(mask)));
}

// Stores sc16 and mins16 (16 signed bytes each, one per 16 values, widened to int16) and
// the scale vectors: sv[c] = dword c of sc16 (the pair sc16[2c], sc16[2c+1]) broadcast,
// then each 128-bit lane keeps its own half of the pair.
void put_scales(KUnpacked* u, __m128i s8, __m256i mins16) {
  const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
  store(reinterpret_cast<uint8_t*>(u->sc16), sc16);
  store(reinterpret_cast<uint8_t*>(u->mins16), mins16);
  const __m256i halves = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  for (int c = 0; c < 8; ++c) {
    const __m256i pair = _mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(c));
    store(reinterpret_cast<uint8_t*>(u->sv[c]), _mm256_shuffle_epi8(pair, halves));
  }
}

// Q4_K / Q5_K: 8 six-bit scales and 8 mins from 12 bytes (4 at a time in u32 lanes),
// each duplicated so there is one per 16 values.
void put_scales_k4(const uint8_t* scales, KUnpacked* u) {
  uint32_t a[3];
  std::memcpy(a, scales, 12);
  const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
  const uint32_t sc[2] = {a[0] & lo6, (a[2] & lo4) | (((a[0] >> 6) & lo2) << 4)};
  const uint32_t mn[2] = {a[1] & lo6, ((a[2] >> 4) & lo4) | (((a[1] >> 6) & lo2) << 4)};
  const __m128i s = _mm_set_epi32(0, 0, int(sc[1]), int(sc[0]));
  const __m128i m = _mm_set_epi32(0, 0, int(mn[1]), int(mn[0]));
  put_scales(u, _mm_unpacklo_epi8(s, s), _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m)));
}

void unpack_q2(const BlockQ2_K* b, KUnpacked* u) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales));
  const __m128i lo4 = _mm_set1_epi8(0x0F);
  put_scales(u, _mm_and_si128(x, lo4),
             _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(x, 4), lo4)));
  u->d = h2f(b->d);
  u->dmin = h2f(b->dmin);
  for (int h = 0; h < 2; ++h) {
    const __m256i q = loadu(b->qs + 32 * h);
    for (int j = 0; j < 4; ++j) store(u->q + 128 * h + 32 * j, bits_at(q, 2 * j, 3));
  }
}

void unpack_q3(const BlockQ3_K* b, KUnpacked* u) {
  uint32_t a[3];
  std::memcpy(a, b->scales, 12);
  const uint32_t lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
  const __m128i s = _mm_setr_epi32(int((a[0] & lo4) | ((a[2] & lo2) << 4)),
                                   int((a[1] & lo4) | (((a[2] >> 2) & lo2) << 4)),
                                   int(((a[0] >> 4) & lo4) | (((a[2] >> 4) & lo2) << 4)),
                                   int(((a[1] >> 4) & lo4) | (((a[2] >> 6) & lo2) << 4)));
  const __m128i s8 = _mm_sub_epi8(s, _mm_set1_epi8(32));
  put_scales(u, s8, _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 2));  // mins = 4 * sc
  u->d = u->dmin = h2f(b->d);
  const __m256i hm = loadu(b->hmask);
  for (int h = 0; h < 2; ++h) {
    const __m256i q = loadu(b->qs + 32 * h);
    for (int j = 0; j < 4; ++j) {
      const __m256i hi = _mm256_slli_epi16(bits_at(hm, 4 * h + j, 1), 2);
      store(u->q + 128 * h + 32 * j, _mm256_or_si256(bits_at(q, 2 * j, 3), hi));
    }
  }
}

void unpack_q4(const BlockQ4_K* b, KUnpacked* u) {
  put_scales_k4(b->scales, u);
  u->d = h2f(b->d);
  u->dmin = h2f(b->dmin);
  for (int j = 0; j < 4; ++j) {
    const __m256i x = loadu(b->qs + 32 * j);
    store(u->q + 64 * j, bits_at(x, 0, 0xF));
    store(u->q + 64 * j + 32, bits_at(x, 4, 0xF));
  }
}

void unpack_q5(const BlockQ5_K* b, KUnpacked* u) {
  put_scales_k4(b->scales, u);
  u->d = h2f(b->d);
  u->dmin = h2f(b->dmin);
  const __m256i qh = loadu(b->qh);
  for (int j = 0; j < 4; ++j) {
    const __m256i x = loadu(b->qs + 32 * j);
    const __m256i h0 = _mm256_slli_epi16(bits_at(qh, 2 * j, 1), 4);
    const __m256i h1 = _mm256_slli_epi16(bits_at(qh, 2 * j + 1, 1), 4);
    store(u->q + 64 * j, _mm256_or_si256(bits_at(x, 0, 0xF), h0));
    store(u->q + 64 * j + 32, _mm256_or_si256(bits_at(x, 4, 0xF), h1));
  }
}

void unpack_q6(const BlockQ6_K* b, KUnpacked* u) {
  const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales));
  put_scales(u, s8, _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 5));  // mins = 32 * sc
  u->d = u->dmin = h2f(b->d);
  for (int h = 0; h < 2; ++h) {
    const __m256i l0 = loadu(b->ql + 64 * h), l1 = loadu(b->ql + 64 * h + 32);
    const __m256i qh = loadu(b->qh + 32 * h);
    const __m256i lo[4] = {bits_at(l0, 0, 0xF), bits_at(l1, 0, 0xF), bits_at(l0, 4, 0xF),
                           bits_at(l1, 4, 0xF)};
    for (int k = 0; k < 4; ++k) {
      const __m256i hi = _mm256_slli_epi16(bits_at(qh, 2 * k, 3), 4);
      store(u->q + 128 * h + 32 * k, _mm256_or_si256(lo[k], hi));
    }
  }
}

template <bool kSym>
inline void kdot(const KUnpacked& u, const BlockQ8_K* y, __m256& acc, __m256& accm) {
  __m256i sumi = _mm256_setzero_si256();
  for (int c = 0; c < 8; ++c) {
    const __m256i p = _mm256_maddubs_epi16(
        _mm256_load_si256(reinterpret_cast<const __m256i*>(u.q + 32 * c)), loadu(y->qs + 32 * c));
    sumi = _mm256_add_epi32(
        sumi, _mm256_madd_epi16(p, _mm256_load_si256(reinterpret_cast<const __m256i*>(u.sv[c]))));
  }
  const __m256i mn = _mm256_madd_epi16(loadu(y->bsums), loadu(u.mins16));
  if constexpr (kSym) {
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * u.d),
                          _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, mn)), acc);
  } else {
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * u.d), _mm256_cvtepi32_ps(sumi), acc);
    accm = _mm256_fmadd_ps(_mm256_set1_ps(y->d * u.dmin), _mm256_cvtepi32_ps(mn), accm);
  }
}

// ---- fused decode kernels (one act row) ------------------------------------------------
// Decode reads each weight super-block once, so unpacking it into KUnpacked (stores, then
// loads) is pure overhead there: these compute the same integer lanes (same chunks c, same
// scale vectors, same add order) in registers and finish with the same FMAs as kdot, so
// the result is bit-identical to the unpacked path.
inline void scale_vecs(__m128i s8, __m256i (&sv)[8]) {
  const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
  const __m256i halves = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  for (int c = 0; c < 8; ++c)
    sv[c] = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(c)), halves);
}

inline __m256i chunk(__m256i q, const int8_t* a, __m256i sv) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, loadu(a)), sv);
}

void fused_q4(const BlockQ4_K* b, const BlockQ8_K* y, __m256& acc, __m256& accm) {
  uint32_t a[3];
  std::memcpy(a, b->scales, 12);
  const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
  const uint32_t sc[2] = {a[0] & lo6, (a[2] & lo4) | (((a[0] >> 6) & lo2) << 4)};
  const uint32_t mn[2] = {a[1] & lo6, ((a[2] >> 4) & lo4) | (((a[1] >> 6) & lo2) << 4)};
  const __m128i s = _mm_set_epi32(0, 0, int(sc[1]), int(sc[0]));
  const __m128i m = _mm_set_epi32(0, 0, int(mn[1]), int(mn[0]));
  __m256i sv[8];
  scale_vecs(_mm_unpacklo_epi8(s, s), sv);
  __m256i sumi = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {
    const __m256i x = loadu(b->qs + 32 * j);
    sumi = _mm256_add_epi32(sumi, chunk(bits_at(x, 0, 0xF), y->qs + 64 * j, sv[2 * j]));
    sumi = _mm256_add_epi32(sumi, chunk(bits_at(x, 4, 0xF), y->qs + 64 * j + 32, sv[2 * j + 1]));
  }
  const __m256i mn16 =
      _mm256_madd_epi16(loadu(y->bsums), _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m)));
  acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * h2f(b->d)), _mm256_cvtepi32_ps(sumi), acc);
  accm = _mm256_fmadd_ps(_mm256_set1_ps(y->d * h2f(b->dmin)), _mm256_cvtepi32_ps(mn16), accm);
}

void fused_q6(const BlockQ6_K* b, const BlockQ8_K* y, __m256& acc, __m256& /*accm*/) {
  const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales));
  __m256i sv[8];
  scale_vecs(s8, sv);
  __m256i sumi = _mm256_setzero_si256();
  for (int h = 0; h < 2; ++h) {
    const __m256i l0 = loadu(b->ql + 64 * h), l1 = loadu(b->ql + 64 * h + 32);
    const __m256i qh = loadu(b->qh + 32 * h);
    const __m256i lo[4] = {bits_at(l0, 0, 0xF), bits_at(l1, 0, 0xF), bits_at(l0, 4, 0xF),
                           bits_at(l1, 4, 0xF)};
    for (int k = 0; k < 4; ++k) {
      const __m256i q = _mm256_or_si256(lo[k], _mm256_slli_epi16(bits_at(qh, 2 * k, 3), 4));
      sumi = _mm256_add_epi32(sumi, chunk(q, y->qs + 32 * (4 * h + k), sv[4 * h + k]));
    }
  }
  const __m256i mn =
      _mm256_madd_epi16(loadu(y->bsums), _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 5));
  acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * h2f(b->d)),
                        _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, mn)), acc);
}

// Fused-kernel selectors (a function pointer with __m256 parameters cannot be a template
// argument without losing its vector attributes).
struct NoFused {
  static constexpr bool kOn = false;
  template <class B>
  static void run(const B*, const BlockQ8_K*, __m256&, __m256&) {}
};
struct FusedQ4 {
  static constexpr bool kOn = true;
  static void run(const BlockQ4_K* b, const BlockQ8_K* y, __m256& acc, __m256& accm) {
    fused_q4(b, y, acc, accm);
  }
};
struct FusedQ6 {
  static constexpr bool kOn = true;
  static void run(const BlockQ6_K* b, const BlockQ8_K* y, __m256& acc, __m256& accm) {
    fused_q6(b, y, acc, accm);
  }
};

template <class B, void (*Unpack)(const B*, KUnpacked*), bool kSym, class Fused = NoFused>
struct KDot {
  template <int NA, int NW>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out,
                  int64_t ldo) {
    __m256 acc[NA][NW], accm[NA][NW];
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) acc[i][j] = accm[i][j] = _mm256_setzero_ps();
    KUnpacked u[NW];
    for (int64_t b = 0; b < n / 256; ++b) {
      if constexpr (NA == 1) {
        // Decode: fetch the next tile's rows early (see dot_q32_avx2.cpp).
        for (int j = 0; j < NW; ++j)
          for (size_t o = 0; o < sizeof(B); o += 64)
            _mm_prefetch(reinterpret_cast<const char*>(w + (NW + j) * ws + b * sizeof(B) + o),
                         _MM_HINT_T0);
      }
      if constexpr (NA == 1 && Fused::kOn) {
        const BlockQ8_K* y = reinterpret_cast<const BlockQ8_K*>(a) + b;
        for (int j = 0; j < NW; ++j)
          Fused::run(reinterpret_cast<const B*>(w + j * ws) + b, y, acc[0][j], accm[0][j]);
        continue;
      }
      for (int j = 0; j < NW; ++j) Unpack(reinterpret_cast<const B*>(w + j * ws) + b, &u[j]);
      for (int i = 0; i < NA; ++i) {
        const BlockQ8_K* y = reinterpret_cast<const BlockQ8_K*>(a + i * as) + b;
        for (int j = 0; j < NW; ++j) kdot<kSym>(u[j], y, acc[i][j], accm[i][j]);
      }
    }
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) out[i * ldo + j] = hsum(acc[i][j]) - hsum(accm[i][j]);
  }

  // NA × NW pairs over weight super-blocks already unpacked: u[j * nsb + b] for row j.
  template <int NA, int NW>
  static void run_unpacked(int64_t nsb, const KUnpacked* u, const uint8_t* a, size_t as, float* out,
                           int64_t ldo) {
    __m256 acc[NA][NW], accm[NA][NW];
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) acc[i][j] = accm[i][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nsb; ++b) {
      for (int i = 0; i < NA; ++i) {
        const BlockQ8_K* y = reinterpret_cast<const BlockQ8_K*>(a + i * as) + b;
        for (int j = 0; j < NW; ++j) kdot<kSym>(u[j * nsb + b], y, acc[i][j], accm[i][j]);
      }
    }
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) out[i * ldo + j] = hsum(acc[i][j]) - hsum(accm[i][j]);
  }

  // Prompt-sized products: each band of weight rows (about 32 KiB of source) is unpacked
  // once into scratch instead of once per group of 4 act rows; per pair the operations
  // are run's, so the bits are the same.
  static void tile(int64_t n, const void* w, size_t ws, int64_t nw, const void* a, size_t as,
                   int64_t na, float* out, int64_t ldo) {
    if (na < 4) return drive_tile<KDot>(n, w, ws, nw, a, as, na, out, ldo);
    thread_local std::vector<KUnpacked> scratch;
    const int64_t nsb = n / 256;
    const auto* W = static_cast<const uint8_t*>(w);
    const auto* A = static_cast<const uint8_t*>(a);
    const int64_t band = std::max<int64_t>(8, int64_t((32u << 10) / std::max<size_t>(ws, 1)));
    scratch.resize(size_t(std::min(band, nw) * nsb));
    for (int64_t r0 = 0; r0 < nw; r0 += band) {
      const int64_t nr = std::min(band, nw - r0);
      for (int64_t j = 0; j < nr; ++j)
        for (int64_t b = 0; b < nsb; ++b)
          Unpack(reinterpret_cast<const B*>(W + (r0 + j) * ws) + b, &scratch[size_t(j * nsb + b)]);
      const KUnpacked* u = scratch.data();
      float* o = out + r0;
      int64_t i = 0;
      for (; i + 4 <= na; i += 4) {
        int64_t j = 0;
        for (; j + 2 <= nr; j += 2)
          run_unpacked<4, 2>(nsb, u + j * nsb, A + i * as, as, o + i * ldo + j, ldo);
        for (; j < nr; ++j)
          run_unpacked<4, 1>(nsb, u + j * nsb, A + i * as, as, o + i * ldo + j, ldo);
      }
      for (; i < na; ++i) {
        int64_t j = 0;
        for (; j + 4 <= nr; j += 4)
          run_unpacked<1, 4>(nsb, u + j * nsb, A + i * as, as, o + i * ldo + j, ldo);
        for (; j < nr; ++j)
          run_unpacked<1, 1>(nsb, u + j * nsb, A + i * as, as, o + i * ldo + j, ldo);
      }
    }
  }
};

template <class K>
DotFns k_fns() {
  return DotFns{&drive_dot<K>, &K::tile, true};
}

}  // namespace

DotFns avx2_dot_fns_k(TensorType t) {
  switch (t) {
    case TensorType::Q2_K:
      return k_fns<KDot<BlockQ2_K, unpack_q2, false>>();
    case TensorType::Q3_K:
      return k_fns<KDot<BlockQ3_K, unpack_q3, true>>();
    case TensorType::Q4_K:
      return k_fns<KDot<BlockQ4_K, unpack_q4, false, FusedQ4>>();
    case TensorType::Q5_K:
      return k_fns<KDot<BlockQ5_K, unpack_q5, false>>();
    case TensorType::Q6_K:
      return k_fns<KDot<BlockQ6_K, unpack_q6, true, FusedQ6>>();
    default:
      return {};
  }
}

bool unpack_k_avx2(TensorType t, const void* block, KUnpacked* u) {
  switch (t) {
    case TensorType::Q2_K:
      unpack_q2(static_cast<const BlockQ2_K*>(block), u);
      return true;
    case TensorType::Q3_K:
      unpack_q3(static_cast<const BlockQ3_K*>(block), u);
      return true;
    case TensorType::Q4_K:
      unpack_q4(static_cast<const BlockQ4_K*>(block), u);
      return true;
    case TensorType::Q5_K:
      unpack_q5(static_cast<const BlockQ5_K*>(block), u);
      return true;
    case TensorType::Q6_K:
      unpack_q6(static_cast<const BlockQ6_K*>(block), u);
      return true;
    default:
      return false;
  }
}

}  // namespace shimmy::quant
