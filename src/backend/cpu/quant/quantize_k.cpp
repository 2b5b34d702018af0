// Weight quantizers for the K super-block types (256 values). Two steps per super-block:
//  1. each sub-block (16 or 32 values) gets its own best float scale (and min), found by
//     trying a small grid of ranges around the naive one and refitting each candidate by
//     least squares on the levels it picked: the idea of llama.cpp's make_qkx/make_qx
//     searches, written afresh;
//  2. the sub-block scales are themselves quantized against one f16 super-scale (6-bit
//     for Q3_K/Q4_K/Q5_K, 4-bit for Q2_K, 8-bit for Q6_K), and every value is re-rounded
//     with the scale it will really be decoded with.
#include <cmath>
#include <cstring>

#include "backend/cpu/quant/internal.h"

namespace shimmy::quant {
namespace {

using gguf::TensorType;

int clampi(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}
int round_clamp(float v, int lo, int hi) {
  if (!(v > float(lo))) return lo;  // also NaN
  if (v > float(hi)) return hi;
  return clampi(nearest_int(v), lo, hi);
}

// x ≈ scale*q - minv with q in [0, nmax], scale >= 0, minv >= 0.
void affine_fit(const float* x, int n, int nmax, float* scale, float* minv) {
  float lo = 0, hi = x[0];
  for (int j = 0; j < n; ++j) {
    lo = std::fmin(lo, x[j]);
    hi = std::fmax(hi, x[j]);
  }
  *scale = 0;
  *minv = -lo;
  if (!(hi > lo)) return;
  float best = INFINITY;
  for (int k = 0; k <= 10; ++k) {
    const float s0 = (hi - lo) / (float(nmax) * (0.75f + 0.025f * float(k)));
    int q[32];
    float sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int j = 0; j < n; ++j) {
      q[j] = round_clamp((x[j] - lo) / s0, 0, nmax);
      sq += float(q[j]);
      sqq += float(q[j]) * float(q[j]);
      sx += x[j];
      sxq += x[j] * float(q[j]);
    }
    // Least squares for x ≈ s*q + b; b must stay <= 0.
    const float det = float(n) * sqq - sq * sq;
    float s = s0, b = lo;
    if (det > 0) {
      s = (float(n) * sxq - sq * sx) / det;
      b = (sx - s * sq) / float(n);
    }
    if (b > 0 || s <= 0) {
      b = std::fmin(lo, 0.f);
      s = sqq > 0 ? (sxq - b * sq) / sqq : s0;
      if (s <= 0) s = s0;
    }
    float err = 0;
    for (int j = 0; j < n; ++j) {
      const float e = x[j] - (s * float(q[j]) + b);
      err += e * e;
    }
    if (err < best) {
      best = err;
      *scale = s;
      *minv = -b;
    }
  }
}

// x ≈ scale*q with q in [-nneg, nneg-1]; the scale is negative when the value of largest
// magnitude is positive (that value goes on the -nneg level).
float symmetric_fit(const float* x, int n, int nneg) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  if (amax == 0.f) return 0.f;
  float best = INFINITY, best_s = max / -float(nneg);
  for (int k = 0; k <= 12; ++k) {
    const float s0 = max / -(float(nneg) * (0.8f + 0.025f * float(k)));
    float sxq = 0, sqq = 0;
    int q[32];
    for (int j = 0; j < n; ++j) {
      q[j] = round_clamp(x[j] / s0, -nneg, nneg - 1);
      sxq += x[j] * float(q[j]);
      sqq += float(q[j]) * float(q[j]);
    }
    const float s = sqq > 0 ? sxq / sqq : s0;
    float err = 0;
    for (int j = 0; j < n; ++j) {
      const float e = x[j] - s * float(q[j]);
      err += e * e;
    }
    if (err < best) {
      best = err;
      best_s = s;
    }
  }
  return best_s;
}

// Affine super-block (Q2_K: 16 × 16, 4-bit scales; Q4_K/Q5_K: 8 × 32, 6-bit scales).
// Out: integer scales/mins per sub-block, f16 d/dmin, and levels q[256].
void affine_superblock(const float* x, int sub, int nmax, int smax, int* sc, int* mn, uint16_t* d16,
                       uint16_t* dmin16, uint8_t* q) {
  const int nsub = 256 / sub;
  float scale[16], minv[16], max_s = 0, max_m = 0;
  for (int j = 0; j < nsub; ++j) {
    affine_fit(x + j * sub, sub, nmax, &scale[j], &minv[j]);
    max_s = std::fmax(max_s, scale[j]);
    max_m = std::fmax(max_m, minv[j]);
  }
  *d16 = f32_to_fp16(max_s / float(smax));
  *dmin16 = f32_to_fp16(max_m / float(smax));
  const float d = fp16_to_f32(*d16), dmin = fp16_to_f32(*dmin16);
  for (int j = 0; j < nsub; ++j) {
    sc[j] = d > 0 ? round_clamp(scale[j] / d, 0, smax) : 0;
    mn[j] = dmin > 0 ? round_clamp(minv[j] / dmin, 0, smax) : 0;
    const float ds = d * float(sc[j]), dm = dmin * float(mn[j]);
    for (int l = 0; l < sub; ++l) {
      const int v = j * sub + l;
      q[v] = uint8_t(ds > 0 ? round_clamp((x[v] + dm) / ds, 0, nmax) : 0);
    }
  }
}

