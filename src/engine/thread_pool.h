// A fixed pool of worker threads for the forward pass. parallel_for splits [0, n) into one
// contiguous chunk per thread (the caller's thread takes chunk 0) and returns when all are
// done. Workers spin briefly, then sleep, between jobs: decode issues a few hundred jobs
// per token, so waking a thread must cost microseconds, not a syscall each time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace shimmy::engine {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }
  // fn(begin, end, thread_index) over a split of [0, n); chunks are multiples of `grain`.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                    int64_t grain = 1);

 private:
  void worker(int index);
  int n_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0, job_grain_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
};

// Physical cores of this machine (the default thread count), at least 1.
int physical_cores();

}  // namespace shimmy::engine
