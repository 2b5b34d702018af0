// Activation quantizers: round one activation row to the format its weight type pairs
// with, exactly as llama.cpp's x86 CPU path does (the conformance references depend on
// the rounding, not just the format):
//   Q8_0/Q8_1: d = amax/127 (stored f16), q = round-half-even(x * (127/amax)); Q8_1 adds
//              s = f16(d * Σq) with d the unrounded float.
//   Q8_K:      iscale = -127/max (max = the value of largest magnitude, with its sign),
//              q = min(127, round-half-even(iscale*x)), d = 1/iscale as float.
//   F16/BF16:  round each value to nearest-even f16 / bf16, keep it as f32.
// Shared by every ISA so the act bytes never depend on which kernels run.
#include <cmath>
#include <cstring>

#include "backend/cpu/quant/internal.h"

namespace shimmy::quant {
namespace {

void act_f32(const float* x, void* out, int64_t n) {
  std::memcpy(out, x, size_t(n) * 4);
}

void act_f16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<float*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_f32(f32_to_fp16(x[i]));
}

void act_bf16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<float*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

// One 32-block: fills q and returns the float scale d (0 for an all-zero block).
float q8_block(const float* x, int8_t* q) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.f;
  const float id = amax != 0.f ? 127.f / amax : 0.f;
  for (int j = 0; j < 32; ++j) {
    int v = nearest_int(x[j] * id);
    v = v > 127 ? 127 : (v < -127 ? -127 : v);  // only reachable for inf / NaN input
    q[j] = int8_t(v);
  }
  return d;
}

void act_q8_0(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(out);
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b) b->d = f32_to_fp16(q8_block(x, b->qs));
}

void act_q8_1(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(out);
  for (int64_t i = 0; i < n / 32; ++i, x += 32, ++b) {
    const float d = q8_block(x, b->qs);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += b->qs[j];
    b->d = f32_to_fp16(d);
    b->s = f32_to_fp16(d * float(sum));
  }
}

void act_q8_k(const float* x, void* out, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(out);
  for (int64_t i = 0; i < n / 256; ++i, x += 256, ++b) {
    float amax = 0, max = 0;
    for (int j = 0; j < 256; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.f) {
      std::memset(b, 0, sizeof(*b));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < 256; ++j) {
      int v = nearest_int(iscale * x[j]);
      v = v > 127 ? 127 : (v < -127 ? -127 : v);
      b->qs[j] = int8_t(v);
    }
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b->qs[16 * j + l];
      b->bsums[j] = int16_t(sum);
    }
    b->d = 1.f / iscale;
  }
}

}  // namespace

QuantizeFn quantize_act_fn(ActType t) {
  switch (t) {
    case ActType::F32:
      return act_f32;
    case ActType::F16:
      return act_f16;
    case ActType::BF16:
      return act_bf16;
    case ActType::Q8_0:
      return act_q8_0;
    case ActType::Q8_1:
      return act_q8_1;
    case ActType::Q8_K:
      return act_q8_k;
  }
  return nullptr;
}

}  // namespace shimmy::quant
