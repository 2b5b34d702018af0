// The CUDA weight matmuls (plugins/cuda/src/mm) against a float64 CPU reference, for every
// weight type the CPU computes and m in {1, 2, 7, 16, 64, 512}.
//
// Weights are random rows quantized by the CPU quantizer; the reference multiplies their
// exact dequantization (quant::dequantize_row) by x in double. Each output element must lie
// within tol * Σ_k |w_k x_k| of the reference (the rounding bound of a dot product, which
// holds whatever the cancellation):
//   decode, m <= 16: tol = 1e-5. Weights are exact and x is split into two bf16 parts
//     (error <= 2^-17 |x|; f16 parts for F16 weights), products and sums in float32.
//   prompt, m > 16: tol = 2^-8 (+1e-5). Weights and x are rounded to bf16 (each <= 2^-9
//     relative), sums in float32. F16 weights stay exact and x is rounded to f16 (2^-11):
//     tol = 1e-3.
// Outputs are poisoned (NaN) before each run, the padding columns of y (ldy > rows) must
// stay untouched, two runs must agree bit for bit, and for m <= 16 x row 0 alone (m = 1)
// must give the bits of row 0 of the batch. Shapes have row counts that are not
// multiples of the tiles and columns that end in a partial 128-value step.
// Without a usable CUDA device (no libcuda.so.1, a driver error, no device) every test skips.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/quant/kernels.h"
#include "gguf/types.h"
#include "mm/matmul.h"

namespace {

using shimmy::gguf::TensorType;

// Why no CUDA device can be used here, or "" when one can.
const std::string& gpu_unusable() {
  static const std::string why = [] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
      return std::string("no usable CUDA device: cudaGetDeviceCount: ") + cudaGetErrorString(e);
    if (n == 0) return std::string("no CUDA device");
    return std::string();
  }();
  return why;
}

#define SKIP_WITHOUT_GPU()                                       \
  do {                                                           \
    if (!gpu_unusable().empty()) GTEST_SKIP() << gpu_unusable(); \
  } while (0)

#define CUDA_OK(expr)                                                      \
  do {                                                                     \
    const cudaError_t e_ = (expr);                                         \
    ASSERT_EQ(e_, cudaSuccess) << #expr << ": " << cudaGetErrorString(e_); \
  } while (0)

const TensorType kTypes[] = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,  TensorType::Q4_0,
    TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q2_K,  TensorType::Q3_K,
    TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_NL};
const int64_t kMs[] = {1, 2, 7, 16, 64, 512};

bool is_k(TensorType t) {
  return t == TensorType::Q2_K || t == TensorType::Q3_K || t == TensorType::Q4_K ||
         t == TensorType::Q5_K || t == TensorType::Q6_K;
}

// Shapes per type: a short row (a partial last step for the 32-blocks) and a long one
// (several steps per warp, k splits in the prompt path); for decode also many rows (one
// warp per 16-row tile), for the prompt path enough row tiles to need no k split.
std::vector<std::pair<int64_t, int64_t>> shapes_for(TensorType t, int64_t m) {
  const bool k = is_k(t);
  std::vector<std::pair<int64_t, int64_t>> v = {{200, k ? 768 : 800}, {130, k ? 4352 : 4384}};
  if (m <= 16) v.push_back({40000, k ? 256 : 96});
  if (m > 16) v.push_back({2100, k ? 256 : 288});
  return v;
}

struct HostWeights {
  int64_t rows = 0, cols = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> bytes;  // GGUF rows
  std::vector<float> w;        // their exact dequantization
};

