// Partial offload end to end without a GPU: the fake plugin computes its F32 layers with
// the CPU path's math, so `logits` with some layers on fake devices must match the all-CPU
// logits, generation must produce the same text, and reusing a sequence must clear the
// device's slot (seq_truncate).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/paths.h"

using namespace shimmy;

namespace {

const std::string kPrompt = "Once upon a time, there was a little girl named Lily. She loved to";

test::ProcessResult shimmy_env(const std::vector<std::string>& env,
                               const std::vector<std::string>& args,
                               const std::string& input = "") {
  std::vector<std::string> argv = {
      "/usr/bin/env",
      "-u",
      "SHIMMY_GPU_BACKEND",
      "-u",
      "SHIMMY_GPU_LAYERS",
      "-u",
      "SHIMMY_TENSOR_SPLIT",
      std::string("SHIMMY_BACKEND_PATH=") + SHIMMY_TEST_PLUGIN_DIR + "/fake"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(test::shimmy_bin());
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run_process(argv, input);
}

nlohmann::json logits(const std::vector<std::string>& env, std::vector<std::string> extra) {
  std::vector<std::string> args = {"logits", "-m", test::model_path("stories260K.gguf"), "--top",
                                   "32"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = shimmy_env(env, args, kPrompt);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return nullptr;
  return nlohmann::json::parse(r.out);
}

// tol: the fake's naive f32 sums differ from the CPU's SIMD sums in the last bits, and the
// f16 roundings of q, K, V and the attention weights (which both paths do) sometimes turn
// that into one f16 step; the more layers differ, the more steps: 1e-3 covers half the
// layers, all five layers need 2e-3 (logits here are of order 10).
void expect_close(const nlohmann::json& a, const nlohmann::json& b, double tol = 1e-3) {
  ASSERT_FALSE(a.is_null());
  ASSERT_FALSE(b.is_null());
  ASSERT_EQ(a["tokens"], b["tokens"]);
  ASSERT_EQ(a["positions"].size(), b["positions"].size());
  double worst = 0;
  for (size_t i = 0; i < a["positions"].size(); ++i) {
    const auto& pa = a["positions"][i];
    const auto& pb = b["positions"][i];
    worst = std::max(worst, std::fabs(pa["lse"].get<double>() - pb["lse"].get<double>()));
    for (size_t k = 0; k < pa["top"].size(); ++k) {
      // Same ids in the same order, unless two logits are within the tolerance.
      const double la = pa["top"][k][1].get<double>(), lb = pb["top"][k][1].get<double>();
      worst = std::max(worst, std::fabs(la - lb));
      if (pa["top"][k][0] != pb["top"][k][0]) {
        EXPECT_LT(
            std::fabs(la - pa["top"][k + (k + 1 < pa["top"].size() ? 1 : 0)][1].get<double>()), tol)
            << "position " << i << " rank " << k;
      }
    }
  }
  EXPECT_LT(worst, tol);
}

}  // namespace

TEST(OffloadE2E, HalfTheLayersOnAFakeDeviceMatchTheCpuLogits) {
  const auto cpu = logits({}, {"--gpu-backend", "cpu"});
  const std::vector<std::string> one = {"SHIMMY_FAKE_DEVICES=Fake GPU A:100:200"};
  SCOPED_TRACE("2 of 5 layers + output on fake:0");
  expect_close(cpu, logits(one, {"--gpu-backend", "fake", "-ngl", "2", "--gpu-margin", "0"}));
}

TEST(OffloadE2E, AllLayersAndTwoDevicesMatchTheCpuLogits) {
  const auto cpu = logits({}, {"--gpu-backend", "cpu"});
  {
    SCOPED_TRACE("everything on fake:0");
    expect_close(
        cpu,
        logits({"SHIMMY_FAKE_DEVICES=Fake GPU A:100:200"}, {"-ngl", "all", "--gpu-margin", "0"}),
        2e-3);
  }
  {
    SCOPED_TRACE("layers 1-2 on fake:0, 3-4 + output on fake:1");
    expect_close(cpu,
                 logits({"SHIMMY_FAKE_DEVICES=Fake GPU A:100:200,Fake GPU B:100:200"},
                        {"-ngl", "4", "--gpu-margin", "0"}),
                 2e-3);
  }
  {
    SCOPED_TRACE("f32 KV cache");
    expect_close(logits({}, {"--gpu-backend", "cpu", "--kv-type", "f32"}),
                 logits({"SHIMMY_FAKE_DEVICES=Fake GPU A:100:200"},
                        {"-ngl", "3", "--gpu-margin", "0", "--kv-type", "f32"}));
  }
}

TEST(OffloadE2E, GenerationMatchesAndReusedSequencesAreTruncated) {
  const std::string dir = test::make_temp_dir("fake-log");
  const std::string log = dir + "/calls.log";
  const std::vector<std::string> args = {
      "run", "-m", test::model_path("stories260K.gguf"), "-n", "12", "--temp", "0"};
  const std::string input = "Once upon a time\nThe cat\n";  // two completions, one session
  auto cpu = shimmy_env(
      {},
      [&] {
        auto a = args;
        a.insert(a.end(), {"--gpu-backend", "cpu"});
        return a;
      }(),
      input);
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  auto dev = shimmy_env(
      {"SHIMMY_FAKE_DEVICES=Fake GPU A:100:200", "SHIMMY_FAKE_LOG=" + log},
      [&] {
        auto a = args;
        a.insert(a.end(), {"-ngl", "3", "--gpu-margin", "0"});
        return a;
      }(),
      input);
  ASSERT_EQ(dev.exit_code, 0) << dev.err;
  EXPECT_EQ(dev.out, cpu.out);
  EXPECT_NE(dev.err.find("INFO  fake:0 Fake GPU A: 3/5 layers + output"), std::string::npos)
      << dev.err;
  std::ifstream in(log);
  std::stringstream calls;
  calls << in.rdbuf();
  const std::string c = calls.str();
  EXPECT_EQ(c.rfind("create device 0 layers 2-5 +output seqs 1\n", 0), 0u) << c;
  // One truncate per completion, before its prompt.
  size_t first = c.find("truncate device 0 seq 0 pos 0");
  ASSERT_NE(first, std::string::npos) << c;
  EXPECT_NE(c.find("truncate device 0 seq 0 pos 0", first + 1), std::string::npos) << c;
  EXPECT_NE(c.find("destroy device 0"), std::string::npos) << c;
  // The logits row lies in the head plugin's host memory (host_alloc), freed at the end.
  EXPECT_NE(c.find("host_alloc " + std::to_string(512 * 4) + "\n"), std::string::npos) << c;
  EXPECT_NE(c.find("eval device 0 tokens 1 out host"), std::string::npos) << c;
  EXPECT_NE(c.find("host_free"), std::string::npos) << c;
  std::filesystem::remove_all(dir);
}

TEST(OffloadE2E, BenchReportsBackendPlacementAndBandwidth) {
  auto r = shimmy_env({"SHIMMY_FAKE_DEVICES=Fake GPU A:100:200:900"},
                      {"bench", "-m", test::model_path("stories260K.gguf"), "-p", "8", "-n", "4",
                       "-r", "1", "--parallel", "2", "--gpu-margin", "0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "fake");
  EXPECT_EQ(j["placement"].get<std::string>().rfind("fake:0 Fake GPU A: 5/5 layers + output", 0),
            0u);
  ASSERT_EQ(j["devices"].size(), 1u);
  EXPECT_EQ(j["devices"][0]["bandwidth_gb_per_s"], 900.0);
  EXPECT_GT(j["devices"][0]["bandwidth_fraction"].get<double>(), 0.0);
  EXPECT_GT(j["tg_tokens_per_s"].get<double>(), 0.0);
  r = shimmy_env({"SHIMMY_FAKE_DEVICES=Fake GPU A:100:200:900"},
                 {"bench", "-m", test::model_path("stories260K.gguf"), "-p", "8", "-n", "4", "-r",
                  "1", "--gpu-margin", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("backend fake"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("% of 900 GB/s"), std::string::npos) << r.out;
}
