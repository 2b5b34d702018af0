// Exact scalar dequantization of every supported block type: the definition the SIMD
// kernels and the tests are checked against. Each function turns n values (a multiple
// of the block size) of one row into floats.
#include <cstring>

#include "backend/cpu/quant/internal.h"

namespace shimmy::quant {
namespace {

using gguf::TensorType;

void deq_f32(const void* src, float* y, int64_t n) {
  std::memcpy(y, src, size_t(n) * 4);
}

void deq_f16(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_f32(x[i]);
}

void deq_bf16(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

void deq_q4_0(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / 32; ++i, ++b, y += 32) {
    const float d = fp16_to_f32(b->d);
    for (int j = 0; j < 16; ++j) {
      y[j] = float((b->qs[j] & 0xF) - 8) * d;
      y[j + 16] = float((b->qs[j] >> 4) - 8) * d;
    }
  }
}

void deq_q4_1(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / 32; ++i, ++b, y += 32) {
    const float d = fp16_to_f32(b->d), m = fp16_to_f32(b->m);
    for (int j = 0; j < 16; ++j) {
      y[j] = float(b->qs[j] & 0xF) * d + m;
      y[j + 16] = float(b->qs[j] >> 4) * d + m;
    }
  }
}

// 5-bit values of a Q5_0 / Q5_1 block, 0..31.
void q5_values(const uint8_t* qh4, const uint8_t* qs, int* q) {
  uint32_t qh;
  std::memcpy(&qh, qh4, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0xF) | int(((qh >> j) & 1) << 4);
    q[j + 16] = (qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
  }
}

void deq_q5_0(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ5_0*>(src);
  int q[32];
  for (int64_t i = 0; i < n / 32; ++i, ++b, y += 32) {
    const float d = fp16_to_f32(b->d);
    q5_values(b->qh, b->qs, q);
    for (int j = 0; j < 32; ++j) y[j] = float(q[j] - 16) * d;
  }
}

void deq_q5_1(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ5_1*>(src);
  int q[32];
  for (int64_t i = 0; i < n / 32; ++i, ++b, y += 32) {
    const float d = fp16_to_f32(b->d), m = fp16_to_f32(b->m);
    q5_values(b->qh, b->qs, q);
    for (int j = 0; j < 32; ++j) y[j] = float(q[j]) * d + m;
  }
}

void deq_q8_0(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / 32; ++i, ++b, y += 32) {
    const float d = fp16_to_f32(b->d);
    for (int j = 0; j < 32; ++j) y[j] = float(b->qs[j]) * d;
  }
}

void deq_q8_1(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / 32; ++i, ++b, y += 32) {
    const float d = fp16_to_f32(b->d);
    for (int j = 0; j < 32; ++j) y[j] = float(b->qs[j]) * d;
  }
}

void deq_iq4_nl(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockIQ4_NL*>(src);
  for (int64_t i = 0; i < n / 32; ++i, ++b, y += 32) {
    const float d = fp16_to_f32(b->d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * float(kIQ4NL[b->qs[j] & 0xF]);
      y[j + 16] = d * float(kIQ4NL[b->qs[j] >> 4]);
    }
  }
}

void deq_q2_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < n / 256; ++i, ++b, y += 256) {
    const float d = fp16_to_f32(b->d), dmin = fp16_to_f32(b->dmin);
    for (int v = 0; v < 256; ++v) {
      const int h = v / 128, j = (v % 128) / 32, l = v % 32;
      const uint8_t sc = b->scales[v / 16];
      const int q = (b->qs[32 * h + l] >> (2 * j)) & 3;
      y[v] = d * float(sc & 0xF) * float(q) - dmin * float(sc >> 4);
    }
  }
}

void deq_q3_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ3_K*>(src);
  for (int64_t i = 0; i < n / 256; ++i, ++b, y += 256) {
    const float d = fp16_to_f32(b->d);
    for (int v = 0; v < 256; ++v) {
      const int h = v / 128, j = (v % 128) / 32, l = v % 32;
      const float dl = d * float(k3_scale(v / 16, b->scales) - 32);
      const int q2 = (b->qs[32 * h + l] >> (2 * j)) & 3;
      const int hi = (b->hmask[l] >> (4 * h + j)) & 1;
      y[v] = dl * float(q2 - (hi ? 0 : 4));
    }
  }
}

void deq_q4_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ4_K*>(src);
  for (int64_t i = 0; i < n / 256; ++i, ++b, y += 256) {
    const float d = fp16_to_f32(b->d), dmin = fp16_to_f32(b->dmin);
    for (int c = 0; c < 8; ++c) {  // chunk c = values 32c..32c+31, scale/min c
      int sc, m;
      k4_scale_min(c, b->scales, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      const uint8_t* q = b->qs + 32 * (c / 2);
      for (int l = 0; l < 32; ++l) {
        const int v = (c & 1) ? (q[l] >> 4) : (q[l] & 0xF);
        y[32 * c + l] = d1 * float(v) - m1;
      }
    }
  }
}

void deq_q5_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ5_K*>(src);
  for (int64_t i = 0; i < n / 256; ++i, ++b, y += 256) {
    const float d = fp16_to_f32(b->d), dmin = fp16_to_f32(b->dmin);
    for (int c = 0; c < 8; ++c) {
      int sc, m;
      k4_scale_min(c, b->scales, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      const uint8_t* q = b->qs + 32 * (c / 2);
      for (int l = 0; l < 32; ++l) {
        const int lo = (c & 1) ? (q[l] >> 4) : (q[l] & 0xF);
        const int v = lo | (((b->qh[l] >> c) & 1) << 4);
        y[32 * c + l] = d1 * float(v) - m1;
      }
    }
  }
}

void deq_q6_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < n / 256; ++i, ++b, y += 256) {
    const float d = fp16_to_f32(b->d);
    for (int v = 0; v < 256; ++v) {
      const int h = v / 128, k = (v % 128) / 32, l = v % 32;
      const uint8_t ql = b->ql[64 * h + 32 * (k & 1) + l];
      const int lo = (k < 2) ? (ql & 0xF) : (ql >> 4);
      const int hi = (b->qh[32 * h + l] >> (2 * k)) & 3;
      y[v] = d * float(b->scales[v / 16]) * float((lo | (hi << 4)) - 32);
    }
  }
}

void deq_q8_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / 256; ++i, ++b, y += 256)
    for (int j = 0; j < 256; ++j) y[j] = b->d * float(b->qs[j]);
}

}  // namespace

DequantFn dequantize_fn(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return deq_f32;
    case TensorType::F16:
      return deq_f16;
    case TensorType::BF16:
      return deq_bf16;
    case TensorType::Q4_0:
      return deq_q4_0;
    case TensorType::Q4_1:
      return deq_q4_1;
    case TensorType::Q5_0:
      return deq_q5_0;
    case TensorType::Q5_1:
      return deq_q5_1;
    case TensorType::Q8_0:
      return deq_q8_0;
    case TensorType::Q8_1:
      return deq_q8_1;
    case TensorType::IQ4_NL:
      return deq_iq4_nl;
    case TensorType::Q2_K:
      return deq_q2_k;
    case TensorType::Q3_K:
      return deq_q3_k;
    case TensorType::Q4_K:
      return deq_q4_k;
    case TensorType::Q5_K:
      return deq_q5_k;
    case TensorType::Q6_K:
      return deq_q6_k;
    case TensorType::Q8_K:
      return deq_q8_k;
    default:
      return nullptr;
  }
}

}  // namespace shimmy::quant
