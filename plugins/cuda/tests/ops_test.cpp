// Op-by-op agreement of the CUDA layer kernels with the CPU ops they replace, on random
// inputs: RMSNorm + residual add, the q/k/v step (bias, qk-norm, rope normal and NeoX,
// f16 rounding, KV store), attention (prompt and decode shapes, GQA, f16 and f32 caches),
// SwiGLU, and the weight matmul contract (mm/matmul.h) for every weight type.
#include "backend/cpu/ops.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "backend/cpu/attention.h"
#include "backend/cpu/quant/blocks.h"
#include "backend/cpu/quant/kernels.h"
#include "cuda_test_util.h"
#include "gguf/types.h"
#include "host_copy.h"
#include "kernels.h"
#include "mm/matmul.h"
#include "mm/repack.h"

using namespace shimmy;

namespace {

#define CUDA_OK(call) \
  ASSERT_EQ((call), cudaSuccess) << #call << ": " << cudaGetErrorString(cudaGetLastError())

// Device copy of a host vector; freed on scope exit.
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    if (cudaMalloc(&p, std::max<size_t>(1, n) * sizeof(T)) != cudaSuccess) p = nullptr;
    if (p) cudaMemset(p, 0xff, std::max<size_t>(1, n) * sizeof(T));  // NaN-poisoned
  }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) {
    if (p) cudaMemcpy(p, v.data(), n * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    cudaDeviceSynchronize();
    cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
};

std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

float f16_round(float x) {
  return quant::fp16_to_f32(quant::f32_to_fp16(x));
}

// max |a - b| / (|b| + floor)
double max_rel(const std::vector<float>& a, const std::vector<float>& b, double floor = 1e-3) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
    m = std::max(m, std::abs(double(a[i]) - b[i]) / (std::abs(double(b[i])) + floor));
  }
  return m;
}
double max_abs(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    m = std::max(m, std::abs(double(a[i]) - b[i]));
  }
  return m;
}

}  // namespace

// ---- RMSNorm and the residual add -------------------------------------------------------

TEST(CudaOps, RmsNormResidualAdd) {
  SHIMMY_REQUIRE_GPU();
  for (int64_t n : {8, 64, 172, 4099}) {
    SCOPED_TRACE(n);
    const int64_t rows = 6;
    auto x = random_vec(rows * n, 1, -3, 3), add = random_vec(rows * n, 2),
         w = random_vec(n, 3, 0.5f, 1.5f);
    const float eps = 1e-5f;
    // CPU: x += add; h = rmsnorm(x) * w. Rows 1 and 4 are left out of the packed output.
    std::vector<float> cx = x, ch(rows * n);
    const std::vector<int32_t> out_row = {0, -1, 1, 2, -1, 3};
    for (int64_t r = 0; r < rows; ++r) cpu::add_inplace(cx.data() + r * n, add.data() + r * n, n);
    for (int64_t r = 0; r < rows; ++r)
      cpu::rms_norm(cx.data() + r * n, w.data(), ch.data() + r * n, n, eps);

    Dev<float> dx(x), dadd(add), dw(w), dh(rows * n), dh2(rows * n);
    Dev<int32_t> drow(out_row);
    cuda::residual_rmsnorm(dx.p, dadd.p, dw.p, dh.p, nullptr, rows, n, eps, nullptr);
    CUDA_OK(cudaGetLastError());
    EXPECT_EQ(dx.get(), cx) << "residual add";
    EXPECT_LE(max_rel(dh.get(), ch), 1e-6) << "rmsnorm";
    // Norm only (no add), packed by out_row: the head's form.
    cuda::residual_rmsnorm(dx.p, nullptr, dw.p, dh2.p, drow.p, rows, n, eps, nullptr);
    const auto packed = dh2.get();
    for (int64_t r = 0; r < rows; ++r) {
      if (out_row[r] < 0) continue;
      std::vector<float> got(packed.begin() + out_row[r] * n,
                             packed.begin() + (out_row[r] + 1) * n);
      std::vector<float> want(ch.begin() + r * n, ch.begin() + (r + 1) * n);
      EXPECT_LE(max_rel(got, want), 1e-6) << "packed row " << r;
    }
  }
}

// ---- bias, qk-norm, rope, q rounding, KV store ------------------------------------------

struct QkvCase {
  bool neox, partial_rot, bias_norm, kv_f16;
  bool stacked = false;  // q, k, v read from one [n, Q + 2 KV] buffer, q written elsewhere
};

class CudaQkv : public ::testing::TestWithParam<QkvCase> {};

