// Per-type decoders: the bits of one quad lane's values (layout.h) -> tensor-core
// fragments. Device code only; included by kernels.cuh.
//
// Dec<T>::frag<NA>(raw, G, h, half, a, scale, minv, table) gives lane t's 4 values of group
// G, slice h (group offsets 16h + 4t + {0,1,2,3}) as two packed pairs a[i][0] (values 0,1)
// and a[i][1] (values 2,3), with
//     weight = scale * value + minv,
// where the values are small integers, exact in bf16 (|value| <= 256). Float types have no
// scale: F16 and BF16 give their own bits (F16 as f16 pairs, kF16), F32 gives NA bf16 parts
// whose sum is the weight (3 parts are exact). `half` is the parity of the step (which half
// of a K super-block); the callers unroll G and h, so most of the arithmetic folds away.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "mm/layout.h"

namespace shimmy::cuda::mm {

// ---- small helpers --------------------------------------------------------------------
__device__ __forceinline__ float f16_bits_to_f32(uint32_t h) {
  return __half2float(__ushort_as_half(uint16_t(h & 0xFFFF)));
}
__device__ __forceinline__ uint32_t bf16x2_bits(__nv_bfloat162 v) {
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t f16x2_bits(__half2 v) {
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  return bf16x2_bits(__floats2bfloat162_rn(lo, hi));
}
// Exact floats of a bf16x2 word.
__device__ __forceinline__ float bf16_lo(uint32_t w) {
  return __uint_as_float(w << 16);
}
__device__ __forceinline__ float bf16_hi(uint32_t w) {
  return __uint_as_float(w & 0xFFFF0000u);
}

// Shift right by n (left by -n); n is a compile-time constant after unrolling.
__device__ __forceinline__ uint32_t shr(uint32_t x, int n) {
  return n >= 0 ? x >> n : x << -n;
}

// Two small unsigned fields already at bits 0.. and 16.. -> bf16x2 of (field - sub).
// 0x4300 is bf16 128.0: 128 + q is exact for q < 128.
__device__ __forceinline__ uint32_t ints_bf16(uint32_t fields, float sub) {
  const uint32_t biased = fields | 0x43004300u;
  const __nv_bfloat162 r = __hsub2(*reinterpret_cast<const __nv_bfloat162*>(&biased),
                                   __float2bfloat162_rn(128.0f + sub));
  return bf16x2_bits(r);
}

// Byte i of w as a float, unsigned or signed: the byte becomes the low bits of 2^23 + b.
__device__ __forceinline__ float ubyte_f32(uint32_t w, int i) {
  return __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7540 + i)) - 8388608.0f;
}
__device__ __forceinline__ float sbyte_f32(uint32_t w, int i) {
  return __uint_as_float(__byte_perm(w ^ 0x80808080u, 0x4B000000u, 0x7540 + i)) - 8388736.0f;
}

// Byte i (compile-time) of a word array.
__device__ __forceinline__ uint32_t byte_of(const uint32_t* w, int i) {
  return (w[i >> 2] >> (8 * (i & 3))) & 0xFF;
}

// ---- raw bits of one lane, one step ---------------------------------------------------
template <int kMain, int kLaux, int kSa>
struct RawBits {
  uint32_t m[kMain / 4];
  uint32_t la[kLaux ? kLaux / 4 : 1];
  uint32_t sa[kSa ? kSa / 4 : 1];
  uint32_t sb;
};
template <class D>
using Raw = RawBits<D::F.main_lane, D::F.laux_lane, D::F.sa>;

// Where one step's arrays start (global memory: row + offsets; shared: one record).
struct StepPtrs {
  const uint8_t* main;
  const uint8_t* laux;
  const uint8_t* sa;
  const uint8_t* sb;
};

