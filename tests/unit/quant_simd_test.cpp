// AVX2 kernels against the scalar ones (integer parts exact, float sums within 1e-5 of
// the sum of magnitudes), on realistic quantized rows and on raw random blocks that hit
// the extreme levels; and batch invariance: matmul_rows equals vec_dot bit for bit for
// every m, tile position and row range.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "backend/cpu/quant/internal.h"
#include "backend/cpu/quant/packed.h"
#include "quant_test_util.h"

using namespace shimmy;
using namespace shimmy::quant;
using namespace shimmy::quant::test;

namespace {

// Raw random bytes for every block, with the f16 scale fields replaced by small finite
// values: every bit pattern of the levels is legal, including Q8_0's -128.
std::vector<uint8_t> random_blocks(TensorType t, int64_t n, uint32_t seed) {
  const auto traits = gguf::type_traits(uint32_t(t)).value();
  std::vector<uint8_t> buf(gguf::row_bytes(t, uint64_t(n)).value());
  std::mt19937 rng(seed);
  for (auto& b : buf) b = uint8_t(rng());
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  auto put = [&](size_t off, float v) {
    const uint16_t h = (t == TensorType::BF16) ? f32_to_bf16(v) : f32_to_fp16(v);
    std::memcpy(&buf[off], &h, 2);
  };
  std::vector<int> f16_fields;  // byte offsets of f16 fields inside a block
  switch (t) {
    case TensorType::F32: {
      for (int64_t i = 0; i < n; ++i) {
        const float v = scale(rng);
        std::memcpy(&buf[size_t(4 * i)], &v, 4);
      }
      return buf;
    }
    case TensorType::F16:
    case TensorType::BF16:
      f16_fields = {0};
      break;
    case TensorType::Q4_1:
    case TensorType::Q5_1:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
      f16_fields = {0, 2};
      break;
    case TensorType::Q2_K:
      f16_fields = {80, 82};
      break;
    case TensorType::Q3_K:
      f16_fields = {108};
      break;
    case TensorType::Q6_K:
      f16_fields = {208};
      break;
    default:
      f16_fields = {0};
      break;
  }
  for (size_t b = 0; b < buf.size() / traits.block_bytes; ++b)
    for (int off : f16_fields) put(b * traits.block_bytes + size_t(off), scale(rng));
  return buf;
}

double simd_tol(const WeightKernels& k, const std::vector<uint8_t>& w,
                const std::vector<uint8_t>& a, int64_t n) {
  return 1e-5 * abs_dot(dequantized(k.type, w.data(), n), act_values(k, a, n)) + 1e-30;
}

}  // namespace

TEST(QuantSimd, Avx2DotMatchesScalar) {
  if (best_isa() != Isa::Avx2) GTEST_SKIP() << "no AVX2 on this CPU";
  for (TensorType t : all_weight_types()) {
    SCOPED_TRACE(tname(t));
    const auto* ks = kernels_for(t, Isa::Scalar);
    const auto* kv = kernels_for(t, Isa::Avx2);
    ASSERT_TRUE(ks && kv);
    for (int64_t n : {int64_t(256), int64_t(512), int64_t(4096)}) {
      for (uint32_t seed = 1; seed <= 3; ++seed) {
        const auto x = gaussian(n, seed * 31 + uint32_t(n), 0.7f);
        const auto w1 = quantized(t, gaussian(n, seed, 0.05f));
        const auto w2 = random_blocks(t, n, seed);
        const auto a = act_row(*ks, x);
        ASSERT_EQ(a, act_row(*kv, x));  // act bytes never depend on the ISA
        for (const auto* w : {&w1, &w2}) {
          const float s = ks->vec_dot(n, w->data(), a.data());
          const float v = kv->vec_dot(n, w->data(), a.data());
          EXPECT_NEAR(s, v, simd_tol(*ks, *w, a, n)) << "n=" << n << " seed=" << seed;
        }
      }
    }
  }
}

// Float types with lengths that are not a multiple of 8 (the stories260K model has 172).
TEST(QuantSimd, FloatTailsMatchScalar) {
  if (best_isa() != Isa::Avx2) GTEST_SKIP() << "no AVX2 on this CPU";
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16}) {
    for (int64_t n : {1, 7, 9, 64, 172, 173}) {
      const auto* ks = kernels_for(t, Isa::Scalar);
      const auto* kv = kernels_for(t, Isa::Avx2);
      const auto w = quantized(t, gaussian(n, 5, 0.1f));
      const auto a = act_row(*ks, gaussian(n, 6));
      EXPECT_NEAR(ks->vec_dot(n, w.data(), a.data()), kv->vec_dot(n, w.data(), a.data()),
                  simd_tol(*ks, w, a, n))
          << tname(t) << " n=" << n;
    }
  }
}

