// GPU backend behaviour of the CLI on a machine without a GPU (ARCHITECTURE.md §2, last row):
// no plugin at all, the fake plugin with and without devices, a plugin of another ABI
// version, and (when it was built) the real CUDA plugin without libcuda.so.1.
// The fake plugin lives in build/test-plugins/fake and is named through SHIMMY_BACKEND_PATH.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "backend/plugin_abi.h"
#include "support/paths.h"

using namespace shimmy;
namespace fs = std::filesystem;

namespace {

const char* kStories = "stories260K.gguf";

// Runs `bin args...` with exactly the backend-related environment given (the test's own
// SHIMMY_* settings do not leak in).
test::ProcessResult run_env(const std::string& bin, const std::vector<std::string>& env,
                            const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<std::string> argv = {"/usr/bin/env"};
  for (const char* v :
       {"SHIMMY_BACKEND_PATH", "SHIMMY_FAKE_DEVICES", "SHIMMY_FAKE_ABI", "SHIMMY_FAKE_TYPES",
        "SHIMMY_FAKE_LOG", "SHIMMY_GPU_BACKEND", "SHIMMY_GPU_LAYERS", "SHIMMY_GPU_MARGIN",
        "SHIMMY_TENSOR_SPLIT", "SHIMMY_LOG"}) {
    argv.push_back("-u");
    argv.push_back(v);
  }
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(bin);
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run_process(argv, input);
}

std::string fake_path() {
  return std::string("SHIMMY_BACKEND_PATH=") + SHIMMY_TEST_PLUGIN_DIR + "/fake";
}

test::ProcessResult fake(const std::string& devices, const std::vector<std::string>& args,
                         std::vector<std::string> env = {}, const std::string& input = "") {
  env.push_back(fake_path());
  env.push_back("SHIMMY_FAKE_DEVICES=" + devices);
  return run_env(test::shimmy_bin(), env, args, input);
}

int count_lines_starting(const std::string& s, const std::string& prefix) {
  int n = 0;
  size_t b = 0;
  while (b < s.size()) {
    size_t e = s.find('\n', b);
    if (e == std::string::npos) e = s.size();
    if (s.compare(b, prefix.size(), prefix) == 0) ++n;
    b = e + 1;
  }
  return n;
}

// A copy of the shimmy binary alone in a fresh directory: a machine with no plugin.
class NoPluginBinary : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::make_temp_dir("noplugin");
    bin_ = dir_ + "/shimmy";
    fs::copy_file(test::shimmy_bin(), bin_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_, bin_;
};

nlohmann::json placement_of(const test::ProcessResult& r) {
  return nlohmann::json::parse(r.out).at("placement");
}

}  // namespace

