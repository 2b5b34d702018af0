// CPU element-wise and row ops of the forward pass (everything but the weight matrix
// products, which live in quant/kernels.h). All rows are contiguous float arrays.
#pragma once

#include <cstdint>

namespace shimmy::cpu {

// y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; the mean is accumulated in double, as the
// reference does. y may alias x. w may be null (no scale).
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// Rotary embedding parameters for one model (see RopeCache).
struct RopeParams {
  int64_t n_rot = 0;  // rotated dimensions per head (<= head_dim)
  float base = 10000.0f;
  bool neox = false;                    // pairs (i, i + n_rot/2) instead of (2i, 2i+1)
  float freq_scale = 1.0f;              // 1/linear factor (positions are multiplied by it)
  const float* freq_factors = nullptr;  // [n_rot/2] Llama-3 style per-frequency divisors
  // YaRN: ext_factor > 0 turns it on.
  float ext_factor = 0.0f, attn_factor = 1.0f, beta_fast = 32.0f, beta_slow = 1.0f;
  int64_t n_ctx_orig = 0;
};

// cos/sin of every rotated pair for one position: cs[2*i] = cos, cs[2*i+1] = sin,
// i < n_rot/2. Computed like the reference: theta_i = pos * base^(-2i/n_rot) built by
// repeated float multiplication.
void rope_cos_sin(const RopeParams& p, int64_t pos, float* cs);

// Rotates n_heads heads of head_dim values in place with the cos/sin of one position.
void rope_apply(const RopeParams& p, const float* cs, float* x, int64_t n_heads, int64_t head_dim);

// y[i] = silu(g[i]) * u[i]
void swiglu(const float* g, const float* u, float* y, int64_t n);

// x[i] += y[i]
void add_inplace(float* x, const float* y, int64_t n);

// In place: x = softmax(x) over n values; returns nothing. Max-subtracted, float exp.
void softmax(float* x, int64_t n);

// Rounds each value to the nearest f16 (the reference rounds attention inputs to f16).
void round_to_f16(float* x, int64_t n);

}  // namespace shimmy::cpu