// Dequantizing the 16-bit float types: every bit pattern gives the same float in both ISAs
// (NaNs stay NaN; F16C quiets signalling ones), with a tail that is not a multiple of 8.
TEST(QuantSimd, FloatDequantizeMatchesScalar) {
  if (best_isa() != Isa::Avx2) GTEST_SKIP() << "no AVX2 on this CPU";
  constexpr int64_t kAll = 65536 + 5;  // every pattern, then a 5-value tail
  std::vector<uint16_t> h(kAll);
  for (int64_t i = 0; i < kAll; ++i) h[i] = uint16_t(i * 40503u);  // odd: a permutation
  for (TensorType t : {TensorType::F16, TensorType::BF16}) {
    std::vector<float> ys(kAll), yv(kAll);
    kernels_for(t, Isa::Scalar)->dequantize(h.data(), ys.data(), kAll);
    kernels_for(t, Isa::Avx2)->dequantize(h.data(), yv.data(), kAll);
    int64_t bad = 0;
    for (int64_t i = 0; i < kAll; ++i) {
      if (std::isnan(ys[i])) {
        bad += !std::isnan(yv[i]);
      } else {
        uint32_t a, b;
        std::memcpy(&a, &ys[i], 4);
        std::memcpy(&b, &yv[i], 4);
        bad += a != b;
      }
    }
    EXPECT_EQ(bad, 0) << tname(t);
  }
}

// The integer unpacking of K super-blocks is the same, bit for bit, in both ISAs.
TEST(QuantSimd, KUnpackIdenticalAcrossIsas) {
  if (best_isa() != Isa::Avx2) GTEST_SKIP() << "no AVX2 on this CPU";
  for (TensorType t :
       {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    SCOPED_TRACE(tname(t));
    const auto blocks = random_blocks(t, 256 * 16, 9);
    const size_t bb = gguf::type_traits(uint32_t(t))->block_bytes;
    for (size_t b = 0; b < 16; ++b) {
      KUnpacked us{}, uv{};
      ASSERT_TRUE(unpack_k_scalar(t, blocks.data() + b * bb, &us));
      ASSERT_TRUE(unpack_k_avx2(t, blocks.data() + b * bb, &uv));
      EXPECT_EQ(0, std::memcmp(us.q, uv.q, sizeof(us.q)));
      EXPECT_EQ(0, std::memcmp(us.sc16, uv.sc16, sizeof(us.sc16)));
      EXPECT_EQ(0, std::memcmp(us.mins16, uv.mins16, sizeof(us.mins16)));
      EXPECT_EQ(us.d, uv.d);
      EXPECT_EQ(us.dmin, uv.dmin);
      for (int c = 0; c < 8; ++c)
        for (int l = 0; l < 16; ++l) ASSERT_EQ(uv.sv[c][l], us.sc16[2 * c + l / 8]);
      // The unpacked form reproduces the dequantized weights.
      float y[256];
      ASSERT_TRUE(dequantize_row(t, blocks.data() + b * bb, y, 256).ok());
      for (int v = 0; v < 256; ++v) {
        const float r =
            us.d * float(us.sc16[v / 16]) * float(us.q[v]) - us.dmin * float(us.mins16[v / 16]);
        ASSERT_NEAR(r, y[v], 1e-5f * (std::fabs(y[v]) + std::fabs(us.dmin * us.mins16[v / 16])))
            << v;
      }
    }
  }
}

// matmul_rows == vec_dot exactly, for all m (tile shapes 4x2, 4x1, 1x4, 1x1 and their
// remainders) and for row ranges that start and end anywhere.
TEST(QuantMatmul, BatchInvariantBitExact) {
  const int64_t rows = 13;
  for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
    for (TensorType t : all_weight_types()) {
      const WeightKernels* k = kernels_for(t, isa);
      if (!k) continue;
      SCOPED_TRACE(tname(t) + "/" + isa_name(isa));
      const int64_t n = k->block == 256 ? 512 : 96;
      const size_t ws = weight_row_bytes(*k, n).value(), as = act_row_bytes(*k, n).value();
      const auto W = quantized(t, gaussian(rows * n, 21, 0.05f));
      for (int64_t m : {1, 2, 3, 4, 5, 8, 11}) {
        const auto x = gaussian(m * n, uint32_t(100 + m));
        std::vector<uint8_t> A(as * size_t(m));
        for (int64_t i = 0; i < m; ++i)
          k->quantize_act(x.data() + i * n, A.data() + size_t(i) * as, n);
        const int64_t ldo = rows + 3;
        std::vector<float> out(size_t(m * ldo), -1.f);
        matmul_rows(*k, n, W.data(), ws, A.data(), as, m, out.data(), ldo, 0, 5);
        matmul_rows(*k, n, W.data(), ws, A.data(), as, m, out.data(), ldo, 5, rows);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t r = 0; r < rows; ++r) {
            const float ref = k->vec_dot(n, W.data() + size_t(r) * ws, A.data() + size_t(i) * as);
            ASSERT_EQ(f32_to_bits(out[size_t(i * ldo + r)]), f32_to_bits(ref))
                << "m=" << m << " i=" << i << " r=" << r;
          }
        for (int64_t i = 0; i < m; ++i)  // columns past `rows` untouched
          for (int64_t r = rows; r < ldo; ++r) ASSERT_EQ(out[size_t(i * ldo + r)], -1.f);
      }
    }
  }
}

