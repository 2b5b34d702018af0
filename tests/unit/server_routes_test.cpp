// The HTTP server in-process on an ephemeral port, driven by httplib::Client.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "server/server.h"

namespace shimmy::server {
namespace {

using nlohmann::json;

class FakeModels : public ModelProvider {
 public:
  std::vector<store::ModelEntry> list_models() override {
    store::ModelEntry a;
    a.name = "tiny";
    a.stem = "tiny";
    a.path = "/m/tiny.gguf";
    a.size_bytes = 1234;
    a.modified_unix = 1700000000;  // 2023-11-14T22:13:20Z
    store::ModelEntry b;
    b.name = "llama3:latest";
    b.path = "/o/blobs/sha256-ab";
    b.size_bytes = 99;
    b.source = store::Source::Ollama;
    b.modified_unix = 1;
    b.digest = "ab";
    store::ModelEntry c;
    c.name = "Org/Repo-GGUF:repo-Q4_K_M";
    c.stem = "repo-Q4_K_M";
    c.path = "/hf/repo-Q4_K_M.gguf";
    c.source = store::Source::HuggingFace;
    return {a, b, c};
  }
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions opts;
    opts.port = 0;
    opts.max_body_bytes = 1 << 20;
    srv_ = std::make_unique<HttpServer>(opts, models_);
    Status s = srv_->bind();
    ASSERT_TRUE(s) << s.message();
    ASSERT_GT(srv_->port(), 0);
    thread_ = std::thread([this] { run_status_ = srv_->run(); });
    cli_ = std::make_unique<httplib::Client>("127.0.0.1", srv_->port());
    cli_->set_connection_timeout(5);
    cli_->set_read_timeout(5);
  }
  void TearDown() override {
    if (srv_) srv_->stop();
    if (thread_.joinable()) thread_.join();
    EXPECT_TRUE(run_status_) << run_status_.message();
  }

  // status and parsed body; a non-JSON body fails the test
  std::pair<int, json> get(const std::string& path) {
    auto r = cli_->Get(path.c_str());
    if (!r) return {-1, json()};
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << path;
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  std::pair<int, json> post(const std::string& path, const std::string& body) {
    auto r = cli_->Post(path.c_str(), body, "application/json");
    if (!r) return {-1, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  FakeModels models_;
  std::unique_ptr<HttpServer> srv_;
  std::unique_ptr<httplib::Client> cli_;
  std::thread thread_;
  Status run_status_;
};

void expect_openai_error(const json& j, int code, const std::string& type) {
  ASSERT_TRUE(j.is_object()) << j.dump();
  ASSERT_TRUE(j.contains("error") && j["error"].is_object()) << j.dump();
  EXPECT_TRUE(j["error"]["message"].is_string()) << j.dump();
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  EXPECT_EQ(j["error"]["type"], type) << j.dump();
  EXPECT_EQ(j["error"]["code"], code) << j.dump();
}

TEST_F(ServerTest, Health) {
  auto [status, j] = get("/health");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["models_found"], 3);
  EXPECT_TRUE(j["version"].is_string());
  // Without a backend provider: the CPU only.
  EXPECT_EQ(j["backend"]["selected"], "cpu");
  EXPECT_EQ(j["backend"]["state"], "ready");
  EXPECT_TRUE(j["backend"]["devices"].empty());
}

TEST_F(ServerTest, OpenAiModels) {
  auto [status, j] = get("/v1/models");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 3u);
  EXPECT_EQ(j["data"][0]["id"], "tiny");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][0]["created"], 1700000000);
  EXPECT_EQ(j["data"][0]["owned_by"], "shimmy");

  auto [s2, one] = get("/v1/models/Org/Repo-GGUF:repo-Q4_K_M");
  ASSERT_EQ(s2, 200) << one.dump();
  EXPECT_EQ(one["id"], "Org/Repo-GGUF:repo-Q4_K_M");
  auto [s3, missing] = get("/v1/models/nope");
  EXPECT_EQ(s3, 404);
  expect_openai_error(missing, 404, "not_found_error");
}

