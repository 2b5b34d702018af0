// The server's view of GPU backends, kept off the start-up path: the plugin scan (dlopen +
// driver initialisation, which can take a second) runs on a background thread after the
// socket is bound, and /health answers "probing" until it is done. `--gpu-backend cpu`
// never scans; a named backend is checked before listening (cmd_serve.cpp) so that a
// request that cannot be honoured exits with status 3 instead of serving.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "server/server.h"

namespace shimmy::server {

class BackendProbe : public BackendProvider {
 public:
  explicit BackendProbe(std::string requested) : requested_(std::move(requested)) {}
  ~BackendProbe() override;
  BackendProbe(const BackendProbe&) = delete;
  BackendProbe& operator=(const BackendProbe&) = delete;

  // Starts the scan on a thread (nothing for "cpu"); logs the outcome when done.
  void start();
  BackendStatus backend_status() override;

 private:
  std::string requested_;
  std::thread thread_;
  std::atomic<bool> done_{false};
};

}  // namespace shimmy::server