// The same over row ranges that span several cache bands (the prompt tiles unpack ~32 KiB
// of weight rows at a time), starting and ending mid-band.
TEST(QuantMatmul, BatchInvariantAcrossBands) {
  const int64_t rows = 150;
  for (TensorType t : all_weight_types()) {
    const WeightKernels* k = kernels_for(t, best_isa());
    if (!k) continue;
    SCOPED_TRACE(tname(t));
    const int64_t n = k->block == 256 ? 2048 : 1024;
    const size_t ws = weight_row_bytes(*k, n).value(), as = act_row_bytes(*k, n).value();
    const auto W = quantized(t, gaussian(rows * n, 23, 0.05f));
    for (int64_t m : {6, 9}) {
      const auto x = gaussian(m * n, uint32_t(200 + m));
      std::vector<uint8_t> A(as * size_t(m));
      for (int64_t i = 0; i < m; ++i)
        k->quantize_act(x.data() + i * n, A.data() + size_t(i) * as, n);
      std::vector<float> out(size_t(m * rows), -1.f);
      matmul_rows(*k, n, W.data(), ws, A.data(), as, m, out.data(), rows, 3, rows - 2);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t r = 0; r < rows; ++r) {
          const bool inside = r >= 3 && r < rows - 2;
          const float ref =
              inside ? k->vec_dot(n, W.data() + size_t(r) * ws, A.data() + size_t(i) * as) : -1.f;
          ASSERT_EQ(f32_to_bits(out[size_t(i * rows + r)]), f32_to_bits(ref))
              << "m=" << m << " i=" << i << " r=" << r;
        }
    }
  }
}

// The act bytes are the same whichever ISA quantized them: Gaussian rows, zero blocks,
// exact rounding ties, tiny and huge magnitudes.
TEST(QuantSimd, ActQuantizersMatchScalar) {
  if (best_isa() != Isa::Avx2) GTEST_SKIP() << "no AVX2 on this CPU";
  std::vector<float> x = gaussian(1024, 77);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = 0.f;                        // zero block
  for (int j = 0; j < 32; ++j) x[size_t(32 + j)] = float(j - 16) * 0.5f;  // ties at ±127/16·k
  x[64] = 127.f;
  for (int j = 65; j < 96; ++j) x[size_t(j)] = float(j - 80) + 0.5f;  // x*id = k + .5
  for (int j = 96; j < 128; ++j) x[size_t(j)] = 1e-30f * float(j);
  for (int j = 128; j < 160; ++j) x[size_t(j)] = 6e4f * float(j % 7 - 3);
  for (TensorType t : all_weight_types()) {
    const auto* ks = kernels_for(t, Isa::Scalar);
    const auto* kv = kernels_for(t, Isa::Avx2);
    ASSERT_TRUE(ks && kv);
    for (int64_t n : {int64_t(256), int64_t(1024)})
      EXPECT_EQ(act_row(*ks, std::vector<float>(x.begin(), x.begin() + n)),
                act_row(*kv, std::vector<float>(x.begin(), x.begin() + n)))
          << tname(t) << " n=" << n;
  }
}

