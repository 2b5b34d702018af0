// Engine behaviour beyond conformance: batch invariance of multi-sequence decode, the
// stories260K golden text, and clear errors for unsupported or broken models and prompts
// longer than the context.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/session.h"
#include "gguf/writer.h"
#include "model/forward.h"
#include "support/paths.h"

using namespace shimmy;

namespace {

std::vector<int32_t> greedy_alone(const model::Model& m, engine::ThreadPool& pool, int32_t first,
                                  int steps) {
  model::KvCache cache(m.cfg, 64);
  model::Forward fwd(m, 1, 64, pool);
  std::vector<float> logits(static_cast<size_t>(m.cfg.n_vocab));
  std::vector<int32_t> out;
  model::BatchToken bt{first, 0, &cache, true};
  for (int s = 0; s < steps; ++s) {
    EXPECT_TRUE(fwd.eval(std::span<const model::BatchToken>(&bt, 1), logits.data()).ok());
    bt.token =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    bt.pos++;
    out.push_back(bt.token);
  }
  return out;
}

}  // namespace

TEST(Engine, ParallelSequencesMatchTheirSoloRuns) {
  for (const char* name : {"stories260K-Q4_K_M.gguf", "t-llama-Q4_0.gguf", "t-qwen2-Q6_K.gguf"}) {
    SCOPED_TRACE(name);
    auto m = model::load_model(test::model_path(name));
    ASSERT_TRUE(m.ok()) << m.error().message;
    engine::ThreadPool pool(2);
    const int n_seq = 5, steps = 12;
    std::vector<std::unique_ptr<model::KvCache>> caches;
    std::vector<model::BatchToken> b;
    for (int s = 0; s < n_seq; ++s) {
      caches.push_back(std::make_unique<model::KvCache>((*m)->cfg, 64));
      b.push_back({static_cast<int32_t>(10 + 7 * s), 0, caches.back().get(), true});
    }
    model::Forward fwd(**m, n_seq, 64, pool);
    std::vector<float> logits(static_cast<size_t>(n_seq * (*m)->cfg.n_vocab));
    std::vector<std::vector<int32_t>> got(n_seq);
    for (int step = 0; step < steps; ++step) {
      ASSERT_TRUE(fwd.eval(b, logits.data()).ok());
      for (int s = 0; s < n_seq; ++s) {
        const float* row = logits.data() + s * (*m)->cfg.n_vocab;
        b[s].token = static_cast<int32_t>(std::max_element(row, row + (*m)->cfg.n_vocab) - row);
        b[s].pos++;
        got[s].push_back(b[s].token);
      }
    }
    for (int s = 0; s < n_seq; ++s) {
      EXPECT_EQ(got[s], greedy_alone(**m, pool, 10 + 7 * s, steps)) << "sequence " << s;
    }
  }
}

TEST(Engine, StoriesGoldenText) {
  auto r = test::run_process({test::shimmy_bin(), "run", "-m", test::model_path("stories260K.gguf"),
                              "-p", "Once upon a time", "-n", "32", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            ", there was a little girl named Lily. She loved to play outside in the park. One "
            "day, she saw\n");
}

TEST(Engine, RunJsonAndSeeds) {
  auto run = [](const std::string& seed) {
    return test::run_process({test::shimmy_bin(), "run", "-m", test::model_path("stories260K.gguf"),
                              "-p", "Once upon a time", "-n", "16", "--temp", "1.0", "--seed", seed,
                              "--json"});
  };
  auto a = run("7"), b = run("7"), c = run("8");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  EXPECT_NE(a.out.find("\"prompt_tokens\":[1,403,407,261,378]"), std::string::npos) << a.out;
}

TEST(Engine, LogitsCliMatchesTheReferenceShape) {
  auto r = test::run_process({test::shimmy_bin(), "logits", "-m",
                              test::model_path("t-llama-Q8_0.gguf"), "--top", "5", "--json"},
                             "Once upon a time");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"positions\":[{\"lse\":", 0), 0u) << r.out.substr(0, 100);
  EXPECT_NE(r.out.find("\"tokens\":[1,9038,2501,263,931]"), std::string::npos);
}

TEST(Engine, ClearErrors) {
  std::string dir = test::make_temp_dir("engine");
  // An architecture we do not support.
  {
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::string("mamba"));
    ASSERT_TRUE(w.write(dir + "/mamba.gguf").ok());
    auto r = test::run_process({test::shimmy_bin(), "run", "-m", dir + "/mamba.gguf", "-p", "x"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("architecture 'mamba' is not supported (supported: llama"),
              std::string::npos)
        << r.err;
  }
  // A missing tensor: stories260K without blk.3.ffn_up.weight.
  {
    auto f = gguf::File::open(test::model_path("stories260K.gguf"));
    ASSERT_TRUE(f.ok());
    gguf::Writer w;
    for (const auto& kv : f->metadata()) w.set(kv.key, kv.value);
    for (const auto& t : f->tensors()) {
      if (t.name != "blk.3.ffn_up.weight")
        ASSERT_TRUE(w.add_tensor_view(t.name, t.type, t.shape, t.data, t.n_bytes).ok());
    }
    ASSERT_TRUE(w.write(dir + "/missing.gguf").ok());
    auto r = test::run_process({test::shimmy_bin(), "run", "-m", dir + "/missing.gguf", "-p", "x"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("tensor 'blk.3.ffn_up.weight' is missing (expected shape [64, 172])"),
              std::string::npos)
        << r.err;
  }
  // A prompt longer than the context.
  {
    std::string prompt;
    for (int i = 0; i < 200; ++i) prompt += "Once upon a time ";
    auto r = test::run_process({test::shimmy_bin(), "run", "-m",
                                test::model_path("stories260K.gguf"), "-c", "64", "-p", prompt});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("but the context holds 64"), std::string::npos) << r.err;
    auto l = test::run_process(
        {test::shimmy_bin(), "logits", "-m", test::model_path("stories260K.gguf"), "-c", "64"},
        prompt);
    EXPECT_EQ(l.exit_code, 1);
    EXPECT_NE(l.err.find("longer than the context of 64"), std::string::npos) << l.err;
  }
  // Bad flags are usage errors.
  auto bad = test::run_process(
      {test::shimmy_bin(), "run", "-m", test::model_path("stories260K.gguf"), "--temp", "abc"});
  EXPECT_EQ(bad.exit_code, 2);
  std::filesystem::remove_all(dir);
}
