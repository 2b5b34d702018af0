// Real tensors from ../shared/models: every tensor of every supported type dequantizes to
// finite values of plausible magnitude, and vec_dot on real rows agrees with the float64
// dot of the dequantized operands, in both ISAs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "gguf/reader.h"
#include "quant_test_util.h"

using namespace shimmy;
using namespace shimmy::quant;
using namespace shimmy::quant::test;

namespace {

std::vector<std::string> model_files() {
  std::vector<std::string> out;
  const std::string dir = std::string(SHIMMY_SHARED_DIR) + "/models";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".gguf") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(QuantModels, RealTensorsDequantizeToPlausibleValues) {
  const auto files = model_files();
  ASSERT_GE(files.size(), 10u);
  std::set<std::string> seen_types;
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    auto f = gguf::File::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    for (const auto& t : f->tensors()) {
      const WeightKernels* k = kernels_for(t.type);
      ASSERT_NE(k, nullptr) << t.name << " has unsupported type " << tname(t.type);
      SCOPED_TRACE(t.name + " " + tname(t.type));
      seen_types.insert(tname(t.type));
      const int64_t n = int64_t(t.shape[0]);
      const auto rb = weight_row_bytes(*k, n);
      ASSERT_TRUE(rb.has_value());
      const int64_t rows = int64_t(t.rows());
      // Large tensors (32000-token embeddings): check a spread of rows.
      const int64_t step = std::max<int64_t>(1, rows / 512);
      std::vector<float> y(static_cast<size_t>(n));
      double sum_sq = 0, max_abs = 0;
      int64_t count = 0;
      for (int64_t r = 0; r < rows; r += step) {
        k->dequantize(t.data + size_t(r) * *rb, y.data(), n);
        for (float v : y) {
          ASSERT_TRUE(std::isfinite(v)) << "row " << r;
          sum_sq += double(v) * v;
          max_abs = std::max(max_abs, double(std::fabs(v)));
        }
        count += n;
      }
      const double rms = std::sqrt(sum_sq / double(count));
      EXPECT_GT(rms, 1e-4);
      EXPECT_LT(rms, 10.0);
      EXPECT_LT(max_abs, 100.0);
    }
  }
  for (const char* want : {"F32", "F16", "BF16", "Q8_0", "Q5_1", "Q4_0", "IQ4_NL", "Q2_K", "Q3_K",
                           "Q4_K", "Q5_K", "Q6_K"})
    EXPECT_TRUE(seen_types.count(want)) << want;
}

TEST(QuantModels, VecDotOnRealRowsMatchesDequantizedDot) {
  for (const auto& path : model_files()) {
    auto f = gguf::File::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    for (const auto& t : f->tensors()) {
      if (t.shape.size() < 2) continue;
      const int64_t n = int64_t(t.shape[0]);
      const auto x = gaussian(n, 3);
      for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
        const WeightKernels* k = kernels_for(t.type, isa);
        if (!k) continue;
        SCOPED_TRACE(path + " " + t.name + " " + isa_name(isa));
        const auto a = act_row(*k, x);
        const auto ad = act_values(*k, a, n);
        const size_t rb = weight_row_bytes(*k, n).value();
        for (int64_t r = 0; r < int64_t(t.rows()); r += std::max<int64_t>(1, t.rows() / 7)) {
          const auto wd = dequantized(t.type, t.data + size_t(r) * rb, n);
          const double got = k->vec_dot(n, t.data + size_t(r) * rb, a.data());
          const double slack = q8_1_slack(*k, t.data + size_t(r) * rb, a.data(), n);
          ASSERT_NEAR(got, dot(wd, ad), 1e-5 * abs_dot(wd, ad) + slack + 1e-30) << "row " << r;
        }
      }
    }
  }
}