// Packed (row-interleaved) layouts: every ISA's packed matmul equals the scalar vec_dot on
// the GGUF rows bit for bit, for every m and for ranges of whole groups; rows outside the
// range are untouched.
TEST(QuantPacked, EqualsScalarVecDotBitExact) {
  const int64_t rows = 40;
  for (TensorType t : all_weight_types()) {
    const WeightKernels* ks = kernels_for(t, Isa::Scalar);
    if (!ks || !ks->packed) continue;
    for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
      const WeightKernels* k = kernels_for(t, isa);
      if (!k) continue;
      SCOPED_TRACE(tname(t) + "/" + isa_name(isa));
      ASSERT_TRUE(k->packed);
      for (int64_t n : {std::max<int64_t>(64, k->block), int64_t(1024)}) {
        ASSERT_TRUE(can_pack(*k, rows, n));
        EXPECT_FALSE(can_pack(*k, rows + 4, n));
        const size_t ws = weight_row_bytes(*k, n).value(), as = act_row_bytes(*k, n).value();
        for (int variant = 0; variant < 2; ++variant) {
          const auto W = variant == 0 ? quantized(t, gaussian(rows * n, 31, 0.05f))
                                      : random_blocks(t, rows * n, 17);
          std::vector<uint8_t> P(W.size());
          pack_rows(*k, W.data(), ws, rows, n, P.data());
          for (int64_t m : {1, 2, 3, 4, 5, 7, 9}) {
            const auto x = gaussian(m * n, uint32_t(300 + m));
            std::vector<uint8_t> A(as * size_t(m));
            for (int64_t i = 0; i < m; ++i)
              k->quantize_act(x.data() + i * n, A.data() + size_t(i) * as, n);
            const int64_t ldo = rows + 5;
            std::vector<float> out(size_t(m * ldo), -1.f);
            matmul_rows(*k->packed, n, P.data(), ws, A.data(), as, m, out.data(), ldo, 8, 24);
            matmul_rows(*k->packed, n, P.data(), ws, A.data(), as, m, out.data(), ldo, 24, rows);
            for (int64_t i = 0; i < m; ++i)
              for (int64_t r = 0; r < ldo; ++r) {
                const bool inside = r >= 8 && r < rows;
                const float ref =
                    inside ? ks->vec_dot(n, W.data() + size_t(r) * ws, A.data() + size_t(i) * as)
                           : -1.f;
                ASSERT_EQ(f32_to_bits(out[size_t(i * ldo + r)]), f32_to_bits(ref))
                    << "n=" << n << " m=" << m << " i=" << i << " r=" << r;
              }
          }
        }
      }
    }
  }
}

// Packed F16 (AVX2): every element equals one FMA chain over k in order, for every m and
// range of whole groups (the definition that makes it batch invariant).
TEST(QuantPacked, F16IsOneFmaChainPerPair) {
  const WeightKernels* k = kernels_for(TensorType::F16, Isa::Avx2);
  if (!k) GTEST_SKIP() << "no AVX2 on this CPU";
  ASSERT_TRUE(k->packed);
  const int64_t rows = 48;
  for (int64_t n : {int64_t(40), int64_t(600)}) {
    const size_t ws = weight_row_bytes(*k, n).value(), as = act_row_bytes(*k, n).value();
    const auto W = quantized(TensorType::F16, gaussian(rows * n, 41, 0.05f));
    std::vector<uint8_t> P(W.size());
    pack_rows(*k, W.data(), ws, rows, n, P.data());
    const auto wf = dequantized(TensorType::F16, W.data(), rows * n);
    for (int64_t m : {1, 2, 5, 6, 7, 13}) {
      const auto x = gaussian(m * n, uint32_t(400 + m));
      std::vector<uint8_t> A(as * size_t(m));
      for (int64_t i = 0; i < m; ++i)
        k->quantize_act(x.data() + i * n, A.data() + size_t(i) * as, n);
      const int64_t ldo = rows + 2;
      std::vector<float> out(size_t(m * ldo), -1.f);
      matmul_rows(*k->packed, n, P.data(), ws, A.data(), as, m, out.data(), ldo, 0, 16);
      matmul_rows(*k->packed, n, P.data(), ws, A.data(), as, m, out.data(), ldo, 16, rows);
      for (int64_t i = 0; i < m; ++i) {
        const float* a = reinterpret_cast<const float*>(A.data() + size_t(i) * as);
        for (int64_t r = 0; r < ldo; ++r) {
          float ref = -1.f;
          if (r < rows) {
            ref = 0.f;
            for (int64_t c = 0; c < n; ++c) ref = std::fma(wf[size_t(r * n + c)], a[c], ref);
          }
          ASSERT_EQ(f32_to_bits(out[size_t(i * ldo + r)]), f32_to_bits(ref))
              << "n=" << n << " m=" << m << " i=" << i << " r=" << r;
        }
      }
    }
  }
}
