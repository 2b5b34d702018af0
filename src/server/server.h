// The HTTP server: OpenAI and Ollama routes over cpp-httplib.
//
// Threads: run() blocks the calling thread in httplib's accept loop; requests are served
// by httplib's worker pool; stop() may be called from any thread (the signal watcher, a
// test) and makes run() return. JSON stays inside src/server: routes turn requests into
// typed values and ask the rest of shimmy through plain C++ interfaces (ModelProvider).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "backend/plugin/loader.h"
#include "store/model_entry.h"
#include "util/result.h"

namespace shimmy::server {

// Where routes get the model list. The real one wraps store::Catalog; tests use a fake.
class ModelProvider {
 public:
  virtual ~ModelProvider() = default;
  virtual std::vector<store::ModelEntry> list_models() = 0;
};

// What /health reports about GPU backends (server/backend_probe.h has the real one).
struct BackendStatus {
  std::string requested = "auto";  // --gpu-backend
  std::string state = "ready";     // "probing" while the plugin scan runs, then "ready"
  std::string selected = "cpu";    // the plugin models will use, or "cpu"
  std::string reason;              // why "cpu" under auto (empty otherwise)
  std::vector<backend::PluginInfo> plugins;
};

class BackendProvider {
 public:
  virtual ~BackendProvider() = default;
  virtual BackendStatus backend_status() = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 11435;                   // 0: pick a free port (tests)
  size_t max_body_bytes = 64u << 20;  // larger request bodies get 413
};

class HttpServer {
 public:
  // backends: null reports the CPU only.
  HttpServer(ServerOptions opts, ModelProvider& models, BackendProvider* backends = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket. After this, port() is the real port and clients may
  // connect (they queue until run()).
  Status bind();
  int port() const;
  const std::string& host() const;

  // Serves until stop(). Requires a successful bind().
  Status run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shimmy::server