TEST_F(ServerTest, OllamaTagsAndVersion) {
  auto [status, j] = get("/api/tags");
  ASSERT_EQ(status, 200);
  ASSERT_EQ(j["models"].size(), 3u);
  const auto& m = j["models"][0];
  EXPECT_EQ(m["name"], "tiny");
  EXPECT_EQ(m["model"], "tiny");
  EXPECT_EQ(m["modified_at"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(m["size"], 1234);
  EXPECT_EQ(m["digest"].get<std::string>().size(), 64u);
  EXPECT_EQ(m["details"]["format"], "gguf");
  EXPECT_EQ(j["models"][1]["digest"], "ab");  // Ollama's own digest when known
  EXPECT_EQ(j["models"][2]["details"]["quantization_level"], "Q4_K_M");

  auto [s2, v] = get("/api/version");
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(v["version"], "0.1.0");
}

TEST_F(ServerTest, UnknownRouteIs404Json) {
  auto [status, j] = get("/no/such/route");
  EXPECT_EQ(status, 404);
  expect_openai_error(j, 404, "not_found_error");
  auto [s2, j2] = post("/v1/nothing", "{}");
  EXPECT_EQ(s2, 404);
  expect_openai_error(j2, 404, "not_found_error");
}

TEST_F(ServerTest, WrongMethodIs405Json) {
  auto r = cli_->Post("/health", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "GET");
  expect_openai_error(json::parse(r->body, nullptr, false), 405, "method_not_allowed");

  auto [s2, j2] = get("/v1/chat/completions");
  EXPECT_EQ(s2, 405);
  expect_openai_error(j2, 405, "method_not_allowed");
  auto d = cli_->Delete("/api/tags");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 405);
  auto put = cli_->Put("/v1/models");  // no PUT routes at all, no body
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
  expect_openai_error(json::parse(put->body, nullptr, false), 405, "method_not_allowed");
}

TEST_F(ServerTest, MalformedJsonBodyIs400) {
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    auto [status, j] = post(path, "{\"model\": \"tiny\", ");
    EXPECT_EQ(status, 400) << path;
    expect_openai_error(j, 400, "invalid_request_error");
    EXPECT_NE(j["error"]["message"].get<std::string>().find("malformed JSON"), std::string::npos);
  }
  for (const char* path : {"/api/generate", "/api/chat"}) {
    auto [status, j] = post(path, "not json at all");
    EXPECT_EQ(status, 400) << path;
    ASSERT_TRUE(j["error"].is_string()) << j.dump();  // Ollama's error shape
  }
  auto [s3, j3] = post("/v1/chat/completions", "[1, 2]");
  EXPECT_EQ(s3, 400);
  EXPECT_NE(j3["error"]["message"].get<std::string>().find("JSON object"), std::string::npos);
  auto [s4, j4] = post("/api/chat", "");
  EXPECT_EQ(s4, 400);
}

TEST_F(ServerTest, GenerationRoutesAre501ForNow) {
  auto [s1, j1] = post("/v1/chat/completions", R"({"model":"tiny","messages":[]})");
  EXPECT_EQ(s1, 501);
  EXPECT_NE(j1["error"]["message"].get<std::string>().find("not available"), std::string::npos);
  auto [s2, j2] = post("/api/generate", R"({"model":"tiny","prompt":"hi"})");
  EXPECT_EQ(s2, 501);
  EXPECT_TRUE(j2["error"].is_string());
}

TEST_F(ServerTest, OversizedBodyIsJsonError) {
  std::string big(2 << 20, ' ');
  auto r = cli_->Post("/v1/completions", big, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(json::parse(r->body, nullptr, false).contains("error")) << r->body;
}

TEST(ServerLifecycle, StopBeforeAndRightAfterRun) {
  FakeModels models;
  ServerOptions opts;
  opts.port = 0;
  {
    HttpServer srv(opts, models);
    ASSERT_TRUE(srv.bind());
    srv.stop();
    EXPECT_TRUE(srv.run());  // returns at once
  }
  for (int i = 0; i < 5; ++i) {
    HttpServer srv(opts, models);
    ASSERT_TRUE(srv.bind());
    std::thread t([&] { EXPECT_TRUE(srv.run()); });
    srv.stop();
    t.join();
  }
}

TEST(ServerLifecycle, BindErrorsAreValues) {
  FakeModels models;
  ServerOptions opts;
  opts.port = 0;
  HttpServer first(opts, models);
  ASSERT_TRUE(first.bind());
  opts.port = first.port();
  HttpServer second(opts, models);
  Status s = second.bind();
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find(std::to_string(first.port())), std::string::npos) << s.message();
  EXPECT_FALSE(second.run());
  opts.port = 70000;
  HttpServer third(opts, models);
  EXPECT_FALSE(third.bind());
}

}  // namespace
}  // namespace shimmy::server
