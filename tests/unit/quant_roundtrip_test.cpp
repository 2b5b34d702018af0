// Quant kernels against the mathematics: f16/bf16 conversions, quantize -> dequantize
// error per type, activation quantizers, and vec_dot against a float64 dot product of the
// dequantized operands (exact up to float accumulation) and of the original values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "backend/cpu/quant/blocks.h"
#include "quant_test_util.h"

using namespace shimmy;
using namespace shimmy::quant;
using namespace shimmy::quant::test;

TEST(QuantFp16, EveryHalfRoundTripsAndRoundingIsNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_f32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_f32(f32_to_fp16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_fp16(f), h) << h;
  }
  // Ties go to even; just above a tie rounds up; overflow goes to inf; tiny to zero.
  EXPECT_EQ(f32_to_fp16(1.f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(f32_to_fp16(1.f + 3 * 0x1p-11f), 0x3c02);
  EXPECT_EQ(f32_to_fp16(1.f + 0x1p-11f + 0x1p-20f), 0x3c01);
  EXPECT_EQ(f32_to_fp16(65520.f), 0x7c00);
  EXPECT_EQ(f32_to_fp16(65519.f), 0x7bff);
  EXPECT_EQ(f32_to_fp16(0x1p-25f), 0x0000);
  EXPECT_EQ(f32_to_fp16(0x1.01p-25f), 0x0001);
  EXPECT_EQ(f32_to_fp16(-0x1p-24f * 3), 0x8003);
  EXPECT_EQ(f32_to_bf16(1.f + 0x1p-8f), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(1.f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0x3f81), 1.f + 0x1p-7f);
}

// Relative RMS error of dequantize(quantize(x)) on Gaussian data, per type. Bounds are
// about 1.3× what these quantizers reach (6-sd outliers included), so a layout or
// rounding mistake shows up as a failure.
TEST(QuantRoundTrip, ErrorWithinBoundsPerType) {
  const struct {
    TensorType t;
    double max_rel_rms;
  } cases[] = {{TensorType::F32, 0},      {TensorType::F16, 4e-4},    {TensorType::BF16, 3e-3},
               {TensorType::Q8_0, 0.008}, {TensorType::Q6_K, 0.023},  {TensorType::Q5_1, 0.05},
               {TensorType::Q5_0, 0.05},  {TensorType::Q5_K, 0.048},  {TensorType::Q4_1, 0.10},
               {TensorType::Q4_0, 0.11},  {TensorType::IQ4_NL, 0.10}, {TensorType::Q4_K, 0.097},
               {TensorType::Q3_K, 0.19},  {TensorType::Q2_K, 0.38}};
  const int64_t n = 4096;
  const auto x = gaussian(n, 7, 0.02f);
  for (const auto& c : cases) {
    SCOPED_TRACE(tname(c.t));
    const auto q = quantized(c.t, x);
    ASSERT_EQ(q.size(), gguf::row_bytes(c.t, n).value());
    const auto y = dequantized(c.t, q.data(), n);
    ASSERT_EQ(int64_t(y.size()), n);
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(std::isfinite(y[size_t(i)]));
      se += (double(x[size_t(i)]) - y[size_t(i)]) * (double(x[size_t(i)]) - y[size_t(i)]);
      sx += double(x[size_t(i)]) * x[size_t(i)];
    }
    const double rel = std::sqrt(se / sx);
    EXPECT_LE(rel, c.max_rel_rms);
    RecordProperty(tname(c.t) + "_rel_rms", std::to_string(rel));
    std::printf("  %-6s relative rms error %.4f\n", tname(c.t).c_str(), rel);
    // Quantizing the dequantized values again must not drift far (a fixed point for the
    // 32-blocks; the K searches may pick a slightly different grid).
    const auto y2 = dequantized(c.t, quantized(c.t, y).data(), n);
    double se2 = 0;
    for (int64_t i = 0; i < n; ++i)
      se2 += (double(y[size_t(i)]) - y2[size_t(i)]) * (double(y[size_t(i)]) - y2[size_t(i)]);
    EXPECT_LE(std::sqrt(se2 / sx), c.max_rel_rms) << "requantize";
  }
}

TEST(QuantRoundTrip, ZeroAndConstantRowsStayExact) {
  for (TensorType t : all_weight_types()) {
    SCOPED_TRACE(tname(t));
    const std::vector<float> zeros(512, 0.f);
    const auto y = dequantized(t, quantized(t, zeros).data(), 512);
    for (float v : y) ASSERT_EQ(v, 0.f);
  }
}