TEST_F(NoPluginBinary, AutoRunsOnTheCpuWithoutAWarning) {
  auto r = run_env(bin_, {},
                   {"run", "-m", test::model_path(kStories), "-p", "Once upon a time", "-n", "8",
                    "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(", there was a little girl", 0), 0u) << r.out;
  EXPECT_EQ(count_lines_starting(r.err, "WARN"), 0) << r.err;
  EXPECT_NE(r.err.find("INFO  no GPU backend plugin found"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("INFO  cpu: 5/5 layers + output"), std::string::npos) << r.err;
}

TEST_F(NoPluginBinary, NamedBackendExits3) {
  auto r = run_env(bin_, {},
                   {"run", "-m", test::model_path(kStories), "-p", "x", "--gpu-backend", "cuda"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("no cuda backend plugin found"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir_), std::string::npos) << r.err;  // says where it looked
  r = run_env(bin_, {"SHIMMY_GPU_BACKEND=cuda"}, {"logits", "-m", test::model_path(kStories)},
              "Hello");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  r = run_env(bin_, {}, {"run", "-m", test::model_path(kStories), "-p", "x", "-ngl", "2"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("--gpu-layers 2 cannot be honoured"), std::string::npos) << r.err;
  // --gpu-backend cpu never looks for plugins.
  r = run_env(
      bin_, {},
      {"run", "-m", test::model_path(kStories), "-p", "x", "-n", "1", "--gpu-backend", "cpu"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("plugin"), std::string::npos) << r.err;
}

TEST_F(NoPluginBinary, DoctorSaysNoneFound) {
  auto r = run_env(bin_, {}, {"doctor"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(dir_ + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("none found"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--gpu-backend auto: cpu: no GPU backend plugin found"), std::string::npos)
      << r.out;
}

TEST(BackendCli, BadFlagValuesAreUsageErrors) {
  const std::string m = test::model_path(kStories);
  for (std::vector<std::string> bad : {std::vector<std::string>{"--gpu-layers", "many"},
                                       {"-ngl", "-3"},
                                       {"--gpu-margin", "-1"},
                                       {"--tensor-split", "1,x"},
                                       {"--tensor-split", "0,0"},
                                       {"--gpu-backend", "CUDA!"}}) {
    std::vector<std::string> args = {"run", "-m", m, "-p", "x"};
    args.insert(args.end(), bad.begin(), bad.end());
    auto r = run_env(test::shimmy_bin(), {}, args);
    EXPECT_EQ(r.exit_code, 2) << bad[0] << " " << bad[1] << ": " << r.err;
  }
  auto r = run_env(test::shimmy_bin(), {"SHIMMY_GPU_LAYERS=lots"}, {"run", "-m", m, "-p", "x"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--gpu-layers must be auto, all or a number"), std::string::npos) << r.err;
}

TEST(BackendCli, FakeWithoutDevices) {
  const std::string m = test::model_path(kStories);
  auto r = fake("", {"run", "-m", m, "-p", "Once upon a time", "-n", "4", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines_starting(r.err, "WARN"), 1) << r.err;
  // (A CUDA plugin built next to shimmy on this machine adds its own reason to the line.)
  EXPECT_NE(r.err.find("WARN  no usable GPU backend ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fake: SHIMMY_FAKE_DEVICES is empty"), std::string::npos) << r.err;
  r = fake("", {"run", "-m", m, "-p", "x", "--gpu-backend", "fake"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("--gpu-backend fake: no usable device: SHIMMY_FAKE_DEVICES is empty"),
            std::string::npos)
      << r.err;
  r = fake("", {"doctor"});
  EXPECT_NE(r.out.find("no usable device: SHIMMY_FAKE_DEVICES is empty"), std::string::npos)
      << r.out;
}

TEST(BackendCli, AbiMismatchIsRefusedWithBothVersions) {
  const std::string m = test::model_path(kStories);
  auto r = fake("Fake GPU A:100:200", {"doctor"}, {"SHIMMY_FAKE_ABI=999"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("not loaded: plugin ABI version 999, but this shimmy needs " +
                       std::to_string(SHIMMY_BACKEND_ABI_VERSION)),
            std::string::npos)
      << r.out;
  r = fake("Fake GPU A:100:200", {"run", "-m", m, "-p", "x", "--gpu-backend", "fake"},
           {"SHIMMY_FAKE_ABI=999"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("ABI version 999"), std::string::npos) << r.err;
  r = fake("Fake GPU A:100:200", {"run", "-m", m, "-p", "x", "-n", "1"}, {"SHIMMY_FAKE_ABI=999"});
  EXPECT_EQ(r.exit_code, 0) << r.err;  // auto: the CPU, with one WARN saying why
  EXPECT_EQ(count_lines_starting(r.err, "WARN"), 1) << r.err;
  EXPECT_NE(r.err.find("ABI version 999"), std::string::npos) << r.err;
}

TEST(BackendCli, DoctorListsPluginDevicesAndPlacement) {
  auto r = fake("Fake GPU A:2048:4096:900,Fake GPU B:1024:2048",
                {"doctor", "-m", test::model_path(kStories)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(std::string(SHIMMY_TEST_PLUGIN_DIR) + "/fake/libshimmy-backend-fake.so"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("loaded: fake test backend 1.0; fake runtime 1.0"), std::string::npos);
  EXPECT_NE(r.out.find("fake:0 Fake GPU A: 2048 MiB free of 4096 MiB, 900 GB/s"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("fake:1 Fake GPU B: 1024 MiB free of 2048 MiB"), std::string::npos);
  EXPECT_NE(r.out.find("--gpu-backend auto: fake, 2 devices"), std::string::npos);
  // 2048:1024 free: 5 layers split 3:2 (3.33 -> 3, 1.67 -> 2); the head on the last device.
  EXPECT_NE(r.out.find("fake:0 Fake GPU A: 3/5 layers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fake:1 Fake GPU B: 2/5 layers + output"), std::string::npos) << r.out;
}

TEST(BackendCli, ShowPlacementSplitsOrRefusesWithNumbers) {
  const std::string m = test::model_path(kStories);
  const std::string two = "Fake GPU A:100:200,Fake GPU B:100:200";
  auto r = fake(two, {"show", m, "--placement", "--json", "--gpu-margin", "0", "-ngl", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto p = placement_of(r);
  EXPECT_EQ(p["backend"], "fake");
  EXPECT_EQ(p["cpu"]["layers"], nlohmann::json({0, 1}));
  ASSERT_EQ(p["devices"].size(), 2u);
  EXPECT_EQ(p["devices"][0]["layers"], nlohmann::json({1, 3}));
  EXPECT_EQ(p["devices"][1]["layers"], nlohmann::json({3, 5}));
  EXPECT_EQ(p["devices"][1]["output"], true);
  EXPECT_GT(p["devices"][0]["weight_bytes"].get<uint64_t>(), 0u);

  r = fake(two, {"show", m, "--placement", "--json", "--gpu-margin", "0", "--tensor-split", "3,1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  p = placement_of(r);
  ASSERT_EQ(p["devices"].size(), 2u);
  EXPECT_EQ(p["devices"][0]["layers"], nlohmann::json({0, 4}));  // 3.75 -> 4
  EXPECT_EQ(p["devices"][1]["layers"], nlohmann::json({4, 5}));

  // The default 512 MiB margin leaves nothing of 100 MiB: auto falls back, `all` refuses.
  r = fake(two, {"show", m, "--placement"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("backend cpu (requested auto)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("why the CPU: nothing runs on fake"), std::string::npos) << r.out;
  r = fake(two, {"show", m, "--placement", "--gpu-layers", "all"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("--gpu-layers all does not fit: fake:0 Fake GPU A needs"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("512 MiB margin), 100 MiB free"), std::string::npos) << r.err;
  r = fake(two, {"run", "-m", m, "-p", "x", "-ngl", "2"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("--gpu-layers 2 does not fit"), std::string::npos) << r.err;
  r = fake(two, {"run", "-m", m, "-p", "x", "--gpu-backend", "fake"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("--gpu-backend fake: nothing runs on fake"), std::string::npos) << r.err;
  r = fake(two, {"show", m, "--placement", "--tensor-split", "1,1,1", "--gpu-margin", "0"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("--tensor-split has 3 values, but there are only 2 devices"),
            std::string::npos)
      << r.err;
}

TEST(BackendCli, UnsupportedWeightTypesStayOnTheCpu) {
  const std::string m = test::model_path("stories260K-Q4_K_M.gguf");  // Q5_0, F16, Q8_0
  auto r = fake("Fake GPU A:100:200", {"show", m, "--placement", "--json", "--gpu-margin", "0"},
                {"SHIMMY_FAKE_TYPES=Q5_0,F16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto p = placement_of(r);
  EXPECT_EQ(p["backend"], "cpu");
  const std::string notes = p["notes"].dump();
  EXPECT_NE(notes.find("layer 4 has Q8_0 weights, which the backend cannot compute"),
            std::string::npos)
      << notes;
  r = fake("Fake GPU A:100:200", {"show", m, "--placement", "--gpu-margin", "0", "-ngl", "1"},
           {"SHIMMY_FAKE_TYPES=Q5_0,F16"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("layer 4 has Q8_0"), std::string::npos) << r.err;
  r = fake("Fake GPU A:100:200", {"show", m, "--placement", "--json", "--gpu-margin", "0"},
           {"SHIMMY_FAKE_TYPES=Q5_0,F16,Q8_0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(placement_of(r)["cpu"]["layers"], nlohmann::json({0, 0}));
}

// Runs when the real CUDA plugin was built next to `shimmy` on a machine without the NVIDIA
// driver: the plugin loads, and its probe says libcuda.so.1 is missing.
TEST(BackendCli, CudaPluginWithoutDriverSaysWhy) {
  const fs::path plugin = fs::path(test::shimmy_bin()).parent_path() / "libshimmy-backend-cuda.so";
  if (!fs::exists(plugin)) GTEST_SKIP() << plugin << " was not built (no CUDA toolkit)";
  if (void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
    dlclose(h);
    GTEST_SKIP() << "libcuda.so.1 is installed here; the missing-driver path cannot be tested";
  }
  auto r = run_env(test::shimmy_bin(), {}, {"doctor"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(plugin.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("libcuda.so.1"), std::string::npos) << r.out;
  r = run_env(test::shimmy_bin(), {},
              {"run", "-m", test::model_path(kStories), "-p", "x", "--gpu-backend", "cuda"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("libcuda.so.1"), std::string::npos) << r.err;
  r = run_env(test::shimmy_bin(), {},
              {"run", "-m", test::model_path(kStories), "-p", "x", "-n", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines_starting(r.err, "WARN"), 1) << r.err;
  EXPECT_NE(r.err.find("libcuda.so.1"), std::string::npos) << r.err;
}

namespace {

// `shimmy serve --port 0` with the fake plugin; returns its pid and port (0 on failure).
std::pair<pid_t, int> start_server(const std::string& devices, std::string* log) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, 0};
  const std::string path = fake_path(), devs = "SHIMMY_FAKE_DEVICES=" + devices;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    execl("/usr/bin/env", "env", "-u", "SHIMMY_GPU_BACKEND", path.c_str(), devs.c_str(), SHIMMY_BIN,
          "serve", "--port", "0", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  const std::regex re(R"(listening on http://127\.0\.0\.1:(\d+))");
  std::smatch m;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    log->append(buf, static_cast<size_t>(n));
    if (std::regex_search(*log, m, re)) break;
  }
  close(fds[0]);
  return {pid, m.empty() ? 0 : std::stoi(m[1].str())};
}

}  // namespace

TEST(BackendCli, ServeHealthReportsPluginsAndDevices) {
  std::string log;
  auto [pid, port] = start_server("Fake GPU A:1024:2048:900", &log);
  ASSERT_GT(pid, 0);
  ASSERT_GT(port, 0) << log;
  httplib::Client cli("127.0.0.1", port);
  nlohmann::json b;
  for (int i = 0; i < 100; ++i) {  // the scan runs in the background after listening
    auto r = cli.Get("/health");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    b = nlohmann::json::parse(r->body)["backend"];
    if (b["state"] == "ready") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(b["state"], "ready") << b.dump();
  EXPECT_EQ(b["requested"], "auto");
  EXPECT_EQ(b["selected"], "fake");
  ASSERT_EQ(b["devices"].size(), 1u) << b.dump();
  EXPECT_EQ(b["devices"][0]["device"], "fake:0");
  EXPECT_EQ(b["devices"][0]["name"], "Fake GPU A");
  EXPECT_EQ(b["devices"][0]["free_bytes"], 1024ull << 20);
  bool found = false;
  for (const auto& p : b["plugins"]) {
    if (p["name"] != "fake") continue;
    found = true;
    EXPECT_EQ(p["loaded"], true);
    EXPECT_EQ(p["usable"], true);
  }
  EXPECT_TRUE(found) << b.dump();
}

TEST(BackendCli, ServeWithANamedBackendThatCannotRunExits3) {
  auto r = fake("", {"serve", "--port", "0", "--gpu-backend", "fake"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("no usable device: SHIMMY_FAKE_DEVICES is empty"), std::string::npos)
      << r.err;
}
