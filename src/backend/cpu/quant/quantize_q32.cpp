// Weight quantizers for the float types and the 32-value block types. Round to nearest
// with the classic scale choices (symmetric types map the value of largest magnitude to
// the most negative level, affine types span [min, max]); IQ4_NL searches a few scales
// because its grid is not uniform. Used by the benchmark-model generator and the tests;
// model loading never quantizes.
#include <cmath>
#include <cstring>

#include "backend/cpu/quant/internal.h"

namespace shimmy::quant {
namespace {

using gguf::TensorType;

int clampi(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// Value of largest magnitude, with its sign.
float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

void q_f32(const float* x, void* out, int64_t n) {
  std::memcpy(out, x, size_t(n) * 4);
}

void q_f16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<uint16_t*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

void q_bf16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<uint16_t*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

void q_q8_0(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(out);
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    b->d = f32_to_fp16(d);
    for (int j = 0; j < 32; ++j) b->qs[j] = int8_t(clampi(nearest_int(x[j] * id), -127, 127));
  }
}

// Symmetric 4/5-bit: d = max / -2^(bits-1), q = round(x/d) + offset.
template <int kOffset>
void sym_levels(const float* x, float* d_out, uint8_t* q) {
  const float max = signed_absmax(x, 32);
  const float d = max / -float(kOffset), id = d != 0.f ? 1.f / d : 0.f;
  *d_out = d;
  for (int j = 0; j < 32; ++j)
    q[j] = uint8_t(clampi(nearest_int(x[j] * id) + kOffset, 0, 2 * kOffset - 1));
}

// Affine 4/5-bit: x ≈ d*q + m over [min, max].
template <int kLevels>
void affine_levels(const float* x, float* d_out, float* m_out, uint8_t* q) {
  float lo = x[0], hi = x[0];
  for (int j = 1; j < 32; ++j) {
    lo = std::fmin(lo, x[j]);
    hi = std::fmax(hi, x[j]);
  }
  const float d = (hi - lo) / float(kLevels - 1), id = d != 0.f ? 1.f / d : 0.f;
  *d_out = d;
  *m_out = lo;
  for (int j = 0; j < 32; ++j)
    q[j] = uint8_t(clampi(nearest_int((x[j] - lo) * id), 0, kLevels - 1));
}

void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
}

void pack_high_bits(const uint8_t* q, uint8_t* qh4) {
  uint32_t qh = 0;
  for (int j = 0; j < 32; ++j) qh |= uint32_t((q[j] >> 4) & 1) << j;
  std::memcpy(qh4, &qh, 4);
}

void q_q4_0(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ4_0*>(out);
  uint8_t q[32];
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b) {
    float d;
    sym_levels<8>(x, &d, q);
    b->d = f32_to_fp16(d);
    pack_nibbles(q, b->qs);
  }
}

void q_q5_0(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ5_0*>(out);
  uint8_t q[32];
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b) {
    float d;
    sym_levels<16>(x, &d, q);
    b->d = f32_to_fp16(d);
    pack_nibbles(q, b->qs);
    pack_high_bits(q, b->qh);
  }
}

void q_q4_1(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ4_1*>(out);
  uint8_t q[32];
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b) {
    float d, m;
    affine_levels<16>(x, &d, &m, q);
    b->d = f32_to_fp16(d);
    b->m = f32_to_fp16(m);
    pack_nibbles(q, b->qs);
  }
}

void q_q5_1(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ5_1*>(out);
  uint8_t q[32];
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b) {
    float d, m;
    affine_levels<32>(x, &d, &m, q);
    b->d = f32_to_fp16(d);
    b->m = f32_to_fp16(m);
    pack_nibbles(q, b->qs);
    pack_high_bits(q, b->qh);
  }
}

// Index of the IQ4_NL level nearest to v (levels ascending).
int iq4nl_nearest(float v) {
  int best = 0;
  float bd = std::fabs(v - float(kIQ4NL[0]));
  for (int k = 1; k < 16; ++k) {
    const float dd = std::fabs(v - float(kIQ4NL[k]));
    if (dd < bd) {
      bd = dd;
      best = k;
    }
  }
  return best;
}

// IQ4_NL: try scales around max/-127 (the extreme value on the -127 level), refit each by
// least squares on its level choice, keep the one with the smallest squared error.
void q_iq4_nl(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockIQ4_NL*>(out);
  uint8_t q[32], best_q[32];
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b) {
    const float max = signed_absmax(x, 32);
    float best_d = 0, best_err = INFINITY;
    std::memset(best_q, 8, 32);  // level 1: closest to zero for an all-zero block
    for (int step = -8; step <= 8 && max != 0.f; ++step) {
      const float d0 = max / (-127.f + 2.f * float(step));
      float sxk = 0, skk = 0;
      for (int j = 0; j < 32; ++j) {
        q[j] = uint8_t(iq4nl_nearest(x[j] / d0));
        sxk += x[j] * float(kIQ4NL[q[j]]);
        skk += float(kIQ4NL[q[j]]) * float(kIQ4NL[q[j]]);
      }
      const float d = skk > 0 ? sxk / skk : d0;
      float err = 0;
      for (int j = 0; j < 32; ++j) {
        const float e = x[j] - d * float(kIQ4NL[q[j]]);
        err += e * e;
      }
      if (err < best_err) {
        best_err = err;
        best_d = d;
        std::memcpy(best_q, q, 32);
      }
    }
    b->d = f32_to_fp16(best_d);
    pack_nibbles(best_q, b->qs);
  }
}

}  // namespace

QuantizeFn quantize_q32_fn(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return q_f32;
    case TensorType::F16:
      return q_f16;
    case TensorType::BF16:
      return q_bf16;
    case TensorType::Q8_0:
      return q_q8_0;
    case TensorType::Q4_0:
      return q_q4_0;
    case TensorType::Q4_1:
      return q_q4_1;
    case TensorType::Q5_0:
      return q_q5_0;
    case TensorType::Q5_1:
      return q_q5_1;
    case TensorType::IQ4_NL:
      return q_iq4_nl;
    default:
      return nullptr;
  }
}

}  // namespace shimmy::quant