// Random rows (normal, a different scale per row), quantized by the CPU quantizer.
const HostWeights& weights(TensorType type, int64_t rows, int64_t cols) {
  static std::map<std::tuple<uint32_t, int64_t, int64_t>, HostWeights> cache;
  auto key = std::make_tuple(uint32_t(type), rows, cols);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  HostWeights h;
  h.rows = rows;
  h.cols = cols;
  h.row_bytes = size_t(*shimmy::gguf::row_bytes(type, uint64_t(cols)));
  h.bytes.resize(size_t(rows) * h.row_bytes);
  h.w.resize(size_t(rows * cols));
  std::mt19937 rng(uint32_t(type) * 7919u + uint32_t(cols));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> src(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = 0.02f * float(1 + r % 7);
    for (auto& v : src) v = nd(rng) * scale;
    uint8_t* dst = h.bytes.data() + size_t(r) * h.row_bytes;
    const auto q = shimmy::quant::quantize_row(type, src.data(), dst, cols);
    EXPECT_TRUE(q.ok()) << q.message();
    const auto d = shimmy::quant::dequantize_row(type, dst, h.w.data() + r * cols, cols);
    EXPECT_TRUE(d.ok()) << d.message();
  }
  return cache.emplace(key, std::move(h)).first->second;
}

struct DeviceBuffer {
  void* p = nullptr;
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
};

class MatmulTest : public ::testing::TestWithParam<std::tuple<TensorType, int64_t>> {};

void run_case(TensorType type, int64_t m, int64_t rows, int64_t cols) {
  const HostWeights& h = weights(type, rows, cols);
  const uint32_t tid = uint32_t(type);
  ASSERT_TRUE(shimmy::cuda::type_supported(tid));
  const size_t wbytes = shimmy::cuda::weight_device_bytes(tid, rows, cols);
  ASSERT_GT(wbytes, 0u);

  cudaStream_t s = nullptr;
  CUDA_OK(cudaStreamCreate(&s));
  DeviceBuffer dw, dx, dy, dws;
  shimmy::cuda::DeviceWeight w;
  CUDA_OK(cudaMalloc(&dw.p, wbytes));
  CUDA_OK(shimmy::cuda::upload_weight(h.bytes.data(), tid, rows, cols, h.row_bytes, dw.p, &w, s));
  ASSERT_EQ(size_t(w.row_bytes) * size_t(rows), wbytes);

  std::mt19937 rng(uint32_t(m * 131 + cols + tid));
  std::uniform_real_distribution<float> ud(-1.f, 1.f);
  std::vector<float> x(size_t(m * cols));
  for (auto& v : x) v = ud(rng);
  const int64_t ldy = rows + 3;
  const size_t ybytes = size_t(m * ldy) * sizeof(float);
  CUDA_OK(cudaMalloc(&dx.p, x.size() * sizeof(float)));
  CUDA_OK(cudaMalloc(&dy.p, ybytes));
  CUDA_OK(cudaMemcpy(dx.p, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
  const size_t wsb = shimmy::cuda::matmul_workspace_bytes(w, m);
  if (wsb) CUDA_OK(cudaMalloc(&dws.p, wsb));

  std::vector<float> y[2];
  for (int run = 0; run < 2; ++run) {
    CUDA_OK(cudaMemset(dy.p, 0xFF, ybytes));  // NaN everywhere
    shimmy::cuda::matmul(w, static_cast<const float*>(dx.p), m, static_cast<float*>(dy.p), ldy,
                         dws.p, s);
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaStreamSynchronize(s));
    y[run].resize(size_t(m * ldy));
    CUDA_OK(cudaMemcpy(y[run].data(), dy.p, ybytes, cudaMemcpyDeviceToHost));
  }
  // Decode is batch invariant: x row 0 alone gives the same bits as inside the batch.
  std::vector<float> y1(static_cast<size_t>(rows));
  if (m > 1 && m <= 16) {
    CUDA_OK(cudaMemset(dy.p, 0xFF, ybytes));
    shimmy::cuda::matmul(w, static_cast<const float*>(dx.p), 1, static_cast<float*>(dy.p), ldy,
                         dws.p, s);
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaStreamSynchronize(s));
    CUDA_OK(cudaMemcpy(y1.data(), dy.p, y1.size() * 4, cudaMemcpyDeviceToHost));
  }
  CUDA_OK(cudaStreamDestroy(s));
  ASSERT_EQ(std::memcmp(y[0].data(), y[1].data(), ybytes), 0) << "two runs differ";
  if (m > 1 && m <= 16)
    EXPECT_EQ(std::memcmp(y1.data(), y[0].data(), y1.size() * 4), 0)
        << "m = 1 differs from row 0 of m = " << m;

  const bool decode = m <= 16;
  const double tol = decode ? 1e-5 : (type == TensorType::F16 ? 1e-3 : 0.00390625 + 1e-5);
  int bad = 0;
  double worst = 0, err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x.data() + i * cols;
    for (int64_t r = 0; r < rows; ++r) {
      const float* wr = h.w.data() + r * cols;
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < cols; ++k) {
        const double p = double(wr[k]) * double(xi[k]);
        ref += p;
        mag += std::fabs(p);
      }
      const double got = y[0][size_t(i * ldy + r)];
      const double err = std::fabs(got - ref);
      err2 += err * err;
      ref2 += ref * ref;
      const double ratio = err / (mag + 1e-30);
      if (!(ratio <= tol)) {  // NaN fails too
        if (bad++ < 5)
          ADD_FAILURE() << "y[" << i << "][" << r << "] = " << got << ", reference " << ref
                        << ", |err| / sum|w x| = " << ratio << " > " << tol;
      } else if (ratio > worst) {
        worst = ratio;
      }
    }
    for (int64_t r = rows; r < ldy; ++r) {
      uint32_t bits;
      std::memcpy(&bits, &y[0][size_t(i * ldy + r)], 4);
      if (bits != 0xFFFFFFFFu && bad++ < 5)
        ADD_FAILURE() << "padding y[" << i << "][" << r << "] written";
    }
  }
  EXPECT_EQ(bad, 0) << bad << " bad outputs";
  std::printf(
      "  %-6s m=%-3lld [%lld, %lld]  max |err|/sum|wx| = %.2e (bound %.1e)  rel L2 = %.2e\n",
      shimmy::gguf::type_name(tid).c_str(), (long long)m, (long long)rows, (long long)cols, worst,
      tol, std::sqrt(err2 / (ref2 + 1e-300)));
}