TEST(QuantRoundTrip, RejectsBadLengthsAndTypes) {
  std::vector<float> x(100, 1.f), y(100);
  std::vector<uint8_t> buf(1024);
  EXPECT_FALSE(quantize_row(TensorType::Q4_0, x.data(), buf.data(), 100).ok());
  EXPECT_FALSE(dequantize_row(TensorType::Q4_K, buf.data(), y.data(), 100).ok());
  EXPECT_FALSE(dequantize_row(TensorType::IQ2_XXS, buf.data(), y.data(), 256).ok());
  EXPECT_FALSE(quantize_row(TensorType::IQ2_XXS, x.data(), buf.data(), 0).ok());
  EXPECT_EQ(kernels_for(TensorType::IQ2_XXS), nullptr);
  EXPECT_EQ(kernels_for(static_cast<TensorType>(1000)), nullptr);
}

// Q8_0 act: d = amax/127 in f16, levels round-half-even(x*127/amax); Q8_K: d = max/-127,
// bsums are the sums of 16 levels.
TEST(QuantAct, Q8FormatsFollowTheRoundingRules) {
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[size_t(i)] = float(i % 32) - 15.5f;  // amax 15.5
  const auto* k0 = kernels_for(TensorType::Q4_0);
  ASSERT_NE(k0, nullptr);
  ASSERT_EQ(k0->act, ActType::Q8_0);
  const auto a = act_row(*k0, x);
  BlockQ8_0 b;
  std::memcpy(&b, a.data(), sizeof(b));
  EXPECT_EQ(b.d, f32_to_fp16(15.5f / 127.f));
  for (int j = 0; j < 32; ++j)
    EXPECT_EQ(b.qs[j], nearest_int((float(j) - 15.5f) * (127.f / 15.5f))) << j;

  const auto* kk = kernels_for(TensorType::Q4_K);
  ASSERT_EQ(kk->act, ActType::Q8_K);
  x[100] = 40.f;  // the largest magnitude, positive: d becomes negative
  const auto ak = act_row(*kk, x);
  BlockQ8_K bk;
  std::memcpy(&bk, ak.data(), sizeof(bk));
  EXPECT_FLOAT_EQ(bk.d, 1.f / (-127.f / 40.f));
  EXPECT_EQ(bk.qs[100], -127);
  for (int j = 0; j < 16; ++j) {
    int s = 0;
    for (int l = 0; l < 16; ++l) s += bk.qs[16 * j + l];
    EXPECT_EQ(bk.bsums[j], s);
  }
  const auto* k1 = kernels_for(TensorType::Q4_1);
  ASSERT_EQ(k1->act, ActType::Q8_1);
  const auto a1 = act_row(*k1, x);
  BlockQ8_1 b1;
  std::memcpy(&b1, a1.data(), sizeof(b1));
  int s = 0;
  for (int j = 0; j < 32; ++j) s += b1.qs[j];
  EXPECT_EQ(b1.s, f32_to_fp16((15.5f / 127.f) * float(s)));
}

// vec_dot(w, act(x)) equals the float64 dot of the dequantized operands up to float
// accumulation error, and approximates dot(dequantize(w), x).
TEST(QuantDot, MatchesDequantizedDotForEveryTypeAndIsa) {
  const int64_t n = 2048;
  const auto xw = gaussian(n, 11, 0.05f);
  const auto xa = gaussian(n, 12, 1.f);
  for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
    for (TensorType t : all_weight_types()) {
      const WeightKernels* k = kernels_for(t, isa);
      if (!k) {
        ASSERT_EQ(isa, Isa::Avx2) << tname(t);  // the scalar table has every type
        continue;
      }
      SCOPED_TRACE(tname(t) + "/" + isa_name(isa));
      const auto w = quantized(t, xw);
      const auto a = act_row(*k, xa);
      const auto wd = dequantized(t, w.data(), n);
      const auto ad = act_values(*k, a, n);
      const double got = k->vec_dot(n, w.data(), a.data());
      const double scale = abs_dot(wd, ad);
      EXPECT_NEAR(got, dot(wd, ad), 1e-5 * scale + q8_1_slack(*k, w.data(), a.data(), n) + 1e-30);
      // Act rounding error: 8-bit acts are ~0.4% per value, f16 much less.
      const double act_tol = (k->act == ActType::F32 || k->act == ActType::F16) ? 1e-3
                             : k->act == ActType::BF16                          ? 4e-3
                                                                                : 1e-2;
      EXPECT_NEAR(got, dot(wd, xa), act_tol * abs_dot(wd, xa));
    }
  }
}
