// host_copy.h: the caller takes the first piece, each worker one more.
#include "host_copy.h"

#include <algorithm>
#include <cstring>

namespace shimmy::cuda {

HostCopy::~HostCopy() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void HostCopy::piece(float* dst, const float* src, size_t n, int index, int parts) {
  // Pieces of whole 64-byte lines, so two threads never write the same line.
  const size_t per = (n / size_t(parts) + 15) / 16 * 16;
  const size_t b = std::min(n, per * size_t(index)), e = std::min(n, b + per);
  if (b < e) std::memcpy(dst + b, src + b, (e - b) * sizeof(float));
}

void HostCopy::start() {
  const unsigned hw = std::thread::hardware_concurrency();
  const int n = int(std::clamp(hw / 2, 1u, 4u)) - 1;  // workers besides the caller
  try {
    for (int i = 0; i < n; ++i) workers_.emplace_back([this, i] { work(i + 1); });
  } catch (...) {  // no threads: the copies stay on the calling thread
  }
}

void HostCopy::work(int index) {
  unsigned long long seen = 0;
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    float* dst = dst_;
    const float* src = src_;
    const size_t n = n_;
    const int parts = parts_;
    lock.unlock();
    piece(dst, src, n, index, parts);
    lock.lock();
    if (--pending_ == 0) done_.notify_one();
  }
}

void HostCopy::copy(float* dst, const float* src, size_t n) {
  if (n * sizeof(float) < kParallelBytes) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  if (!started_) {
    started_ = true;
    start();
  }
  if (workers_.empty()) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  const int parts = int(workers_.size()) + 1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dst_ = dst, src_ = src, n_ = n, parts_ = parts;
    pending_ = parts - 1;
    ++generation_;
  }
  wake_.notify_all();
  piece(dst, src, n, 0, parts);
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return pending_ == 0; });
}

}  // namespace shimmy::cuda
