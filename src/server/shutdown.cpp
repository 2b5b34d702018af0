#include "server/shutdown.h"

#include <pthread.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "util/log.h"

namespace shimmy::server {

SignalWatcher::SignalWatcher(std::function<void(int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, &old_mask_);
  watcher_ = std::thread([this, set] {
    const timespec tick{0, 100 * 1000 * 1000};  // re-check done_ every 100 ms
    while (!done_.load()) {
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig <= 0) continue;  // timeout or EINTR
      if (received_.load() != 0) {
        log::warn("second signal: exiting now");
        std::_Exit(130);
      }
      received_ = sig;
      log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                ", shutting down");
      if (on_signal_) on_signal_(sig);
    }
  });
}

SignalWatcher::~SignalWatcher() {
  done_ = true;
  if (watcher_.joinable()) watcher_.join();
  pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

}  // namespace shimmy::server