TEST_P(CudaQkv, MatchesCpu) {
  SHIMMY_REQUIRE_GPU();
  const QkvCase tc = GetParam();
  const int n = 5, H = 4, KVH = 2, hd = 64, Q = H * hd, KV = KVH * hd;
  const int64_t max_ctx = 16, max_seqs = 3;
  const std::vector<int32_t> seq = {0, 1, 0, 1, 2}, pos = {0, 3, 1, 7, 11};
  cpu::RopeParams rp;
  rp.n_rot = tc.partial_rot ? hd / 2 : hd;
  rp.neox = tc.neox;
  rp.base = tc.neox ? 1e6f : 1e4f;
  std::vector<float> cs(n * rp.n_rot);
  for (int i = 0; i < n; ++i) cpu::rope_cos_sin(rp, pos[i], cs.data() + i * rp.n_rot);
  auto q = random_vec(n * Q, 10, -2, 2), k = random_vec(n * KV, 11, -2, 2),
       v = random_vec(n * KV, 12, -2, 2);
  auto bq = random_vec(Q, 13), bk = random_vec(KV, 14), bv = random_vec(KV, 15);
  auto qn = random_vec(hd, 16, 0.5f, 1.5f), kn = random_vec(hd, 17, 0.5f, 1.5f);
  const float eps = 1e-6f;

  // CPU, as model/forward.cpp.
  std::vector<float> cq = q, ck = k, cv = v;
  for (int i = 0; i < n; ++i) {
    float *qi = cq.data() + i * Q, *ki = ck.data() + i * KV, *vi = cv.data() + i * KV;
    if (tc.bias_norm) {
      cpu::add_inplace(qi, bq.data(), Q);
      cpu::add_inplace(ki, bk.data(), KV);
      cpu::add_inplace(vi, bv.data(), KV);
      for (int h = 0; h < H; ++h) cpu::rms_norm(qi + h * hd, qn.data(), qi + h * hd, hd, eps);
      for (int h = 0; h < KVH; ++h) cpu::rms_norm(ki + h * hd, kn.data(), ki + h * hd, hd, eps);
    }
    cpu::rope_apply(rp, cs.data() + i * rp.n_rot, qi, H, hd);
    cpu::rope_apply(rp, cs.data() + i * rp.n_rot, ki, KVH, hd);
    cpu::round_to_f16(qi, Q);
  }

  const size_t cache_n = size_t(max_seqs * max_ctx * KV);
  Dev<float> dq(q), dk(k), dv(v), dbq(bq), dbk(bk), dbv(bv), dqn(qn), dkn(kn), dcs(cs);
  Dev<int32_t> dseq(seq), dpos(pos);
  Dev<float> kc32(tc.kv_f16 ? 0 : cache_n), vc32(tc.kv_f16 ? 0 : cache_n);
  Dev<uint16_t> kc16(tc.kv_f16 ? cache_n : 0), vc16(tc.kv_f16 ? cache_n : 0);
  // The stacked layout: row i = q_i | k_i | v_i.
  std::vector<float> qkv(size_t(n) * (Q + 2 * KV));
  for (int i = 0; i < n; ++i) {
    std::copy(q.begin() + i * Q, q.begin() + (i + 1) * Q, qkv.begin() + i * (Q + 2 * KV));
    std::copy(k.begin() + i * KV, k.begin() + (i + 1) * KV, qkv.begin() + i * (Q + 2 * KV) + Q);
    std::copy(v.begin() + i * KV, v.begin() + (i + 1) * KV,
              qkv.begin() + i * (Q + 2 * KV) + Q + KV);
  }
  Dev<float> dqkv(qkv), dqo(size_t(n) * Q);
  cuda::QkvParams p{};
  if (tc.stacked) {
    p.q = dqkv.p;
    p.k = dqkv.p + Q;
    p.v = dqkv.p + Q + KV;
    p.q_out = dqo.p;
    p.ld_q = p.ld_kv = Q + 2 * KV;
  } else {
    p.q = dq.p;
    p.k = dk.p;
    p.v = dv.p;
    p.q_out = dq.p;
    p.ld_q = Q;
    p.ld_kv = KV;
  }
  if (tc.bias_norm) {
    p.bq = dbq.p;
    p.bk = dbk.p;
    p.bv = dbv.p;
    p.q_norm = dqn.p;
    p.k_norm = dkn.p;
  }
  p.cs = dcs.p;
  p.seq = dseq.p;
  p.pos = dpos.p;
  p.k_cache = tc.kv_f16 ? static_cast<void*>(kc16.p) : kc32.p;
  p.v_cache = tc.kv_f16 ? static_cast<void*>(vc16.p) : vc32.p;
  p.max_ctx = max_ctx;
  p.n_tokens = n;
  p.n_head = H;
  p.n_head_kv = KVH;
  p.hd = hd;
  p.n_rot = static_cast<int>(rp.n_rot);
  p.neox = tc.neox;
  p.kv_f16 = tc.kv_f16;
  p.eps = eps;
  cuda::qkv_rope_store(p, nullptr);
  CUDA_OK(cudaGetLastError());

  // q: f16 values on both sides; allow one f16 step where float rounding differed.
  const auto gq = tc.stacked ? dqo.get() : dq.get();
  for (size_t e = 0; e < gq.size(); ++e) {
    ASSERT_LE(std::abs(gq[e] - cq[e]), std::abs(cq[e]) * 1e-3f + 1e-6f) << "q element " << e;
  }
  const auto g16k = kc16.get(), g16v = vc16.get();
  const auto g32k = kc32.get(), g32v = vc32.get();
  for (int i = 0; i < n; ++i) {
    const size_t row = size_t((seq[i] * max_ctx + pos[i]) * KV);
    for (int d = 0; d < KV; ++d) {
      const float wk = ck[i * KV + d], wv = cv[i * KV + d];
      const float gk = tc.kv_f16 ? quant::fp16_to_f32(g16k[row + d]) : g32k[row + d];
      const float gv = tc.kv_f16 ? quant::fp16_to_f32(g16v[row + d]) : g32v[row + d];
      const float tol = tc.kv_f16 ? 1e-3f : 2e-6f;
      ASSERT_LE(std::abs(gk - wk), std::abs(wk) * tol + 1e-6f) << "k token " << i << " dim " << d;
      ASSERT_LE(std::abs(gv - wv), std::abs(wv) * tol + 1e-6f) << "v token " << i << " dim " << d;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rope, CudaQkv,
    ::testing::Values(QkvCase{false, false, false, true}, QkvCase{true, false, false, true},
                      QkvCase{false, true, true, true}, QkvCase{true, true, true, false},
                      QkvCase{true, false, true, true}, QkvCase{false, false, false, false},
                      QkvCase{false, true, true, true, true},
                      QkvCase{true, false, false, false, true}),
    [](const auto& i) {
      const QkvCase& c = i.param;
      return std::string(c.neox ? "NeoX" : "Normal") + (c.partial_rot ? "Partial" : "Full") +
             (c.bias_norm ? "BiasNorm" : "") + (c.kv_f16 ? "F16" : "F32") +
             (c.stacked ? "Stacked" : "");
    });

// ---- attention --------------------------------------------------------------------------

struct AttnCase {
  const char* name;
  int H, KVH, hd;
  int64_t max_ctx;
  std::vector<int32_t> seq, pos;  // per token
  bool kv_f16;
  bool flash = false;  // attention_flash (tensor cores) instead of the split kernel
};

class CudaAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(CudaAttention, MatchesCpu) {
  SHIMMY_REQUIRE_GPU();
  const AttnCase& tc = GetParam();
  const int n = static_cast<int>(tc.seq.size()), H = tc.H, KVH = tc.KVH, hd = tc.hd;
  const int64_t KV = int64_t(KVH) * hd, Q = int64_t(H) * hd, group = H / KVH;
  const int64_t max_seqs = *std::max_element(tc.seq.begin(), tc.seq.end()) + 1,
                max_ctx = tc.max_ctx;
  const size_t cache_n = size_t(max_seqs * max_ctx * KV);
  // Random cache contents (as f16 values when the cache is f16) and f16-rounded q.
  auto kf = random_vec(cache_n, 21, -1.5f, 1.5f), vf = random_vec(cache_n, 22);
  auto q = random_vec(n * Q, 23, -1.5f, 1.5f);
  for (auto& x : q) x = f16_round(x);
  std::vector<uint16_t> k16(cache_n), v16(cache_n);
  for (size_t e = 0; e < cache_n; ++e) {
    k16[e] = quant::f32_to_fp16(kf[e]);
    v16[e] = quant::f32_to_fp16(vf[e]);
  }

  // CPU, as model/forward.cpp Forward::attention.
  std::vector<float> want(n * Q), sc(max_ctx);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int i = 0; i < n; ++i) {
    for (int h = 0; h < H; ++h) {
      const int64_t g = h / group, n_pos = tc.pos[i] + 1,
                    base = int64_t(tc.seq[i]) * max_ctx * KV + g * hd;
      const float* qh = q.data() + i * Q + h * hd;
      float* out = want.data() + i * Q + h * hd;
      if (tc.kv_f16) {
        const auto& ak = cpu::attention_kernels();
        ak.scores_f16(qh, k16.data() + base, size_t(KV), n_pos, hd, scale, sc.data());
        cpu::softmax(sc.data(), n_pos);
        cpu::round_to_f16(sc.data(), n_pos);
        ak.mix_f16(sc.data(), v16.data() + base, size_t(KV), n_pos, hd, out);
      } else {
        for (int64_t p = 0; p < n_pos; ++p) {
          float s = 0;
          for (int d = 0; d < hd; ++d) s += qh[d] * kf[base + p * KV + d];
          sc[p] = s * scale;
        }
        cpu::softmax(sc.data(), n_pos);
        std::fill(out, out + hd, 0.0f);
        for (int64_t p = 0; p < n_pos; ++p) {
          for (int d = 0; d < hd; ++d) out[d] += sc[p] * vf[base + p * KV + d];
        }
      }
    }
  }

  Dev<float> dq(q), datt(n * Q), dk32(tc.kv_f16 ? std::vector<float>() : kf),
      dv32(tc.kv_f16 ? std::vector<float>() : vf);
  Dev<uint16_t> dk16(tc.kv_f16 ? k16 : std::vector<uint16_t>()),
      dv16(tc.kv_f16 ? v16 : std::vector<uint16_t>());
  Dev<int32_t> dseq(tc.seq), dpos(tc.pos);
  Dev<float> part(size_t(cuda::attn_partial_floats(n, max_ctx, H, KVH, hd)));
  CUDA_OK(cudaMemset(part.p, 0, part.n * sizeof(float)));  // the decode kernel's counters
  cuda::AttnParams p{};
  p.q = dq.p;
  p.k_cache = tc.kv_f16 ? static_cast<const void*>(dk16.p) : dk32.p;
  p.v_cache = tc.kv_f16 ? static_cast<const void*>(dv16.p) : dv32.p;
  p.seq = dseq.p;
  p.pos = dpos.p;
  p.att = datt.p;
  p.part = part.p;
  p.max_ctx = max_ctx;
  p.n_tokens = n;
  p.n_head = H;
  p.n_head_kv = KVH;
  p.hd = hd;
  p.kv_f16 = tc.kv_f16;
  if (tc.flash) {
    ASSERT_TRUE(cuda::flash_supported(hd, tc.kv_f16));
    cuda::attention_flash(p, nullptr);
  } else {
    cuda::attention(p, nullptr);
  }
  CUDA_OK(cudaGetLastError());
  const auto got = datt.get();
  const double d = max_abs(got, want);
  if (tc.flash) {
    std::printf("[attention] %-16s flash (tensor cores)  max |gpu - cpu| = %.3g\n", tc.name, d);
  } else if (cuda::dec_supported(hd, H / KVH) && n <= cuda::kDecTokens) {
    std::printf("[attention] %-16s one kernel, chunks of %lld  max |gpu - cpu| = %.3g\n", tc.name,
                (long long)cuda::dec_chunk(max_ctx), d);
  } else {
    std::printf("[attention] %-16s split %d x %lld  max |gpu - cpu| = %.3g\n", tc.name,
                cuda::split_plan(n, max_ctx, KVH).n_split,
                (long long)cuda::split_plan(n, max_ctx, KVH).chunk, d);
  }
  if (!tc.flash && cuda::dec_supported(hd, H / KVH)) {
    // The one-kernel path on the whole batch (several launches beyond kDecTokens tokens):
    // against the CPU, and batch invariance: every token alone (n = 1, its own q row) gives
    // the same bits as inside the batch. Twice for the first token: the counters are left
    // at zero.
    Dev<float> datt2(n * Q);
    cuda::AttnParams p2 = p;
    p2.att = datt2.p;
    cuda::attention_decode(p2, nullptr);
    CUDA_OK(cudaGetLastError());
    const auto got2 = datt2.get();
    const double d2 = max_abs(got2, want);
    std::printf("[attention] %-16s one kernel on all %d tokens  max |gpu - cpu| = %.3g\n", tc.name,
                n, d2);
    EXPECT_LE(d2, tc.kv_f16 ? 2e-3 : 1e-5);
    if (n <= cuda::kDecTokens) {
      EXPECT_EQ(std::memcmp(got.data(), got2.data(), got.size() * sizeof(float)), 0);
    }
    for (int i = -1; i < n; ++i) {
      const int r = i < 0 ? 0 : i;
      Dev<float> q1(std::vector<float>(q.begin() + r * Q, q.begin() + (r + 1) * Q)), att1(Q);
      Dev<int32_t> s1(std::vector<int32_t>{tc.seq[r]}), p1(std::vector<int32_t>{tc.pos[r]});
      cuda::AttnParams p1p = p;
      p1p.q = q1.p;
      p1p.seq = s1.p;
      p1p.pos = p1.p;
      p1p.att = att1.p;
      p1p.n_tokens = 1;
      cuda::attention(p1p, nullptr);
      CUDA_OK(cudaGetLastError());
      const auto one = att1.get();
      ASSERT_EQ(std::memcmp(one.data(), got2.data() + r * Q, Q * sizeof(float)), 0)
          << "token " << r << " alone differs from the same token in the batch of " << n;
    }
  }
  // Probabilities are rounded to f16 before the mix on both sides, but at different points
  // (normalised on the CPU, per tile on the GPU): a few f16 steps of V's scale.
  EXPECT_LE(d, tc.kv_f16 ? 2e-3 : 1e-5);
}

std::vector<int32_t> iota_pos(int n, int from = 0) {
  std::vector<int32_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = from + i;
  return v;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttention,
    ::testing::Values(
        // prompt: 200 tokens of one sequence, positions 0..199, GQA 8/2
        AttnCase{"PromptGqa", 8, 2, 64, 256, std::vector<int32_t>(200, 0), iota_pos(200), true},
        AttnCase{"PromptF32", 8, 2, 64, 256, std::vector<int32_t>(200, 0), iota_pos(200), false},
        // decode: one token per slot at long and short positions (split-K), GQA 8/2
        AttnCase{"DecodeGqa", 8, 2, 64, 5000, {0, 1, 2}, {4999, 77, 1000}, true},
        AttnCase{"DecodeF32", 8, 2, 64, 5000, {0, 1, 2}, {4999, 77, 1000}, false},
        // tiny heads (stories260K: 8 heads of 8 dims), hd = 128 with group 7 (Qwen-like)
        AttnCase{"TinyHeads", 8, 8, 8, 300, {0, 0, 1, 0}, {0, 1, 250, 299}, true},
        AttnCase{"Group7Hd128", 14, 2, 128, 3000, {0, 1}, {2999, 130}, true},
        // TinyLlama (32/4 x 64) and Llama-7B (32/32 x 128) decode; f32 cache with hd 128
        AttnCase{"TinyLlamaDecode", 32, 4, 64, 2048, {0, 1, 2, 3}, {0, 127, 128, 2047}, true},
        AttnCase{"MhaHd128", 32, 32, 128, 1500, {0, 1}, {1100, 5}, true},
        AttnCase{"F32Hd128", 8, 2, 128, 700, {0, 1, 0}, {699, 31, 640}, false},
        // a context longer than 64 chunks of 128 (chunks of 640: several tiles a warp)
        AttnCase{"LongCtx", 16, 2, 64, 40000, {0, 1, 2}, {39999, 20000, 641}, true},
        // a mixed batch of 37 tokens over 5 slots (three launches of 16), group 16
        AttnCase{
            "MixedBatch",
            16,
            1,
            64,
            1200,
            {0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3,
             4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1},
            {0, 5, 100, 1000, 1199, 1, 6,  101, 1001, 33, 2, 7,  102, 1002, 34, 3, 8, 103, 1003, 35,
             4, 9, 104, 1004, 36,   5, 10, 105, 1005, 37, 6, 11, 106, 1006, 38, 7, 12},
            true},
        // flash (prompt) kernel: a fresh prompt, a prompt continuing a cached prefix in slot 1
        // with a partial last tile, and small heads
        AttnCase{"FlashPrompt", 8, 2, 64, 256, std::vector<int32_t>(200, 0), iota_pos(200), true,
                 true},
        AttnCase{"FlashOffsetHd128", 14, 2, 128, 300, std::vector<int32_t>(77, 1),
                 iota_pos(77, 100), true, true},
        AttnCase{"FlashHd16", 4, 4, 16, 100, std::vector<int32_t>(70, 0), iota_pos(70, 20), true,
                 true}),
    [](const auto& i) { return std::string(i.param.name); });

// ---- SwiGLU -------------------------------------------------------------------------------

TEST(CudaOps, SwiGlu) {
  SHIMMY_REQUIRE_GPU();
  const int64_t n = 100003;
  auto g = random_vec(n, 31, -8, 8), u = random_vec(n, 32, -2, 2);
  std::vector<float> want(n);
  cpu::swiglu(g.data(), u.data(), want.data(), n);
  Dev<float> dg(g), du(u);
  cuda::swiglu(dg.p, du.p, n, nullptr);
  CUDA_OK(cudaGetLastError());
  EXPECT_LE(max_rel(du.get(), want, 1e-6), 1e-6);
}

// The stacked gate/up product: rows of [gate | up], out [rows, f].
TEST(CudaOps, SwiGluRows) {
  SHIMMY_REQUIRE_GPU();
  const int64_t rows = 7, f = 5632;
  auto gu = random_vec(rows * 2 * f, 33, -8, 8);
  std::vector<float> want(rows * f);
  for (int64_t r = 0; r < rows; ++r)
    cpu::swiglu(gu.data() + r * 2 * f, gu.data() + r * 2 * f + f, want.data() + r * f, f);
  Dev<float> dgu(gu), dout(rows * f);
  cuda::swiglu_rows(dgu.p, dgu.p + f, 2 * f, dout.p, rows, f, nullptr);
  CUDA_OK(cudaGetLastError());
  EXPECT_LE(max_rel(dout.get(), want, 1e-6), 1e-6);
}

// The same from one gate/up product interleaved by 8 (swiglu_rows8).
TEST(CudaOps, SwiGluRows8) {
  SHIMMY_REQUIRE_GPU();
  const int64_t rows = 5, f = 5632, ld = 2 * f + 16;
  auto gu = random_vec(rows * ld, 34, -8, 8);
  std::vector<float> g(f), u(f), want(rows * f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < f; ++j) {
      g[j] = gu[r * ld + (j / 8) * 16 + j % 8];
      u[j] = gu[r * ld + (j / 8) * 16 + j % 8 + 8];
    }
    cpu::swiglu(g.data(), u.data(), want.data() + r * f, f);
  }
  Dev<float> dgu(gu), dout(rows * f);
  cuda::swiglu_rows8(dgu.p, ld, dout.p, rows, f, nullptr);
  CUDA_OK(cudaGetLastError());
  EXPECT_LE(max_rel(dout.get(), want, 1e-6), 1e-6);
}

