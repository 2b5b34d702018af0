// Scalar reference dot products of each weight type with its act type, and the scalar
// K-block unpacker. Integer sums per block are exact; the float part is one multiply-add
// per block, accumulated in order. These are the fallback on CPUs without AVX2 and the
// reference the SIMD kernels are tested against.
#include <cstring>

#include "backend/cpu/quant/internal.h"

namespace shimmy::quant {
namespace {

using gguf::TensorType;

// ---- 32-value blocks: weight levels of one block as signed ints -----------------------
void levels_q4_0(const BlockQ4_0* b, int* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = (b->qs[j] & 0xF) - 8;
    q[j + 16] = (b->qs[j] >> 4) - 8;
  }
}
void levels_q4_1(const BlockQ4_1* b, int* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = b->qs[j] & 0xF;
    q[j + 16] = b->qs[j] >> 4;
  }
}
template <class B>
void levels_q5(const B* b, int* q, int offset) {
  uint32_t qh;
  std::memcpy(&qh, b->qh, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = ((b->qs[j] & 0xF) | int(((qh >> j) & 1) << 4)) - offset;
    q[j + 16] = ((b->qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4)) - offset;
  }
}
void levels_iq4_nl(const BlockIQ4_NL* b, int* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = kIQ4NL[b->qs[j] & 0xF];
    q[j + 16] = kIQ4NL[b->qs[j] >> 4];
  }
}

int idot32(const int* q, const int8_t* a) {
  int s = 0;
  for (int j = 0; j < 32; ++j) s += q[j] * a[j];
  return s;
}

// Weight type W with Q8_0 acts: Σ_blocks (d_w*d_a) * isum.
template <class W, void (*Levels)(const W*, int*)>
float dot_sym32(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const W*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0;
  int q[32];
  for (int64_t i = 0; i < n / 32; ++i) {
    Levels(&x[i], q);
    sum += (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d)) * float(idot32(q, y[i].qs));
  }
  return sum;
}

void levels_q8_0(const BlockQ8_0* b, int* q) {
  for (int j = 0; j < 32; ++j) q[j] = b->qs[j];
}
void levels_q5_0(const BlockQ5_0* b, int* q) {
  levels_q5(b, q, 16);
}
void levels_q5_1(const BlockQ5_1* b, int* q) {
  levels_q5(b, q, 0);
}

// Affine weight type with Q8_1 acts: Σ (d_w*d_a)*isum + Σ m_w*s_a.
template <class W, void (*Levels)(const W*, int*)>
float dot_affine32(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const W*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(a);
  float sum = 0, summ = 0;
  int q[32];
  for (int64_t i = 0; i < n / 32; ++i) {
    Levels(&x[i], q);
    sum += (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d)) * float(idot32(q, y[i].qs));
    summ += fp16_to_f32(x[i].m) * fp16_to_f32(y[i].s);
  }
  return sum + summ;
}

// ---- K super-blocks ----------------------------------------------------------------------
void unpack_q2_k(const BlockQ2_K* b, KUnpacked* u) {
  k_scales_q2(b, u);
  for (int v = 0; v < 256; ++v)
    u->q[v] = uint8_t((b->qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3);
}
void unpack_q3_k(const BlockQ3_K* b, KUnpacked* u) {
  k_scales_q3(b, u);
  for (int v = 0; v < 256; ++v) {
    const int h = v / 128, j = (v % 128) / 32, l = v % 32;
    const int q2 = (b->qs[32 * h + l] >> (2 * j)) & 3;
    u->q[v] = uint8_t(q2 | (((b->hmask[l] >> (4 * h + j)) & 1) << 2));
  }
}
void unpack_q4_k(const BlockQ4_K* b, KUnpacked* u) {
  k_scales_q45(b->d, b->dmin, b->scales, u);
  for (int v = 0; v < 256; ++v) {
    const uint8_t q = b->qs[32 * (v / 64) + v % 32];
    u->q[v] = uint8_t(((v / 32) & 1) ? (q >> 4) : (q & 0xF));
  }
}
void unpack_q5_k(const BlockQ5_K* b, KUnpacked* u) {
  k_scales_q45(b->d, b->dmin, b->scales, u);
  for (int v = 0; v < 256; ++v) {
    const uint8_t q = b->qs[32 * (v / 64) + v % 32];
    const int lo = ((v / 32) & 1) ? (q >> 4) : (q & 0xF);
    u->q[v] = uint8_t(lo | (((b->qh[v % 32] >> (v / 32)) & 1) << 4));
  }
}
void unpack_q6_k(const BlockQ6_K* b, KUnpacked* u) {
  k_scales_q6(b, u);
  for (int v = 0; v < 256; ++v) {
    const int h = v / 128, k = (v % 128) / 32, l = v % 32;
    const uint8_t ql = b->ql[64 * h + 32 * (k & 1) + l];
    const int lo = (k < 2) ? (ql & 0xF) : (ql >> 4);
    u->q[v] = uint8_t(lo | (((b->qh[32 * h + l] >> (2 * k)) & 3) << 4));
  }
}

// One super-block of any K type against one Q8_K block:
//   d_a*d * Σ_j sc16_j Σ q*a  -  d_a*dmin * Σ_j mins16_j * bsums_j
// (symmetric types fold the two integer sums first: one float multiply).
template <bool kSym>
float dot_kblock(const KUnpacked& u, const BlockQ8_K& y) {
  int sumi = 0, summ = 0;
  for (int j = 0; j < 16; ++j) {
    int s = 0;
    for (int l = 0; l < 16; ++l) s += int(u.q[16 * j + l]) * y.qs[16 * j + l];
    sumi += u.sc16[j] * s;
    summ += u.mins16[j] * y.bsums[j];
  }
  if (kSym) return (y.d * u.d) * float(sumi - summ);
  return (y.d * u.d) * float(sumi) - (y.d * u.dmin) * float(summ);
}

template <class W, void (*Unpack)(const W*, KUnpacked*), bool kSym>
float dot_k(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const W*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  KUnpacked u;
  float sum = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    Unpack(&x[i], &u);
    sum += dot_kblock<kSym>(u, y[i]);
  }
  return sum;
}

