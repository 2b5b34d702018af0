// Internal AVX2 helpers; include only from *_avx2.cpp files (compiled with -mavx2 -mfma
// -mf16c). Everything is static so no AVX2 code can leak into baseline files.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace shimmy::quant::avx2 {

// Sum of the 8 lanes, always in the same order (lanes 0+4, 1+5, ... then pairs): every
// kernel finishes with this, which is part of what makes tiles agree bit for bit.
static inline float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

static inline float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

// 16 bytes of packed nibbles -> 32 bytes: the 16 low nibbles, then the 16 high nibbles
// (the order of values in every 32-value ggml block).
static inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

// 32 bits (little-endian u32 at p) -> 32 bytes, 0xFF where the bit is set.
static inline __m256i bits_to_bytes(const uint8_t* p) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  const __m256i shuf =
      _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)), shuf);  // byte i = byte i/8
  v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL));     // all but bit i%8
  return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

static inline __m256i loadu(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// The 4 bytes at p in every 32-bit lane.
static inline __m256i bcast4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Decode streams packed weights from DRAM once and the hardware prefetcher alone leaves
// the tile loops waiting on memory (one EPYC core: Q4_0 14.7 -> 22 GB/s, Q8_0 9.5 -> 30
// GB/s with it): touch the `bytes` of a block ~2 KiB ahead of it (4 KiB measured no
// different within this host's noise).
static inline void prefetch_ahead(const uint8_t* block, size_t bytes) {
  constexpr size_t kAhead = 2048;
  for (size_t o = 0; o < bytes; o += 64)
    _mm_prefetch(reinterpret_cast<const char*>(block + kAhead + o), _MM_HINT_T0);
}

}  // namespace shimmy::quant::avx2