// ---- weight matmuls (mm/matmul.h contract) ------------------------------------------------

class CudaMatmul : public ::testing::TestWithParam<gguf::TensorType> {};

TEST_P(CudaMatmul, MatchesDequantizedProduct) {
  SHIMMY_REQUIRE_GPU();
  const gguf::TensorType t = GetParam();
  const uint32_t tid = static_cast<uint32_t>(t);
  ASSERT_TRUE(cuda::type_supported(tid));
  const int64_t rows = 77, cols = 512;
  const size_t rb = *gguf::row_bytes(t, cols);
  std::vector<uint8_t> w(rows * rb);
  std::vector<float> wf(rows * cols);
  auto src = random_vec(rows * cols, 41);
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_TRUE(quant::quantize_row(t, src.data() + r * cols, w.data() + r * rb, cols).ok());
    ASSERT_TRUE(quant::dequantize_row(t, w.data() + r * rb, wf.data() + r * cols, cols).ok());
  }
  Dev<uint8_t> dw(cuda::weight_device_bytes(tid, rows, cols));
  cuda::DeviceWeight dwt;
  CUDA_OK(cuda::upload_weight(w.data(), tid, rows, cols, rb, dw.p, &dwt, nullptr));
  for (int64_t m : {1, 3, 40}) {
    SCOPED_TRACE(m);
    auto x = random_vec(m * cols, 42 + uint32_t(m));
    const int64_t ldy = rows + 3;
    Dev<float> dx(x), dy(m * ldy);
    Dev<uint8_t> ws(std::max<size_t>(1, cuda::matmul_workspace_bytes(dwt, m)));
    cuda::matmul(dwt, dx.p, m, dy.p, ldy, ws.p, nullptr);
    CUDA_OK(cudaGetLastError());
    const auto y = dy.get();
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t r = 0; r < rows; ++r) {
        double ref = 0, mag = 0;
        for (int64_t c = 0; c < cols; ++c) {
          ref += double(wf[r * cols + c]) * x[i * cols + c];
          mag += std::abs(double(wf[r * cols + c]) * x[i * cols + c]);
        }
        ASSERT_NEAR(y[i * ldy + r], ref, 2e-3 * mag + 1e-5) << "row " << r << " of act " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Types, CudaMatmul,
    ::testing::Values(gguf::TensorType::F32, gguf::TensorType::F16, gguf::TensorType::BF16,
                      gguf::TensorType::Q8_0, gguf::TensorType::Q4_0, gguf::TensorType::Q4_1,
                      gguf::TensorType::Q5_0, gguf::TensorType::Q5_1, gguf::TensorType::IQ4_NL,
                      gguf::TensorType::Q2_K, gguf::TensorType::Q3_K, gguf::TensorType::Q4_K,
                      gguf::TensorType::Q5_K, gguf::TensorType::Q6_K),
    [](const auto& i) { return gguf::type_name(static_cast<uint32_t>(i.param)); });