// Weights stream through once: global loads skip L1 (which keeps x).
template <class T>
__device__ __forceinline__ T ld_stream(const uint8_t* p);
template <>
__device__ __forceinline__ uint4 ld_stream<uint4>(const uint8_t* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}
template <>
__device__ __forceinline__ uint2 ld_stream<uint2>(const uint8_t* p) {
  uint2 v;
  asm("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}
template <>
__device__ __forceinline__ uint32_t ld_stream<uint32_t>(const uint8_t* p) {
  uint32_t v;
  asm("ld.global.nc.L1::no_allocate.u32 %0, [%1];\n" : "=r"(v) : "l"(p));
  return v;
}

template <bool kGlobal, class T>
__device__ __forceinline__ T ld(const uint8_t* p) {
  if constexpr (kGlobal) {
    return ld_stream<T>(p);
  } else {
    return *reinterpret_cast<const T*>(p);
  }
}

template <class D, bool kGlobal>
__device__ __forceinline__ void load_raw(const StepPtrs& p, int t, Raw<D>& r) {
  constexpr Format F = D::F;
  if constexpr (F.main_lane >= 16) {
#pragma unroll
    for (int j = 0; j < F.main_lane / 16; ++j) {
      const uint4 v = ld<kGlobal, uint4>(p.main + j * 64 + 16 * t);
      r.m[4 * j] = v.x, r.m[4 * j + 1] = v.y, r.m[4 * j + 2] = v.z, r.m[4 * j + 3] = v.w;
    }
  } else {
    const uint2 v = ld<kGlobal, uint2>(p.main + 8 * t);
    r.m[0] = v.x, r.m[1] = v.y;
  }
  if constexpr (F.laux_lane == 4) r.la[0] = ld<kGlobal, uint32_t>(p.laux + 4 * t);
  if constexpr (F.laux_lane == 8) {
    const uint2 v = ld<kGlobal, uint2>(p.laux + 8 * t);
    r.la[0] = v.x, r.la[1] = v.y;
  }
  if constexpr (F.sa == 8) {
    const uint2 v = ld<kGlobal, uint2>(p.sa);
    r.sa[0] = v.x, r.sa[1] = v.y;
  }
  if constexpr (F.sa == 16) {
    const uint4 v = ld<kGlobal, uint4>(p.sa);
    r.sa[0] = v.x, r.sa[1] = v.y, r.sa[2] = v.z, r.sa[3] = v.w;
  }
  if constexpr (F.sb == 4) r.sb = ld<kGlobal, uint32_t>(p.sb);
}

// ---- field extraction (layout.h) --------------------------------------------------------
// Pair p of a nibble word: fields at bits 0..3 and 16..19.
__device__ __forceinline__ uint32_t nib_pair(uint32_t w, int p) {
  return (w >> (4 * p)) & 0x000F000Fu;
}
// Pair p of group G from a bit word, moved to bit `to` (and 16 + to).
__device__ __forceinline__ uint32_t bit_pair(uint32_t w, int G, int p, int to) {
  return shr(w, 4 * G + p - to) & (0x00010001u << to);
}
// Pair p of group G from crumb words, moved to bits `to`, to + 1 (and 16 + ...).
__device__ __forceinline__ uint32_t crumb_pair(const uint32_t* w, int G, int p, int to) {
  return shr(w[G >> 1], 2 * (4 * (G & 1) + p) - to) & (0x00030003u << to);
}

// Q4_K / Q5_K 6-bit scales and mins of chunks c = 4 * half + G (G = 0..3, byte G of sc4 and
// mn4), from sa = {d, dmin, scales q[12]}, four at a time:
//   c < 4:  sc = q[c] & 63,                          m = q[c + 4] & 63
//   c >= 4: sc = (q[c + 4] & 15) | (q[c - 4] >> 6) << 4, m = (q[c + 4] >> 4) | (q[c] >> 6) << 4
__device__ __forceinline__ void k4_scales4(const uint32_t* sa, int half, uint32_t& sc4,
                                           uint32_t& mn4) {
  const uint32_t q0 = sa[1], q1 = sa[2], q2 = sa[3];  // q[0..3], q[4..7], q[8..11]
  const uint32_t s0 = q0 & 0x3F3F3F3Fu, m0 = q1 & 0x3F3F3F3Fu;
  const uint32_t s1 = (q2 & 0x0F0F0F0Fu) | ((q0 >> 2) & 0x30303030u);
  const uint32_t m1 = ((q2 >> 4) & 0x0F0F0F0Fu) | ((q1 >> 2) & 0x30303030u);
  sc4 = half ? s1 : s0;
  mn4 = half ? m1 : m0;
}

// ---- decoders ---------------------------------------------------------------------------
template <uint32_t T>
struct Dec;

// Common traits; kExactParts is the number of A parts the decode path needs for exact weights.
struct DecBase {
  static constexpr bool kScale = true;     // weight = scale * value + minv
  static constexpr bool kMin = false;      // minv != 0
  static constexpr bool kF16 = false;      // f16 fragments (else bf16)
  static constexpr bool kTable = false;    // needs the IQ4_NL pair table in shared memory
  static constexpr bool kScale16 = false;  // scale (and min) per 16 values, else per 32
  static constexpr int kExactParts = 1;
};

template <>
struct Dec<kQ4_0> : DecBase {
  static constexpr Format F = kFmtQ4_0;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int G, int h, int,
                              uint32_t (&a)[NA][2], float& sc, float& mn, const uint32_t*) {
    a[0][0] = ints_bf16(nib_pair(r.m[G], 2 * h), 8);
    a[0][1] = ints_bf16(nib_pair(r.m[G], 2 * h + 1), 8);
    sc = f16_bits_to_f32(r.sa[G >> 1] >> (16 * (G & 1)));
    mn = 0;
  }
};

template <>
struct Dec<kIQ4_NL> : DecBase {
  static constexpr Format F = kFmtIQ4_NL;
  static constexpr bool kTable = true;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int G, int h, int,
                              uint32_t (&a)[NA][2], float& sc, float& mn, const uint32_t* table) {
    a[0][0] = table[(r.m[G] >> (8 * (2 * h))) & 0xFF];
    a[0][1] = table[(r.m[G] >> (8 * (2 * h + 1))) & 0xFF];
    sc = f16_bits_to_f32(r.sa[G >> 1] >> (16 * (G & 1)));
    mn = 0;
  }
};

