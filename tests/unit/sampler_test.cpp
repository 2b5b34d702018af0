// Sampler chain (bias, penalties, top-k/p, min-p, temperature, seeded draws) and the
// stop-string filter over streamed text.
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

using shimmy::engine::Sampler;
using shimmy::engine::SamplerParams;
using shimmy::engine::StopStrings;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// A smooth, fairly flat distribution over 100 tokens with its peak at id 37.
std::vector<float> flat_logits(int n = 100, int peak = 37) {
  std::vector<float> l(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) l[static_cast<size_t>(i)] = -0.02f * std::abs(i - peak);
  return l;
}

SamplerParams plain(float temperature, uint64_t seed = 1) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

std::vector<int32_t> draws(Sampler& s, const std::vector<float>& l, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.sample(l.data()));
  return out;
}

}  // namespace

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler s(plain(0.0f), 5);
  const std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(s.sample(l.data()), 1);
  const std::vector<float> l2 = {0.1f, 2.0f, -1.0f, 2.5f, 1.9f};
  EXPECT_EQ(s.sample(l2.data()), 3);
}

// The fast argmax is the first maximal index, for every length mod 8, with ties, -inf
// and NaN entries.
TEST(Sampler, ArgmaxIsFirstMaximum) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> small(-3, 3);  // few distinct values: many ties
  std::vector<int> lengths;
  for (int n = 1; n <= 140; ++n) lengths.push_back(n);
  for (int n : {191, 192, 193, 1000, 32000, 32001}) lengths.push_back(n);
  for (int n : lengths) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> l(static_cast<size_t>(n));
      for (float& v : l) v = static_cast<float>(small(rng));
      if (trial % 4 == 1) l[static_cast<size_t>(rng() % n)] = -kInf;
      if (trial % 4 == 2) l[static_cast<size_t>(rng() % n)] = std::nanf("");
      if (trial % 4 == 3) {  // mostly NaN and -inf, one late maximum or none
        for (float& v : l) v = rng() % 2 ? std::nanf("") : -kInf;
        if (trial % 8 == 3) l[static_cast<size_t>(rng() % n)] = 1.0f;
      }
      int32_t want = -1;
      for (int i = 0; i < n; ++i) {
        const float v = l[static_cast<size_t>(i)];
        if (!std::isnan(v) && (want < 0 || v > l[static_cast<size_t>(want)])) want = i;
      }
      ASSERT_EQ(shimmy::engine::argmax(l.data(), n), std::max(want, 0)) << "n=" << n;
    }
  }
  const std::vector<float> banned(10, -kInf);
  EXPECT_EQ(shimmy::engine::argmax(banned.data(), 10), 0);
  std::vector<float> nan_then_inf(200, std::nanf(""));
  EXPECT_EQ(shimmy::engine::argmax(nan_then_inf.data(), 200), 0);
  nan_then_inf[150] = -kInf;
  EXPECT_EQ(shimmy::engine::argmax(nan_then_inf.data(), 200), 150);
}

TEST(Sampler, NegativeInfinityBiasBans) {
  auto p = plain(0.0f);
  p.logit_bias = {{1, -kInf}};
  Sampler greedy(p, 5);
  const std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.0f, 1.9f};
  EXPECT_EQ(greedy.sample(l.data()), 4);

  auto q = plain(1.5f, 7);
  q.logit_bias = {{37, -kInf}, {36, -kInf}};
  Sampler s(q, 100);
  for (int32_t id : draws(s, flat_logits(), 500)) {
    EXPECT_NE(id, 37);
    EXPECT_NE(id, 36);
  }
}

TEST(Sampler, PositiveBiasPromotes) {
  auto p = plain(0.0f);
  p.logit_bias = {{2, 5.0f}};
  Sampler s(p, 5);
  const std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.0f, 1.9f};
  EXPECT_EQ(s.sample(l.data()), 2);
}

TEST(Sampler, SameSeedSameSequence) {
  const auto l = flat_logits();
  Sampler a(plain(1.0f, 42), 100), b(plain(1.0f, 42), 100);
  const auto da = draws(a, l, 100), db = draws(b, l, 100);
  EXPECT_EQ(da, db);
  // Not degenerate: a flat distribution gives many distinct tokens.
  std::set<int32_t> distinct(da.begin(), da.end());
  EXPECT_GT(distinct.size(), 20u);
  // reset() restarts the stream.
  a.reset();
  EXPECT_EQ(draws(a, l, 100), da);
}

TEST(Sampler, DifferentSeedsDiffer) {
  const auto l = flat_logits();
  Sampler a(plain(1.0f, 1), 100), b(plain(1.0f, 2), 100);
  EXPECT_NE(draws(a, l, 100), draws(b, l, 100));
}

TEST(Sampler, RandomSeedIsReported) {
  SamplerParams p = plain(1.0f);
  p.seed.reset();
  Sampler a(p, 100);
  auto q = plain(1.0f, a.seed());
  Sampler b(q, 100);
  const auto l = flat_logits();
  EXPECT_EQ(draws(a, l, 50), draws(b, l, 50));
}