// The gate/up product with SwiGLU in its epilogue (matmul_swiglu, decode): the same bits as
// the product of the interleaved weight followed by swiglu_rows8, for every m <= 16, with
// one warp a tile (cols 128) and several (the others).
struct GluCase {
  gguf::TensorType t;
  int64_t f, cols;
};

class CudaMatmulSwiglu : public ::testing::TestWithParam<GluCase> {};

TEST_P(CudaMatmulSwiglu, SameBitsAsProductThenSwiglu) {
  SHIMMY_REQUIRE_GPU();
  const GluCase p = GetParam();
  const uint32_t tid = static_cast<uint32_t>(p.t);
  const int64_t f = p.f, cols = p.cols, rows = 2 * f;
  const size_t rb = *gguf::row_bytes(p.t, cols);
  std::vector<uint8_t> w(rows * rb), inter(rows * rb);  // [gate; up], then interleaved
  auto src = random_vec(rows * cols, 43);
  for (int64_t r = 0; r < rows; ++r)
    ASSERT_TRUE(quant::quantize_row(p.t, src.data() + r * cols, w.data() + r * rb, cols).ok());
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(inter.data() + r * rb, w.data() + cuda::interleave_src_row(r, f) * rb, rb);
  Dev<uint8_t> dw(cuda::weight_device_bytes(tid, rows, cols));
  cuda::DeviceWeight dwt;
  CUDA_OK(cuda::upload_weight(inter.data(), tid, rows, cols, rb, dw.p, &dwt, nullptr));
  {  // The plugin's upload: the rows taken from [gate; up] in that order, through page-locked
     // staging of a few rows (several chunks): the same device bytes.
    Dev<uint8_t> dw2(cuda::weight_device_bytes(tid, rows, cols));
    cuda::DeviceWeight dwt2;
    cuda::UploadStaging staging;
    CUDA_OK(staging.init(3 * dwt.row_bytes + 5));
    ASSERT_TRUE(staging.ok());
    CUDA_OK(cuda::upload_weight(cuda::HostRows{w.data(), w.data() + f * rb, rb, f}, tid, rows, cols,
                                dw2.p, &dwt2, nullptr, &staging));
    CUDA_OK(cudaStreamSynchronize(nullptr));
    ASSERT_EQ(dwt2.row_bytes, dwt.row_bytes);
    EXPECT_TRUE(dw2.get() == dw.get()) << "interleaved upload through staging differs";
  }
  for (int64_t m : {1, 2, 7, 9, 16}) {
    SCOPED_TRACE(m);
    auto x = random_vec(m * cols, 44 + uint32_t(m));
    Dev<float> dx(x), dgu(m * rows), dwant(m * f), dgot(m * (f + 5));
    cuda::matmul(dwt, dx.p, m, dgu.p, rows, nullptr, nullptr);
    cuda::swiglu_rows8(dgu.p, rows, dwant.p, m, f, nullptr);
    ASSERT_TRUE(cuda::matmul_swiglu(dwt, dx.p, m, dgot.p, f + 5, nullptr));
    CUDA_OK(cudaGetLastError());
    const auto want = dwant.get(), got = dgot.get();
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < f; ++j)
        ASSERT_EQ(std::memcmp(&got[i * (f + 5) + j], &want[i * f + j], 4), 0)
            << "value " << j << " of row " << i << ": " << got[i * (f + 5) + j] << " vs "
            << want[i * f + j];
  }
  EXPECT_FALSE(cuda::matmul_swiglu(dwt, nullptr, 17, nullptr, f, nullptr));  // prompt sizes: no
}

