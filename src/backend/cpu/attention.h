// Attention inner loops over an f16 KV cache, one (token, head) at a time, chosen once
// by instruction set (AVX2+FMA+F16C or scalar, as the quant kernels: SHIMMY_CPU_ISA=scalar
// forces scalar).
//
// Shapes: q and out are [hd] floats; the cache rows of positions 0..n_pos-1 start at
// k (v) and are `stride` values apart (the KV row width, n_head_kv * hd).
// Results depend only on these inputs, never on the batch around the token, so batch
// invariance holds; the AVX2 and scalar versions differ in summation order.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shimmy::cpu {

struct AttentionKernels {
  // sc[p] = scale * Σ_d q[d] * k_p[d], for p < n_pos.
  void (*scores_f16)(const float* q, const uint16_t* k, size_t stride, int64_t n_pos, int64_t hd,
                     float scale, float* sc);
  // out[d] = Σ_p w[p] * v_p[d], for d < hd (out is overwritten).
  void (*mix_f16)(const float* w, const uint16_t* v, size_t stride, int64_t n_pos, int64_t hd,
                  float* out);
};

// The kernels for this CPU (picked on first use).
const AttentionKernels& attention_kernels();

// AVX2 versions (attention_avx2.cpp); call only where the CPU has AVX2, FMA and F16C.
AttentionKernels attention_kernels_avx2();

}  // namespace shimmy::cpu
