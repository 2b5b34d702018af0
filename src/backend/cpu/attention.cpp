#include "backend/cpu/attention.h"

#include <algorithm>

#include "backend/cpu/quant/blocks.h"
#include "backend/cpu/quant/kernels.h"

namespace shimmy::cpu {
namespace {

void scores_f16_scalar(const float* q, const uint16_t* k, size_t stride, int64_t n_pos, int64_t hd,
                       float scale, float* sc) {
  for (int64_t p = 0; p < n_pos; ++p) {
    const uint16_t* kr = k + size_t(p) * stride;
    float s = 0.0f;
    for (int64_t d = 0; d < hd; ++d) s += q[d] * quant::fp16_to_f32(kr[d]);
    sc[p] = s * scale;
  }
}

void mix_f16_scalar(const float* w, const uint16_t* v, size_t stride, int64_t n_pos, int64_t hd,
                    float* out) {
  std::fill(out, out + hd, 0.0f);
  for (int64_t p = 0; p < n_pos; ++p) {
    const uint16_t* vr = v + size_t(p) * stride;
    for (int64_t d = 0; d < hd; ++d) out[d] += w[p] * quant::fp16_to_f32(vr[d]);
  }
}

AttentionKernels pick() {
  if (quant::best_isa() == quant::Isa::Avx2) return attention_kernels_avx2();
  return AttentionKernels{&scores_f16_scalar, &mix_f16_scalar};
}

}  // namespace

const AttentionKernels& attention_kernels() {
  static const AttentionKernels k = pick();
  return k;
}

}  // namespace shimmy::cpu