INSTANTIATE_TEST_SUITE_P(Types, CudaMatmulSwiglu,
                         ::testing::Values(GluCase{gguf::TensorType::F16, 5632, 2048},
                                           GluCase{gguf::TensorType::Q8_0, 5632, 2048},
                                           GluCase{gguf::TensorType::Q4_0, 5632, 2048},
                                           GluCase{gguf::TensorType::Q4_K, 5632, 2048},
                                           GluCase{gguf::TensorType::Q4_0, 40, 128},
                                           GluCase{gguf::TensorType::Q8_0, 24, 128},
                                           GluCase{gguf::TensorType::Q4_K, 48, 256},
                                           GluCase{gguf::TensorType::Q6_K, 88, 512}),
                         [](const auto& i) {
                           return std::string(gguf::type_name(static_cast<uint32_t>(i.param.t))) +
                                  "_" + std::to_string(i.param.f) + "x" +
                                  std::to_string(i.param.cols);
                         });

// ---- the upload repack (mm/repack.h; no GPU needed) ---------------------------------------

// repack_row writes a group's fields a word at a time; repack_row_reference one value at a
// time. Any bytes are valid blocks (the repack only moves bits), so random rows cover every
// field value.
TEST(Repack, GroupPackersWriteTheReferenceBytes) {
  const gguf::TensorType types[] = {
      gguf::TensorType::F16,  gguf::TensorType::BF16,   gguf::TensorType::Q8_0,
      gguf::TensorType::Q4_0, gguf::TensorType::Q4_1,   gguf::TensorType::Q5_0,
      gguf::TensorType::Q5_1, gguf::TensorType::IQ4_NL, gguf::TensorType::Q2_K,
      gguf::TensorType::Q3_K, gguf::TensorType::Q4_K,   gguf::TensorType::Q5_K,
      gguf::TensorType::Q6_K, gguf::TensorType::F32};
  std::mt19937 rng(51);
  for (gguf::TensorType t : types) {
    const uint32_t tid = static_cast<uint32_t>(t);
    const bool k = gguf::type_traits(tid)->block_size == 256;
    for (int64_t cols : {k ? int64_t(256) : int64_t(96), k ? int64_t(768) : int64_t(800),
                         k ? int64_t(4352) : int64_t(4384)}) {
      SCOPED_TRACE(std::string(gguf::type_name(tid)) + " cols " + std::to_string(cols));
      const size_t rb = *gguf::row_bytes(t, uint64_t(cols));
      const size_t db = cuda::weight_device_bytes(tid, 1, cols);
      ASSERT_GT(db, 0u);
      std::vector<uint8_t> src(rb), got(db, 0), want(db, 0);
      for (int row = 0; row < 8; ++row) {
        for (auto& b : src) b = uint8_t(rng());
        std::fill(got.begin(), got.end(), 0);
        std::fill(want.begin(), want.end(), 0);
        ASSERT_TRUE(cuda::mm::repack_row(tid, src.data(), got.data(), cols));
        ASSERT_TRUE(cuda::mm::repack_row_reference(tid, src.data(), want.data(), cols));
        ASSERT_TRUE(got == want) << "row " << row;
      }
    }
  }
  EXPECT_FALSE(
      cuda::mm::repack_row(static_cast<uint32_t>(gguf::TensorType::Q8_K), nullptr, nullptr, 256));
}