TEST_P(MatmulTest, MatchesFloat64Reference) {
  SKIP_WITHOUT_GPU();
  const auto [type, m] = GetParam();
  for (const auto& [rows, cols] : shapes_for(type, m)) {
    run_case(type, m, rows, cols);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulTest,
                         ::testing::Combine(::testing::ValuesIn(kTypes), ::testing::ValuesIn(kMs)),
                         [](const ::testing::TestParamInfo<MatmulTest::ParamType>& info) {
                           return shimmy::gguf::type_name(uint32_t(std::get<0>(info.param))) +
                                  "_m" + std::to_string(std::get<1>(info.param));
                         });

// The contract's edges (no kernel runs).
TEST(MatmulContract, ShapesAndTypes) {
  SKIP_WITHOUT_GPU();
  using shimmy::cuda::type_supported;
  using shimmy::cuda::weight_device_bytes;
  for (TensorType t : kTypes) EXPECT_TRUE(type_supported(uint32_t(t)));
  EXPECT_FALSE(type_supported(uint32_t(TensorType::Q8_K)));
  EXPECT_FALSE(type_supported(uint32_t(TensorType::IQ2_XXS)));
  EXPECT_EQ(weight_device_bytes(uint32_t(TensorType::Q4_K), 4, 128), 0u);  // not a super-block
  EXPECT_EQ(weight_device_bytes(uint32_t(TensorType::F16), 4, 100), 0u);   // not a multiple of 32
  // The repack keeps every byte: a 128-multiple row takes its GGUF size, but Q3_K and Q6_K
  // pad 2 bytes per super-block; rows are 16-byte aligned.
  EXPECT_EQ(weight_device_bytes(uint32_t(TensorType::Q4_0), 10, 2048), 10u * 1152);
  EXPECT_EQ(weight_device_bytes(uint32_t(TensorType::Q4_K), 10, 2048), 10u * 1152);
  EXPECT_EQ(weight_device_bytes(uint32_t(TensorType::Q8_0), 10, 2048), 10u * 2176);
  EXPECT_EQ(weight_device_bytes(uint32_t(TensorType::Q6_K), 10, 2048), 10u * 1696);  // d: 4 bytes
  EXPECT_EQ(weight_device_bytes(uint32_t(TensorType::F16), 10, 2048), 10u * 4096);
}

}  // namespace