TEST(Sampler, TopKOneIsGreedy) {
  auto p = plain(2.0f, 3);
  p.top_k = 1;
  Sampler s(p, 100);
  for (int32_t id : draws(s, flat_logits(), 100)) EXPECT_EQ(id, 37);
}

TEST(Sampler, TopKLimitsToKBest) {
  auto p = plain(5.0f, 3);
  p.top_k = 3;
  Sampler s(p, 100);
  for (int32_t id : draws(s, flat_logits(), 300)) EXPECT_TRUE(id >= 36 && id <= 38) << id;
}

TEST(Sampler, TinyTopPIsGreedy) {
  auto p = plain(2.0f, 3);
  p.top_p = 1e-6f;
  Sampler s(p, 100);
  for (int32_t id : draws(s, flat_logits(), 100)) EXPECT_EQ(id, 37);
}

TEST(Sampler, TopPKeepsTheMassPrefix) {
  // Probabilities 0.5, 0.3, 0.15, 0.05: p = 0.75 keeps the first two (0.5 + 0.3 >= 0.75).
  const std::vector<float> l = {std::log(0.05f), std::log(0.5f), std::log(0.15f), std::log(0.3f)};
  auto p = plain(1.0f, 9);
  p.top_p = 0.75f;
  Sampler s(p, 4);
  bool saw1 = false, saw3 = false;
  for (int32_t id : draws(s, l, 400)) {
    EXPECT_TRUE(id == 1 || id == 3) << id;
    saw1 |= id == 1;
    saw3 |= id == 3;
  }
  EXPECT_TRUE(saw1 && saw3);
}

TEST(Sampler, MinPFilters) {
  // Probabilities ∝ 1, 0.5, 0.2, 0.05: min_p 0.3 keeps ids with p >= 0.3 * p_max.
  const std::vector<float> l = {0.0f, std::log(0.5f), std::log(0.2f), std::log(0.05f)};
  auto p = plain(1.0f, 11);
  p.min_p = 0.3f;
  Sampler s(p, 4);
  bool saw0 = false, saw1 = false;
  for (int32_t id : draws(s, l, 400)) {
    EXPECT_TRUE(id == 0 || id == 1) << id;
    saw0 |= id == 0;
    saw1 |= id == 1;
  }
  EXPECT_TRUE(saw0 && saw1);
}

TEST(Sampler, RepeatPenaltyDividesPositiveMultipliesNegative) {
  auto p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  Sampler s(p, 3);
  // 0: 3.0 → 1.5 once seen, below 1: 2.0; then 1 seen too → 1.0, and 2 (-0.1) wins
  // only if it is not penalised (-0.1 * 2 = -0.2 would lose to 1.0 anyway).
  const std::vector<float> l = {3.0f, 2.0f, -0.1f};
  EXPECT_EQ(s.sample(l.data()), 0);
  s.accept(0);
  EXPECT_EQ(s.sample(l.data()), 1);
  s.accept(1);
  EXPECT_EQ(s.sample(l.data()), 0);  // 1.5 vs 1.0

  // Negative logits get more negative: id 1 (-1 → -2) falls behind id 2 (-1.5).
  Sampler t(p, 3);
  const std::vector<float> n = {-5.0f, -1.0f, -1.5f};
  EXPECT_EQ(t.sample(n.data()), 1);
  t.accept(1);
  EXPECT_EQ(t.sample(n.data()), 2);
}

TEST(Sampler, FrequencyAndPresencePenalties) {
  auto p = plain(0.0f);
  p.frequency_penalty = 0.5f;
  Sampler s(p, 3);
  const std::vector<float> l = {2.0f, 1.2f, 0.0f};
  s.accept(0);
  EXPECT_EQ(s.sample(l.data()), 0);  // 2.0 - 0.5 = 1.5 > 1.2
  s.accept(0);
  EXPECT_EQ(s.sample(l.data()), 1);  // 2.0 - 1.0 = 1.0 < 1.2

  auto q = plain(0.0f);
  q.presence_penalty = 0.5f;
  Sampler t(q, 3);
  for (int i = 0; i < 5; ++i) t.accept(1);
  const std::vector<float> m = {1.0f, 1.4f, 0.0f};
  EXPECT_EQ(t.sample(m.data()), 0);  // 1.4 - 0.5 (once, whatever the count) = 0.9
}

TEST(Sampler, PenaltyWindowForgetsOldTokens) {
  auto p = plain(0.0f);
  p.repeat_penalty = 10.0f;
  p.penalty_last_n = 2;
  Sampler s(p, 4);
  const std::vector<float> l = {3.0f, 1.0f, 0.5f, 0.4f};
  s.accept(0);
  EXPECT_NE(s.sample(l.data()), 0);
  s.accept(2);
  s.accept(3);  // 0 has left the two-token window
  EXPECT_EQ(s.sample(l.data()), 0);
}

