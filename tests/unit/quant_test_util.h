// Shared helpers for the Quant* tests: random rows, quantized weight rows, act rows.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/quant/blocks.h"
#include "backend/cpu/quant/kernels.h"

namespace shimmy::quant::test {

using gguf::TensorType;

// Every weight type the kernels support.
inline const std::vector<TensorType>& all_weight_types() {
  static const std::vector<TensorType> v = {
      TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,   TensorType::Q4_0,
      TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::IQ4_NL, TensorType::Q2_K,
      TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
  return v;
}

inline std::string tname(TensorType t) {
  return gguf::type_name(uint32_t(t));
}

// n Gaussian values (mean 0, sd `sd`), with a few outliers like real weights have.
inline std::vector<float> gaussian(int64_t n, uint32_t seed, float sd = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, sd);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = dist(rng);
  for (int64_t i = 0; i < n; i += 97) x[size_t(i)] *= 3.f;
  return x;
}

inline std::vector<uint8_t> quantized(TensorType t, const std::vector<float>& x) {
  const auto bytes = gguf::row_bytes(t, x.size());
  std::vector<uint8_t> out(bytes.value_or(0));
  if (!quantize_row(t, x.data(), out.data(), int64_t(x.size())).ok()) out.clear();
  return out;
}

inline std::vector<uint8_t> act_row(const WeightKernels& k, const std::vector<float>& x) {
  std::vector<uint8_t> out(act_row_bytes(k, int64_t(x.size())).value_or(0));
  k.quantize_act(x.data(), out.data(), int64_t(x.size()));
  return out;
}

inline std::vector<float> dequantized(TensorType t, const uint8_t* src, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  if (!dequantize_row(t, src, y.data(), n).ok()) y.clear();
  return y;
}

// Dequantized act row (acts of float types are f32 already).
inline std::vector<float> act_values(const WeightKernels& k, const std::vector<uint8_t>& a,
                                     int64_t n) {
  switch (k.act) {
    case ActType::Q8_0:
      return dequantized(TensorType::Q8_0, a.data(), n);
    case ActType::Q8_1:
      return dequantized(TensorType::Q8_1, a.data(), n);
    case ActType::Q8_K:
      return dequantized(TensorType::Q8_K, a.data(), n);
    default:
      return dequantized(TensorType::F32, a.data(), n);
  }
}

// Q4_1/Q5_1 with Q8_1 acts use s = f16(d*Σq) (d unrounded) instead of f16(d)*Σq, as
// llama.cpp does: allowed slack Σ_blocks |m_w| * |s_a| * 2^-10 on top of float error.
inline double q8_1_slack(const WeightKernels& k, const uint8_t* w, const uint8_t* a, int64_t n) {
  if (k.act != ActType::Q8_1) return 0;
  double slack = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    uint16_t m, s;
    std::memcpy(&m, w + b * k.block_bytes + 2, 2);      // Q4_1/Q5_1: f16 d, f16 m, ...
    std::memcpy(&s, a + b * k.act_block_bytes + 2, 2);  // Q8_1: f16 d, f16 s, ...
    slack += std::fabs(double(fp16_to_f32(m)) * fp16_to_f32(s)) * 0x1p-10;
  }
  return slack;
}

inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}
inline double abs_dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(double(a[i]) * double(b[i]));
  return s;
}

}  // namespace shimmy::quant::test
