// Graceful shutdown on SIGINT/SIGTERM without doing work inside a signal handler.
//
// The constructor blocks both signals in the calling thread, so construct it in main()
// before any other thread starts (threads inherit the mask). A watcher thread takes them
// with sigtimedwait and calls on_signal on the first one (e.g. HttpServer::stop); a second
// signal while shutting down exits at once with status 130.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <thread>

namespace shimmy::server {

class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int)> on_signal);
  ~SignalWatcher();  // stops the watcher and restores the signal mask
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  int received() const { return received_.load(); }  // the first signal, 0 if none

 private:
  std::function<void(int)> on_signal_;
  sigset_t old_mask_{};
  std::atomic<bool> done_{false};
  std::atomic<int> received_{0};
  std::thread watcher_;
};

}  // namespace shimmy::server
