// launch.h: whether programmatic dependent launch is on for the current device.
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "launch.h"

namespace shimmy::cuda {

bool pdl_enabled() {
  constexpr int kMaxDevices = 64;
  static int state[kMaxDevices] = {};  // 0 unknown, 1 off, 2 on
  static std::mutex mu;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return false;
  std::lock_guard<std::mutex> lock(mu);
  if (state[dev] == 0) {
    int major = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    const char* env = std::getenv("SHIMMY_CUDA_PDL");
    state[dev] = (major >= 9 && !(env && std::strcmp(env, "0") == 0)) ? 2 : 1;
  }
  return state[dev] == 2;
}

}  // namespace shimmy::cuda
