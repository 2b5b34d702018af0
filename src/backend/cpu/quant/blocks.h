// Internal to src/backend/cpu/quant: on-disk block layouts of the ggml weight types, the
// activation blocks, exact f16/bf16 conversions, and the "unpacked K super-block" that
// every K-quant dot product goes through.
//
// Helpers here are `static inline` on purpose: this header is included both by baseline
// files and by *_avx2.cpp files, and a non-static inline function compiled with -mavx2 in
// one translation unit could be the copy the linker keeps for all of them.
#pragma once

#include <cstdint>
#include <cstring>

namespace shimmy::quant {

// ---- block layouts (packed, little-endian, as in GGUF files) ---------------------------
// 32-value blocks. Nibble order: byte j holds value j (low nibble) and value j+16 (high).
struct BlockQ4_0 {
  uint16_t d;  // f16 scale; w = d * (q - 8)
  uint8_t qs[16];
};
struct BlockQ4_1 {
  uint16_t d, m;  // w = d * q + m
  uint8_t qs[16];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // bit j of the little-endian u32 = 5th bit of value j; w = d * (q - 16)
  uint8_t qs[16];
};
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ8_1 {
  uint16_t d, s;  // s = d * Σ qs
  int8_t qs[32];
};
struct BlockIQ4_NL {
  uint16_t d;  // w = d * kIQ4NL[q]
  uint8_t qs[16];
};

// 256-value super-blocks.
struct BlockQ2_K {
  uint8_t scales[16];  // per 16 values: low nibble scale, high nibble min
  uint8_t qs[64];      // value 128h + 32j + l: (qs[32h + l] >> 2j) & 3
  uint16_t d, dmin;    // w = d*sc*q - dmin*m
};
struct BlockQ3_K {
  uint8_t hmask[32];   // value 128h + 32j + l: bit (4h + j) of hmask[l] set -> +4
  uint8_t qs[64];      // low 2 bits as in Q2_K
  uint8_t scales[12];  // 16 six-bit scales, stored +32
  uint16_t d;          // w = d * (sc - 32) * (q3 - 4)
};
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];  // 8 six-bit scales + 8 six-bit mins (per 32 values)
  uint8_t qs[128];     // value 64j + l: low nibble of qs[32j + l]; 64j + 32 + l: high nibble
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];  // 5th bit of value 32c + l is bit c of qh[l]
  uint8_t qs[128];
};
struct BlockQ6_K {
  uint8_t ql[128];    // low 4 bits
  uint8_t qh[64];     // high 2 bits
  int8_t scales[16];  // per 16 values
  uint16_t d;         // w = d * sc * (q6 - 32)
};
struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36 &&
              sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// The 16 IQ4_NL levels (a non-uniform 4-bit grid; a file-format fact).
inline constexpr int8_t kIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

// ---- scalar conversions (bit-exact with F16C / llama.cpp) ------------------------------

static inline float bits_to_f32(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
static inline uint32_t f32_to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

static inline float fp16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    const float f = float(man) * 0x1p-24f;  // zero or subnormal, exact
    return sign ? -f : f;
  }
  if (exp == 31) return bits_to_f32(sign | 0x7f800000u | (man << 13));
  return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

// Round to nearest, ties to even (the F16C default).
static inline uint16_t f32_to_fp16(float f) {
  const uint32_t x = f32_to_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));  // NaN
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (ax < 0x38800000u) {                                  // below 2^-14: subnormal half
    const uint32_t e = ax >> 23;
    if (e < 102) return sign;  // < 2^-25: rounds to zero
    const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return uint16_t(sign | q);
  }
  uint32_t r = ax - (112u << 23);
  r += 0xfffu + ((r >> 13) & 1);
  return uint16_t(sign | (r >> 13));
}

static inline float bf16_to_f32(uint16_t h) {
  return bits_to_f32(uint32_t(h) << 16);
}

static inline uint16_t f32_to_bf16(float f) {
  uint32_t x = f32_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 64);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

// Round half to even for |v| < 2^22 (larger, inf and NaN give garbage but no UB).
static inline int nearest_int(float v) {
  const float val = v + 12582912.f;
  int i;
  std::memcpy(&i, &val, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// ---- K super-blocks, unpacked --------------------------------------------------------
// Every K type is brought to one form, so one dot-product core serves all of them:
//   w[v] = d * sc16[v/16] * q[v] - dmin * mins16[v/16],   q[v] unsigned 0..63
// Symmetric types (Q3_K, Q6_K) have dmin == d and mins16 = sc16 * offset (4 or 32), and
// their dot folds the two integer sums before the single float multiply.
// sv[c] is the int16 scale vector for value chunk c (32 values): scales of values
// 32c..32c+15 in lanes 0..7 and of 32c+16..32c+31 in lanes 8..15 (the layout
// _mm256_maddubs_epi16 produces); the AVX2 unpackers fill it, the scalar ones leave it.
struct alignas(32) KUnpacked {
  uint8_t q[256];
  int16_t sv[8][16];
  int16_t sc16[16];
  int16_t mins16[16];
  float d, dmin;
};

// 6-bit scale j and min j (j < 8) of a Q4_K / Q5_K scales[12] array.
static inline void k4_scale_min(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// 6-bit stored scale i (< 16, still +32) of a Q3_K scales[12] array.
static inline int k3_scale(int i, const uint8_t* s) {
  const int lo = i < 8 ? (s[i] & 0xF) : (s[i - 8] >> 4);
  const int hi = (s[8 + (i % 4)] >> (2 * (i / 4))) & 3;
  return lo | (hi << 4);
}

// Fills sc16, mins16, d and dmin of u from a K block (the part shared by both ISAs).
static inline void k_scales_q2(const BlockQ2_K* b, KUnpacked* u) {
  for (int j = 0; j < 16; ++j) {
    u->sc16[j] = int16_t(b->scales[j] & 0xF);
    u->mins16[j] = int16_t(b->scales[j] >> 4);
  }
  u->d = fp16_to_f32(b->d);
  u->dmin = fp16_to_f32(b->dmin);
}
static inline void k_scales_q3(const BlockQ3_K* b, KUnpacked* u) {
  for (int j = 0; j < 16; ++j) {
    u->sc16[j] = int16_t(k3_scale(j, b->scales) - 32);
    u->mins16[j] = int16_t(u->sc16[j] * 4);
  }
  u->d = u->dmin = fp16_to_f32(b->d);
}
static inline void k_scales_q45(uint16_t d, uint16_t dmin, const uint8_t* scales, KUnpacked* u) {
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    k4_scale_min(j, scales, &sc, &m);
    u->sc16[2 * j] = u->sc16[2 * j + 1] = int16_t(sc);
    u->mins16[2 * j] = u->mins16[2 * j + 1] = int16_t(m);
  }
  u->d = fp16_to_f32(d);
  u->dmin = fp16_to_f32(dmin);
}
static inline void k_scales_q6(const BlockQ6_K* b, KUnpacked* u) {
  for (int j = 0; j < 16; ++j) {
    u->sc16[j] = b->scales[j];
    u->mins16[j] = int16_t(b->scales[j] * 32);
  }
  u->d = u->dmin = fp16_to_f32(b->d);
}

}  // namespace shimmy::quant
