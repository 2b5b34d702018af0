// Timing experiments of a decode step (builds configured with -DSHIMMY_CUDA_EXPERIMENTS=ON
// only; elsewhere every call here is empty):
//   SHIMMY_HOSTTIME=1   every 256 graph steps of one batch size, the host's time in each
//                       phase of context_eval: pack + upload, launch + copy-back calls, the
//                       wait for the device, the copy into the caller's memory
//   SHIMMY_CUDA_REPLAY=K once per batch size (after 32 positions), K replays of the step's
//                       graph back to back: the device time of a step without host gaps
// Both print to stderr. Wall time of a step minus the replay time = what the host costs.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#ifdef SHIMMY_CUDA_EXPERIMENTS
#include <chrono>
#include <cstdio>
#include <cstdlib>
#endif

namespace shimmy::cuda {

class StepTimer {
 public:
  // Phase boundary i = 0 (start) .. 4 (end).
  void mark(int i) {
#ifdef SHIMMY_CUDA_EXPERIMENTS
    t_[i] = std::chrono::steady_clock::now();
#else
    (void)i;
#endif
  }
  void done(int64_t n) {
#ifdef SHIMMY_CUDA_EXPERIMENTS
    static const bool on = std::getenv("SHIMMY_HOSTTIME") != nullptr;
    static double sum[4];
    static int64_t count = 0, last_n = -1;
    if (!on) return;
    if (n != last_n) count = 0, last_n = n, sum[0] = sum[1] = sum[2] = sum[3] = 0;
    for (int i = 0; i < 4; ++i)
      sum[i] += std::chrono::duration<double, std::micro>(t_[i + 1] - t_[i]).count();
    if (++count < 256) return;
    std::fprintf(stderr,
                 "[hosttime n=%lld] us a step: pack+upload %.1f, launch+copy calls %.1f, wait "
                 "%.1f, host copy %.1f\n",
                 (long long)n, sum[0] / 256, sum[1] / 256, sum[2] / 256, sum[3] / 256);
    count = 0, sum[0] = sum[1] = sum[2] = sum[3] = 0;
#else
    (void)n;
#endif
  }

 private:
#ifdef SHIMMY_CUDA_EXPERIMENTS
  std::chrono::steady_clock::time_point t_[5];
#endif
};

// SHIMMY_CUDA_REPLAY (above): `len` is the slot's length after the step.
inline void replay_experiment(cudaGraphExec_t g, cudaStream_t s, int64_t n, int64_t len) {
#ifdef SHIMMY_CUDA_EXPERIMENTS
  static const int k = [] {
    const char* e = std::getenv("SHIMMY_CUDA_REPLAY");
    return e ? std::atoi(e) : 0;
  }();
  static int64_t reported = -1;
  if (k <= 0 || reported == n || len <= 32) return;
  reported = n;
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaEventRecord(e0, s);
  for (int r = 0; r < k; ++r) cudaGraphLaunch(g, s);
  cudaEventRecord(e1, s);
  cudaEventSynchronize(e1);
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  std::fprintf(stderr, "[replay n=%lld] %.1f us a step (%d replays)\n", (long long)n,
               1000.0 * ms / k, k);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
#else
  (void)g, (void)s, (void)n, (void)len;
#endif
}

}  // namespace shimmy::cuda
