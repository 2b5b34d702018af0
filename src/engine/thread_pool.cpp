#include "engine/thread_pool.h"

#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace shimmy::engine {

ThreadPool::ThreadPool(int n_threads) : n_(n_threads < 1 ? 1 : n_threads) {
  for (int k = 1; k < n_; ++k) threads_.emplace_back([this, k] { worker(k); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

namespace {
std::pair<int64_t, int64_t> chunk(int64_t n, int64_t grain, int parts, int k) {
  int64_t units = (n + grain - 1) / grain;
  int64_t b = units * k / parts * grain, e = units * (k + 1) / parts * grain;
  if (e > n) e = n;
  if (b > n) b = n;
  return {b, e};
}
}  // namespace

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                              int64_t grain) {
  if (n <= 0) return;
  if (n_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    job_n_ = n;
    job_grain_ = grain;
    pending_.store(n_ - 1);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  auto [b, e] = chunk(n, grain, n_, 0);
  if (b < e) fn(b, e, 0);
  // The other chunks are running: spin (cheaper than a wake-up), but yield the core
  // when it takes long, so an oversubscribed machine lets the workers finish.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < 4000)
      __builtin_ia32_pause();
    else
      std::this_thread::yield();
  }
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin a little for the next job, then sleep.
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < 20000; ++spin) {
      if (spin < 4000)
        __builtin_ia32_pause();
      else
        std::this_thread::yield();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return generation_.load() != seen; });
      g = generation_.load();
    }
    seen = g;
    const std::function<void(int64_t, int64_t, int)>* fn;
    int64_t n, grain;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      fn = job_;
      n = job_n_;
      grain = job_grain_;
    }
    auto [b, e] = chunk(n, grain, n_, index);
    if (b < e) (*fn)(b, e, index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

int physical_cores() {
  // Count distinct (physical id, core id) pairs; fall back to hardware_concurrency.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    if (line.rfind("physical id", 0) == 0) phys = line.substr(line.find(':') + 1);
    if (line.rfind("core id", 0) == 0) cores.emplace(phys, line.substr(line.find(':') + 1));
  }
  int n = static_cast<int>(cores.size());
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return n > 0 ? n : 1;
}

}  // namespace shimmy::engine