// Symmetric super-block of 16 × 16 (Q3_K: levels -4..3, scales -32..31; Q6_K: levels
// -32..31, scales -128..127). Out: signed scales, f16 d, levels q[256] shifted to >= 0.
void symmetric_superblock(const float* x, int nneg, int sneg, int* sc, uint16_t* d16, uint8_t* q) {
  float scale[16], amax = 0, max = 0;
  for (int j = 0; j < 16; ++j) {
    scale[j] = symmetric_fit(x + 16 * j, 16, nneg);
    if (std::fabs(scale[j]) > amax) {
      amax = std::fabs(scale[j]);
      max = scale[j];
    }
  }
  *d16 = f32_to_fp16(max / -float(sneg));
  const float d = fp16_to_f32(*d16);
  for (int j = 0; j < 16; ++j) {
    sc[j] = d != 0.f ? round_clamp(scale[j] / d, -sneg, sneg - 1) : 0;
    const float ds = d * float(sc[j]);
    for (int l = 0; l < 16; ++l) {
      const int v = 16 * j + l;
      q[v] = uint8_t((ds != 0.f ? round_clamp(x[v] / ds, -nneg, nneg - 1) : 0) + nneg);
    }
  }
}

void pack_k4_scales(const int* sc, const int* m, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
}

void q_q2_k(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ2_K*>(out);
  int sc[16], mn[16];
  uint8_t q[256];
  for (int64_t i = 0; i < n / 256; ++i, x += 256, ++b) {
    affine_superblock(x, 16, 3, 15, sc, mn, &b->d, &b->dmin, q);
    for (int j = 0; j < 16; ++j) b->scales[j] = uint8_t(sc[j] | (mn[j] << 4));
    std::memset(b->qs, 0, sizeof(b->qs));
    for (int v = 0; v < 256; ++v)
      b->qs[32 * (v / 128) + v % 32] |= uint8_t(q[v] << (2 * ((v % 128) / 32)));
  }
}

void q_q3_k(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ3_K*>(out);
  int sc[16];
  uint8_t q[256];
  for (int64_t i = 0; i < n / 256; ++i, x += 256, ++b) {
    symmetric_superblock(x, 4, 32, sc, &b->d, q);
    std::memset(b->scales, 0, sizeof(b->scales));
    for (int j = 0; j < 16; ++j) {
      const int s = sc[j] + 32;
      b->scales[j % 8] |= uint8_t((s & 0xF) << (j < 8 ? 0 : 4));
      b->scales[8 + j % 4] |= uint8_t((s >> 4) << (2 * (j / 4)));
    }
    std::memset(b->qs, 0, sizeof(b->qs));
    std::memset(b->hmask, 0, sizeof(b->hmask));
    for (int v = 0; v < 256; ++v) {
      const int h = v / 128, j = (v % 128) / 32, l = v % 32;
      b->qs[32 * h + l] |= uint8_t((q[v] & 3) << (2 * j));
      b->hmask[l] |= uint8_t(((q[v] >> 2) & 1) << (4 * h + j));
    }
  }
}

template <bool kFive>
void q_q45_k(const float* x, uint16_t* d, uint16_t* dmin, uint8_t* scales, uint8_t* qh,
             uint8_t* qs) {
  int sc[8], mn[8];
  uint8_t q[256];
  affine_superblock(x, 32, kFive ? 31 : 15, 63, sc, mn, d, dmin, q);
  pack_k4_scales(sc, mn, scales);
  std::memset(qs, 0, 128);
  if (kFive) std::memset(qh, 0, 32);
  for (int v = 0; v < 256; ++v) {
    const int c = v / 32, l = v % 32;
    qs[32 * (c / 2) + l] |= uint8_t((q[v] & 0xF) << ((c & 1) ? 4 : 0));
    if (kFive) qh[l] |= uint8_t(((q[v] >> 4) & 1) << c);
  }
}

void q_q4_k(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ4_K*>(out);
  for (int64_t i = 0; i < n / 256; ++i, x += 256, ++b)
    q_q45_k<false>(x, &b->d, &b->dmin, b->scales, nullptr, b->qs);
}

void q_q5_k(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ5_K*>(out);
  for (int64_t i = 0; i < n / 256; ++i, x += 256, ++b)
    q_q45_k<true>(x, &b->d, &b->dmin, b->scales, b->qh, b->qs);
}

void q_q6_k(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ6_K*>(out);
  int sc[16];
  uint8_t q[256];
  for (int64_t i = 0; i < n / 256; ++i, x += 256, ++b) {
    symmetric_superblock(x, 32, 128, sc, &b->d, q);
    for (int j = 0; j < 16; ++j) b->scales[j] = int8_t(sc[j]);
    std::memset(b->ql, 0, sizeof(b->ql));
    std::memset(b->qh, 0, sizeof(b->qh));
    for (int v = 0; v < 256; ++v) {
      const int h = v / 128, k = (v % 128) / 32, l = v % 32;
      b->ql[64 * h + 32 * (k & 1) + l] |= uint8_t((q[v] & 0xF) << (k < 2 ? 0 : 4));
      b->qh[32 * h + l] |= uint8_t((q[v] >> 4) << (2 * k));
    }
  }
}

}  // namespace

QuantizeFn quantize_k_fn(TensorType t) {
  switch (t) {
    case TensorType::Q2_K:
      return q_q2_k;
    case TensorType::Q3_K:
      return q_q3_k;
    case TensorType::Q4_K:
      return q_q4_k;
    case TensorType::Q5_K:
      return q_q5_k;
    case TensorType::Q6_K:
      return q_q6_k;
    default:
      return nullptr;
  }
}

}  // namespace shimmy::quant