template <>
struct Dec<kQ4_1> : DecBase {
  static constexpr Format F = kFmtQ4_1;
  static constexpr bool kMin = true;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int G, int h, int,
                              uint32_t (&a)[NA][2], float& sc, float& mn, const uint32_t*) {
    a[0][0] = ints_bf16(nib_pair(r.m[G], 2 * h), 0);
    a[0][1] = ints_bf16(nib_pair(r.m[G], 2 * h + 1), 0);
    sc = f16_bits_to_f32(r.sa[G]);
    mn = f16_bits_to_f32(r.sa[G] >> 16);
  }
};

template <uint32_t T, const Format& Fm, bool kHasMin>
struct DecQ5 : DecBase {
  static constexpr Format F = Fm;
  static constexpr bool kMin = kHasMin;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int G, int h, int,
                              uint32_t (&a)[NA][2], float& sc, float& mn, const uint32_t*) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int p = 2 * h + k;
      a[0][k] = ints_bf16(nib_pair(r.m[G], p) | bit_pair(r.la[0], G, p, 4), kHasMin ? 0 : 16);
    }
    if constexpr (kHasMin) {
      sc = f16_bits_to_f32(r.sa[G]);
      mn = f16_bits_to_f32(r.sa[G] >> 16);
    } else {
      sc = f16_bits_to_f32(r.sa[G >> 1] >> (16 * (G & 1)));
      mn = 0;
    }
  }
};
template <>
struct Dec<kQ5_0> : DecQ5<kQ5_0, kFmtQ5_0, false> {};
template <>
struct Dec<kQ5_1> : DecQ5<kQ5_1, kFmtQ5_1, true> {};

template <>
struct Dec<kQ8_0> : DecBase {
  static constexpr Format F = kFmtQ8_0;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int G, int h, int,
                              uint32_t (&a)[NA][2], float& sc, float& mn, const uint32_t*) {
    // Bytes biased by 128 become the low bits of 2^23 + b: exact float integers.
    const uint32_t u = r.m[2 * G + h] ^ 0x80808080u;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const float q0 = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7540 + 2 * k)) - 8388736.0f;
      const float q1 = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7541 + 2 * k)) - 8388736.0f;
      a[0][k] = pack_bf16(q0, q1);
    }
    sc = f16_bits_to_f32(r.sa[G >> 1] >> (16 * (G & 1)));
    mn = 0;
  }
};

template <>
struct Dec<kQ2_K> : DecBase {
  static constexpr Format F = kFmtQ2_K;
  static constexpr bool kScale16 = true;
  static constexpr bool kMin = true;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int G, int h,
                              int half, uint32_t (&a)[NA][2], float& sc, float& mn,
                              const uint32_t*) {
    a[0][0] = ints_bf16(crumb_pair(r.m, G, 2 * h, 0), 0);
    a[0][1] = ints_bf16(crumb_pair(r.m, G, 2 * h + 1, 0), 0);
    // scales[8 * half + 2G + h]: low nibble scale, high nibble min.
    const uint32_t s = half ? byte_of(r.sa, 8 + 2 * G + h) : byte_of(r.sa, 2 * G + h);
    sc = f16_bits_to_f32(r.sb) * float(s & 0xF);
    mn = -f16_bits_to_f32(r.sb >> 16) * float(s >> 4);
  }
};

