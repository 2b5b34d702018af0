// `shimmy serve` as a process: it logs where it listens and the models it found, answers
// /health, and exits 0 on SIGTERM. Also `shimmy list --json`. Uses the built binary.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "store_test_util.h"

namespace {

using shimmy::testing::TempTree;

struct Child {
  pid_t pid = -1;
  int err_fd = -1;  // the child's stderr
};

// Starts SHIMMY_BIN with args; HOME and cwd point into `t` so only its models are found.
Child spawn(const TempTree& t, const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::filesystem::create_directories(t / "cwd");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    if (chdir((t / "cwd").c_str()) != 0) _exit(127);
    setenv("HOME", (t / "home").c_str(), 1);
    unsetenv("SHIMMY_MODEL_PATHS");
    unsetenv("OLLAMA_MODELS");
    unsetenv("HF_HOME");
    unsetenv("HF_HUB_CACHE");
    unsetenv("XDG_CACHE_HOME");
    std::vector<char*> argv{const_cast<char*>(SHIMMY_BIN)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(SHIMMY_BIN, argv.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads the child's stderr until `re` matches (or 10 s pass); returns all text read.
std::string read_until(int fd, const std::regex& re, std::smatch* m) {
  static std::string text;  // kept alive for *m
  text.clear();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (std::regex_search(text, *m, re)) break;
  }
  return text;
}

int wait_exit(pid_t pid) {
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    usleep(50 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

TEST(ServerCli, ServeListsModelsAnswersAndStopsOnSigterm) {
  TempTree t;
  t.gguf("cwd/models/tiny.gguf", 100);
  Child c = spawn(t, {"serve", "--port", "0"});
  ASSERT_GT(c.pid, 0);
  std::smatch m;
  std::string text =
      read_until(c.err_fd, std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"), &m);
  ASSERT_FALSE(m.empty()) << text;
  EXPECT_NE(text.find("model tiny (100 B, path)"), std::string::npos) << text;
  int port = std::stoi(m[1].str());

  httplib::Client cli("127.0.0.1", port);
  auto r = cli.Get("/health");
  ASSERT_TRUE(r) << text;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(nlohmann::json::parse(r->body)["models_found"], 1);

  kill(c.pid, SIGTERM);
  EXPECT_EQ(wait_exit(c.pid), 0);
  close(c.err_fd);
}

TEST(ServerCli, ServeWithNoModelsSaysHowToAddOne) {
  TempTree t;
  Child c = spawn(t, {"serve", "--port", "0"});
  ASSERT_GT(c.pid, 0);
  std::smatch m;
  std::string text = read_until(c.err_fd, std::regex(R"(listening on)"), &m);
  EXPECT_NE(text.find("no models found"), std::string::npos) << text;
  EXPECT_NE(text.find("ollama pull"), std::string::npos) << text;
  kill(c.pid, SIGINT);
  EXPECT_EQ(wait_exit(c.pid), 0);
  close(c.err_fd);
}

TEST(ServerCli, ServeBadPortIsUsageError) {
  TempTree t;
  Child c = spawn(t, {"serve", "--port", "99999"});
  ASSERT_GT(c.pid, 0);
  EXPECT_EQ(wait_exit(c.pid), 2);
  close(c.err_fd);
}

TEST(ServerCli, ListJson) {
  TempTree t;
  t.gguf("cwd/models/a-00001-of-00002.gguf", 10);
  t.gguf("cwd/models/a-00002-of-00002.gguf", 10);
  std::string cmd = "cd '" + (t / "cwd").string() + "' && HOME='" + (t / "home").string() +
                    "' SHIMMY_MODEL_PATHS= OLLAMA_MODELS= HF_HOME= HF_HUB_CACHE= " +
                    "XDG_CACHE_HOME= " + SHIMMY_BIN + " list --json";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_TRUE(p);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << out;
  ASSERT_EQ(j.size(), 1u) << out;
  EXPECT_EQ(j[0]["name"], "a");
  EXPECT_EQ(j[0]["size"], 20);
  EXPECT_EQ(j[0]["shards"].size(), 2u);
}

}  // namespace