TEST(Sampler, LowTemperatureApproachesGreedy) {
  const auto l = flat_logits();
  Sampler s(plain(1e-4f, 5), 100);
  for (int32_t id : draws(s, l, 200)) EXPECT_EQ(id, 37);
  // And a high temperature spreads out.
  Sampler hot(plain(1.0f, 5), 100);
  int off_peak = 0;
  for (int32_t id : draws(hot, l, 200)) off_peak += id != 37;
  EXPECT_GT(off_peak, 150);
}

TEST(Sampler, DefaultChainStaysNearThePeak) {
  SamplerParams p;  // llama.cpp defaults: top-k 40, top-p 0.95, min-p 0.05, T 0.8
  p.seed = 123;
  Sampler s(p, 100);
  for (int32_t id : draws(s, flat_logits(), 300)) EXPECT_LE(std::abs(id - 37), 20) << id;
}

// ---- stop strings --------------------------------------------------------------------

namespace {
struct Streamed {
  std::string text;
  bool stopped = false;
};
Streamed stream(StopStrings& ss, const std::vector<std::string>& pieces) {
  Streamed r;
  for (const auto& piece : pieces) {
    auto step = ss.push(piece);
    r.text += step.emit;
    if (step.stopped) {
      r.stopped = true;
      return r;
    }
  }
  r.text += ss.flush();
  return r;
}
}  // namespace

TEST(StopStrings, NoStopsPassesEverything) {
  StopStrings ss({});
  auto step = ss.push("hello");
  EXPECT_EQ(step.emit, "hello");
  EXPECT_FALSE(step.stopped);
}

TEST(StopStrings, StopInOnePiece) {
  StopStrings ss({"</s>"});
  auto step = ss.push("Hi there</s>more");
  EXPECT_EQ(step.emit, "Hi there");
  EXPECT_TRUE(step.stopped);
  EXPECT_TRUE(ss.push("x").stopped);
  EXPECT_EQ(ss.flush(), "");
}

TEST(StopStrings, StopSplitAcrossPieces) {
  StopStrings ss({"STOP"});
  auto a = ss.push("one ST");
  EXPECT_EQ(a.emit, "one ");  // "ST" could start "STOP"
  auto b = ss.push("O");
  EXPECT_EQ(b.emit, "");
  auto c = ss.push("P two");
  EXPECT_EQ(c.emit, "");
  EXPECT_TRUE(c.stopped);
}

TEST(StopStrings, HeldPrefixReleasedWhenItDiverges) {
  StopStrings ss({"abc"});
  auto a = ss.push("xab");
  EXPECT_EQ(a.emit, "x");
  EXPECT_EQ(ss.held(), "ab");
  auto b = ss.push("d");
  EXPECT_EQ(b.emit, "abd");
  EXPECT_FALSE(b.stopped);
}

TEST(StopStrings, OverlappingPrefixes) {
  // "aab" with stop "ab": the stop starts at the second 'a'.
  StopStrings ss({"ab"});
  auto r = stream(ss, {"a", "a", "b", "c"});
  EXPECT_EQ(r.text, "a");
  EXPECT_TRUE(r.stopped);

  // Self-overlapping stop: "ababc" with stop "abc".
  StopStrings tt({"abc"});
  r = stream(tt, {"ab", "ab", "c"});
  EXPECT_EQ(r.text, "ab");
  EXPECT_TRUE(r.stopped);
}

TEST(StopStrings, EarliestOfSeveralStopsWins) {
  StopStrings ss({"world", "lo w"});
  auto r = stream(ss, {"hel", "lo wor", "ld"});
  EXPECT_EQ(r.text, "hel");
  EXPECT_TRUE(r.stopped);
}

TEST(StopStrings, FlushReturnsHeldTail) {
  StopStrings ss({"abc"});
  auto r = stream(ss, {"xyz a", "b"});
  EXPECT_EQ(r.text, "xyz ab");
  EXPECT_FALSE(r.stopped);
}

TEST(StopStrings, Utf8MultiByteText) {
  // "é" is C3 A9, "€" is E2 82 AC; pieces split inside characters are held until whole.
  StopStrings ss({"€!"});
  auto a = ss.push("caf\xC3");
  EXPECT_EQ(a.emit, "caf");
  auto b = ss.push("\xA9 5\xE2\x82");
  EXPECT_EQ(b.emit, "\xC3\xA9 5");  // "€" is held: incomplete, and a stop prefix
  auto c = ss.push("\xAC");
  EXPECT_EQ(c.emit, "");
  auto d = ss.push("!");
  EXPECT_TRUE(d.stopped);
  EXPECT_EQ(d.emit, "");

  StopStrings tt({"€!"});
  auto r = stream(tt, {"5\xE2\x82", "\xAC", " ok"});
  EXPECT_EQ(r.text, "5€ ok");
  EXPECT_FALSE(r.stopped);
}