// ---- results back to the caller (host_copy.h; no GPU needed) -------------------------------

TEST(HostCopy, CopiesEveryValueSmallAndBig) {
  cuda::HostCopy hc;
  for (size_t n : {size_t(0), size_t(5), size_t(32000), size_t(16 * 32000 + 7), size_t(1) << 20}) {
    SCOPED_TRACE(n);
    std::vector<float> src(n), dst(n + 1, -1.f);
    for (size_t i = 0; i < n; ++i) src[i] = float(i) * 0.5f;
    for (int rep = 0; rep < 3; ++rep) {  // the workers serve one copy after another
      std::fill(dst.begin(), dst.end(), -1.f);
      hc.copy(dst.data(), src.data(), n);
      ASSERT_TRUE(std::equal(src.begin(), src.end(), dst.begin()));
      ASSERT_EQ(dst[n], -1.f) << "wrote past the end";
    }
  }
}

// ---- the decode attention right after the rope kernel (programmatic dependent launch) ----

// A one-token decode attention loads the older cache rows before it waits for the rope
// kernel and its own row after: it must see the row that kernel writes. The rows from the
// token's position on start as NaN, so a stale read shows; the reference runs the same two
// kernels with a synchronization between them.
TEST(CudaOps, DecodeAttentionSeesTheRowTheRopeKernelWrote) {
  SHIMMY_REQUIRE_GPU();
  const int H = 32, KVH = 4, hd = 64, n_rot = 64;
  const int64_t max_ctx = 256, Q = H * hd, KV = KVH * hd;
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  const auto qkv = random_vec(size_t(Q + 2 * KV), 61);
  std::vector<float> cs(static_cast<size_t>(n_rot));
  for (int j = 0; j < n_rot / 2; ++j) {
    cs[2 * j] = std::cos(0.1f * float(j + 1));
    cs[2 * j + 1] = std::sin(0.1f * float(j + 1));
  }
  const auto rows = random_vec(size_t(max_ctx * KV), 62, -2, 2);
  std::vector<uint16_t> k16(rows.size()), v16(rows.size());
  for (size_t e = 0; e < rows.size(); ++e) {
    k16[e] = quant::f32_to_fp16(rows[e]);
    v16[e] = quant::f32_to_fp16(rows[rows.size() - 1 - e]);
  }
  Dev<float> dqkv(qkv), dcs(cs), dq{size_t(Q)}, datt{size_t(Q)};
  Dev<int32_t> dseq(std::vector<int32_t>{0});
  Dev<float> part{size_t(cuda::attn_partial_floats(1, max_ctx, H, KVH, hd))};
  CUDA_OK(cudaMemset(part.p, 0, part.n * sizeof(float)));
  for (int pos : {0, 5, 31, 32, 100, 127, 128, 200, 255}) {
    SCOPED_TRACE(pos);
    Dev<int32_t> dpos(std::vector<int32_t>{pos});
    Dev<uint16_t> kc{size_t(max_ctx * KV)}, vc{size_t(max_ctx * KV)};  // NaN-poisoned
    cuda::QkvParams qp{};
    qp.q = dqkv.p;
    qp.k = dqkv.p + Q;
    qp.v = dqkv.p + Q + KV;
    qp.q_out = dq.p;
    qp.ld_q = qp.ld_kv = Q + 2 * KV;
    qp.cs = dcs.p;
    qp.seq = dseq.p;
    qp.pos = dpos.p;
    qp.k_cache = kc.p;
    qp.v_cache = vc.p;
    qp.max_ctx = max_ctx;
    qp.n_tokens = 1;
    qp.n_head = H;
    qp.n_head_kv = KVH;
    qp.hd = hd;
    qp.n_rot = n_rot;
    qp.kv_f16 = true;
    qp.eps = 1e-5f;
    cuda::AttnParams ap{};
    ap.q = dq.p;
    ap.k_cache = kc.p;
    ap.v_cache = vc.p;
    ap.seq = dseq.p;
    ap.pos = dpos.p;
    ap.att = datt.p;
    ap.part = part.p;
    ap.max_ctx = max_ctx;
    ap.n_tokens = 1;
    ap.n_head = H;
    ap.n_head_kv = KVH;
    ap.hd = hd;
    ap.kv_f16 = true;
    auto reset = [&] {  // rows before pos from earlier steps, the rest NaN
      CUDA_OK(cudaMemset(kc.p, 0xff, kc.n * 2));
      CUDA_OK(cudaMemset(vc.p, 0xff, vc.n * 2));
      CUDA_OK(cudaMemcpy(kc.p, k16.data(), size_t(pos * KV) * 2, cudaMemcpyHostToDevice));
      CUDA_OK(cudaMemcpy(vc.p, v16.data(), size_t(pos * KV) * 2, cudaMemcpyHostToDevice));
    };
    reset();
    cuda::qkv_rope_store(qp, s);
    CUDA_OK(cudaStreamSynchronize(s));
    cuda::attention(ap, s);
    CUDA_OK(cudaStreamSynchronize(s));
    const auto want = datt.get();
    for (float v : want) ASSERT_TRUE(std::isfinite(v)) << "reference run read a NaN row";
    for (int rep = 0; rep < 5; ++rep) {
      reset();
      cuda::qkv_rope_store(qp, s);
      cuda::attention(ap, s);  // may start while the rope kernel runs
      CUDA_OK(cudaStreamSynchronize(s));
      CUDA_OK(cudaGetLastError());
      const auto got = datt.get();
      ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0)
          << "repeat " << rep << ": the attention read a row before the rope kernel wrote it";
    }
  }
  CUDA_OK(cudaStreamDestroy(s));
}
