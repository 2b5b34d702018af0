// Conformance against llama.cpp's logits (../shared/reference), exactly as
// ../shared/README.md prescribes: per model, over all positions of all prompts, the mean
// and p99 of |Δ log-probability| of the 10 reference tokens stay under thresholds.json;
// top-1 agrees at >= top1_agreement_min of positions with margin > 0.05 and at every
// position with margin > 1.0; greedy continuation matches up to the first step whose
// reference margin is below 1.0. Prompts are tokenized by us and must equal the reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/thread_pool.h"
#include "model/forward.h"
#include "support/paths.h"
#include "tokenizer/tokenizer.h"

using namespace shimmy;
using nlohmann::json;

namespace {

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

double lse_of(const float* row, int64_t n) {
  float mx = *std::max_element(row, row + n);
  double s = 0;
  for (int64_t v = 0; v < n; ++v) s += std::exp(static_cast<double>(row[v]) - mx);
  return mx + std::log(s);
}

int32_t argmax(const float* row, int64_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

class Conformance : public ::testing::TestWithParam<std::string> {};

TEST_P(Conformance, MatchesReference) {
  const std::string name = GetParam();
  const json ref = read_json(test::shared_dir() + "/reference/" + name + ".json");
  const json thr = read_json(test::shared_dir() + "/reference/thresholds.json")[name];
  auto m = model::load_model(test::model_path(name + ".gguf"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto tok = tokenizer::Tokenizer::from_gguf((*m)->file);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const model::Config& c = (*m)->cfg;
  ASSERT_EQ(c.n_vocab, ref["n_vocab"].get<int64_t>());
  const int64_t ctx = std::min<int64_t>(2048, c.n_ctx_train);
  engine::ThreadPool pool(2);

  std::vector<double> diffs;
  int64_t top1_considered = 0, top1_agree = 0;
  for (const auto& cs : ref["cases"]) {
    const std::string prompt = cs["prompt"];
    SCOPED_TRACE(prompt.substr(0, 40));
    const auto ref_tokens = cs["tokens"].get<std::vector<int32_t>>();
    auto ours = (*tok)->encode(prompt, /*add_special=*/true, /*parse_special=*/false);
    if (ours.size() > ref_tokens.size()) ours.resize(ref_tokens.size());  // cut to fit
    EXPECT_EQ(ours, ref_tokens) << "tokenization differs";

    const int64_t n = static_cast<int64_t>(ref_tokens.size());
    model::KvCache cache(c, ctx);
    model::Forward fwd(**m, n, ctx, pool);
    std::vector<model::BatchToken> batch(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      batch[i] = {ref_tokens[i], static_cast<int32_t>(i), &cache, true};
    std::vector<float> logits(static_cast<size_t>(n * c.n_vocab));
    ASSERT_TRUE(fwd.eval(batch, logits.data()).ok());

    const auto& pos = cs["positions"];
    ASSERT_EQ(static_cast<int64_t>(pos.size()), n);
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * c.n_vocab;
      const double our_lse = lse_of(row, c.n_vocab);
      const double ref_lse = pos[i]["lse"];
      const auto& top = pos[i]["top"];
      for (const auto& e : top) {
        const int32_t id = e[0];
        const double ref_lp = e[1].get<double>() - ref_lse;
        const double our_lp = row[id] - our_lse;
        diffs.push_back(std::abs(our_lp - ref_lp));
      }
      const double margin = top[0][1].get<double>() - top[1][1].get<double>();
      const bool agree = argmax(row, c.n_vocab) == top[0][0].get<int32_t>();
      if (margin > 0.05) {
        ++top1_considered;
        top1_agree += agree;
      }
      if (margin > 1.0)
        EXPECT_TRUE(agree) << "top-1 differs at position " << i << " (margin " << margin << ")";
    }

    // Greedy continuation, one token per step on the same cache.
    int32_t next = argmax(logits.data() + (n - 1) * c.n_vocab, c.n_vocab);
    std::vector<float> step(static_cast<size_t>(c.n_vocab));
    int64_t p = n;
    for (const auto& g : cs["greedy"]) {
      const int32_t want = g[0];
      const double margin = g[1];
      if (margin < 1.0) break;
      ASSERT_EQ(next, want) << "greedy step " << (p - n);
      if (p >= ctx) break;
      model::BatchToken bt{next, static_cast<int32_t>(p), &cache, true};
      ASSERT_TRUE(fwd.eval(std::span<const model::BatchToken>(&bt, 1), step.data()).ok());
      next = argmax(step.data(), c.n_vocab);
      ++p;
    }
  }
  std::sort(diffs.begin(), diffs.end());
  double mean = 0;
  for (double d : diffs) mean += d;
  mean /= static_cast<double>(diffs.size());
  const double p99 = diffs[static_cast<size_t>(0.99 * static_cast<double>(diffs.size() - 1))];
  const double agree = top1_considered ? static_cast<double>(top1_agree) / top1_considered : 1.0;
  std::printf(
      "[conformance] %-20s mean %.5f (max %.4f)  p99 %.5f (max %.4f)  top1 %.4f (min %.4f)\n",
      name.c_str(), mean, thr["mean_abs_dlogprob_max"].get<double>(), p99,
      thr["p99_abs_dlogprob_max"].get<double>(), agree, thr["top1_agreement_min"].get<double>());
  EXPECT_LE(mean, thr["mean_abs_dlogprob_max"].get<double>());
  EXPECT_LE(p99, thr["p99_abs_dlogprob_max"].get<double>());
  EXPECT_GE(agree, thr["top1_agreement_min"].get<double>());
}

std::vector<std::string> models() {
  std::vector<std::string> out;
  for (const auto& p : test::list_files(test::shared_dir() + "/models", ".gguf")) {
    std::string base = p.substr(p.rfind('/') + 1);
    out.push_back(base.substr(0, base.size() - 5));
  }
  return out;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& i) {
  std::string s = i.param;
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(Models, Conformance, ::testing::ValuesIn(models()), test_name);

}  // namespace