template <>
struct Dec<kQ3_K> : DecBase {
  static constexpr Format F = kFmtQ3_K;
  static constexpr bool kScale16 = true;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int G, int h,
                              int half, uint32_t (&a)[NA][2], float& sc, float& mn,
                              const uint32_t*) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int p = 2 * h + k;
      a[0][k] = ints_bf16(crumb_pair(r.m, G, p, 0) | bit_pair(r.la[0], G, p, 2), 4);
    }
    // Scale i = 8 * half + 2G + h (6 bits, stored + 32): low 4 bits from scales[i % 8]
    // (low nibble for i < 8, high nibble after), high 2 bits from scales[8 + i % 4].
    const int i0 = 2 * G + h;  // i % 8
    const uint32_t b = byte_of(r.sa, i0);
    const uint32_t lo = half ? b >> 4 : b & 0xF;
    const uint32_t hi = (byte_of(r.sa, 8 + (i0 & 3)) >> (2 * (2 * half + (i0 >> 2)))) & 3;
    const float d = f16_bits_to_f32(r.sa[3]);  // bytes 12..13
    sc = d * float(int(lo | (hi << 4)) - 32);
    mn = 0;
  }
};

template <uint32_t T, const Format& Fm, bool kFifth>
struct DecQ45K : DecBase {
  static constexpr Format F = Fm;
  static constexpr bool kMin = true;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int G, int h,
                              int half, uint32_t (&a)[NA][2], float& sc, float& mn,
                              const uint32_t*) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int p = 2 * h + k;
      uint32_t f = nib_pair(r.m[G], p);
      if constexpr (kFifth) f |= bit_pair(r.la[0], G, p, 4);
      a[0][k] = ints_bf16(f, 0);
    }
    uint32_t s4, m4;
    k4_scales4(r.sa, half, s4, m4);
    sc = f16_bits_to_f32(r.sa[0]) * ubyte_f32(s4, G);
    mn = -f16_bits_to_f32(r.sa[0] >> 16) * ubyte_f32(m4, G);
  }
};
template <>
struct Dec<kQ4_K> : DecQ45K<kQ4_K, kFmtQ4_K, false> {};
template <>
struct Dec<kQ5_K> : DecQ45K<kQ5_K, kFmtQ5_K, true> {};

template <>
struct Dec<kQ6_K> : DecBase {
  static constexpr Format F = kFmtQ6_K;
  static constexpr bool kScale16 = true;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int G, int h,
                              int half, uint32_t (&a)[NA][2], float& sc, float& mn,
                              const uint32_t*) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int p = 2 * h + k;
      a[0][k] = ints_bf16(nib_pair(r.m[G], p) | crumb_pair(r.la, G, p, 4), 32);
    }
    const int i0 = 2 * G + h;  // scale 8 * half + i0
    const uint32_t w = half ? r.sa[2 + (i0 >> 2)] : r.sa[i0 >> 2];
    sc = f16_bits_to_f32(r.sb) * sbyte_f32(w, i0 & 3);
    mn = 0;
  }
};

template <uint32_t T, const Format& Fm, bool kHalf>
struct DecF16 : DecBase {
  static constexpr Format F = Fm;
  static constexpr bool kScale = false;
  static constexpr bool kF16 = kHalf;
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int, int h, int,
                              uint32_t (&a)[NA][2], float& sc, float& mn, const uint32_t*) {
    a[0][0] = r.m[2 * h];
    a[0][1] = r.m[2 * h + 1];
    sc = 1, mn = 0;
  }
};
template <>
struct Dec<kF16> : DecF16<kF16, kFmtF16, true> {};
template <>
struct Dec<kBF16> : DecF16<kBF16, kFmtBF16, false> {};

template <>
struct Dec<kF32> : DecBase {
  static constexpr Format F = kFmtF32;
  static constexpr bool kScale = false;
  static constexpr int kExactParts = 3;
  // NA parts: w = part0 + part1 + part2, each the bf16 rounding of what is left.
  template <int NA>
  __device__ static void frag(const RawBits<F.main_lane, F.laux_lane, F.sa>& r, int, int h, int,
                              uint32_t (&a)[NA][2], float& sc, float& mn, const uint32_t*) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      float w0 = __uint_as_float(r.m[4 * h + 2 * k]), w1 = __uint_as_float(r.m[4 * h + 2 * k + 1]);
#pragma unroll
      for (int i = 0; i < NA; ++i) {
        a[i][k] = pack_bf16(w0, w1);
        w0 -= bf16_lo(a[i][k]);
        w1 -= bf16_hi(a[i][k]);
      }
    }
    sc = 1, mn = 0;
  }
};

// IQ4_NL pair table entry: byte i = two 4-bit indices -> bf16x2 of the two levels.
__device__ __forceinline__ uint32_t iq4nl_pair(int i) {
  constexpr int8_t kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                  1,    13,   25,  38,  53,  69,  89,  113};
  return pack_bf16(float(kLevels[i & 15]), float(kLevels[i >> 4]));
}

}  // namespace shimmy::cuda::mm
