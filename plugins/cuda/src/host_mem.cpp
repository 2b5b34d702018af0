// host_mem.h: a map of the live blocks by start address.
#include "host_mem.h"

#include <cuda_runtime.h>

#include <map>
#include <mutex>

namespace shimmy::cuda {
namespace {

std::mutex& blocks_mu() {
  static std::mutex m;
  return m;
}
std::map<const char*, uint64_t>& blocks() {
  static std::map<const char*, uint64_t> b;
  return b;
}

}  // namespace

void* host_alloc(uint64_t bytes) {
  void* p = nullptr;
  if (cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();  // a failed allocation is not the stream's error
    return nullptr;
  }
  std::lock_guard<std::mutex> lk(blocks_mu());
  blocks()[static_cast<const char*>(p)] = bytes;
  return p;
}

void host_free(void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lk(blocks_mu());
    if (blocks().erase(static_cast<const char*>(p)) == 0) return;
  }
  cudaFreeHost(p);
}

bool in_host_block(const void* p, uint64_t bytes) {
  const char* q = static_cast<const char*>(p);
  std::lock_guard<std::mutex> lk(blocks_mu());
  auto it = blocks().upper_bound(q);
  if (it == blocks().begin()) return false;
  --it;
  return q + bytes <= it->first + it->second;
}

}  // namespace shimmy::cuda