// ---- float types (acts are f32 holding values already rounded to the weight's type) ---
template <float (*Load)(const void*, int64_t)>
float dot_float(int64_t n, const void* w, const void* a) {
  const auto* y = static_cast<const float*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += Load(w, i) * y[i];
  return sum;
}
float load_f32(const void* p, int64_t i) {
  return static_cast<const float*>(p)[i];
}
float load_f16(const void* p, int64_t i) {
  return fp16_to_f32(static_cast<const uint16_t*>(p)[i]);
}
float load_bf16(const void* p, int64_t i) {
  return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
}

// Scalar tiles: every pair is simply the scalar dot.
template <VecDotFn Dot>
struct ScalarPairs {
  template <int NA, int NW>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out,
                  int64_t ldo) {
    for (int i = 0; i < NA; ++i)
      for (int j = 0; j < NW; ++j) out[i * ldo + j] = Dot(n, w + j * ws, a + i * as);
  }
};

}  // namespace

DotFns scalar_dot_fns(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return make_dot_fns<ScalarPairs<dot_float<load_f32>>>();
    case TensorType::F16:
      return make_dot_fns<ScalarPairs<dot_float<load_f16>>>();
    case TensorType::BF16:
      return make_dot_fns<ScalarPairs<dot_float<load_bf16>>>();
    case TensorType::Q4_0:
      return make_dot_fns<ScalarPairs<dot_sym32<BlockQ4_0, levels_q4_0>>>();
    case TensorType::Q5_0:
      return make_dot_fns<ScalarPairs<dot_sym32<BlockQ5_0, levels_q5_0>>>();
    case TensorType::Q8_0:
      return make_dot_fns<ScalarPairs<dot_sym32<BlockQ8_0, levels_q8_0>>>();
    case TensorType::IQ4_NL:
      return make_dot_fns<ScalarPairs<dot_sym32<BlockIQ4_NL, levels_iq4_nl>>>();
    case TensorType::Q4_1:
      return make_dot_fns<ScalarPairs<dot_affine32<BlockQ4_1, levels_q4_1>>>();
    case TensorType::Q5_1:
      return make_dot_fns<ScalarPairs<dot_affine32<BlockQ5_1, levels_q5_1>>>();
    case TensorType::Q2_K:
      return make_dot_fns<ScalarPairs<dot_k<BlockQ2_K, unpack_q2_k, false>>>();
    case TensorType::Q3_K:
      return make_dot_fns<ScalarPairs<dot_k<BlockQ3_K, unpack_q3_k, true>>>();
    case TensorType::Q4_K:
      return make_dot_fns<ScalarPairs<dot_k<BlockQ4_K, unpack_q4_k, false>>>();
    case TensorType::Q5_K:
      return make_dot_fns<ScalarPairs<dot_k<BlockQ5_K, unpack_q5_k, false>>>();
    case TensorType::Q6_K:
      return make_dot_fns<ScalarPairs<dot_k<BlockQ6_K, unpack_q6_k, true>>>();
    default:
      return {};
  }
}

bool unpack_k_scalar(TensorType t, const void* block, KUnpacked* u) {
  switch (t) {
    case TensorType::Q2_K:
      unpack_q2_k(static_cast<const BlockQ2_K*>(block), u);
      return true;
    case TensorType::Q3_K:
      unpack_q3_k(static_cast<const BlockQ3_K*>(block), u);
      return true;
    case TensorType::Q4_K:
      unpack_q4_k(static_cast<const BlockQ4_K*>(block), u);
      return true;
    case TensorType::Q5_K:
      unpack_q5_k(static_cast<const BlockQ5_K*>(block), u);
      return true;
    case TensorType::Q6_K:
      unpack_q6_k(static_cast<const BlockQ6_K*>(block), u);
      return true;
    default:
      return false;
  }
}

}  // namespace shimmy::quant
