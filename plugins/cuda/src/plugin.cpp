// The plugin's one exported symbol, shimmy_backend_api (plugin_abi.h): the ABI table.
// Every entry catches C++ exceptions, so none crosses the C boundary.
#include <cstdio>
#include <exception>

#include "backend.h"
#include "host_mem.h"
#include "probe.h"

namespace {

using namespace shimmy::cuda;

#define SHIMMY_GUARD(...)                                                   \
  try {                                                                     \
    __VA_ARGS__                                                             \
  } catch (const std::exception& e) {                                       \
    write_err(err, err_len, e.what());                                      \
    return 1;                                                               \
  } catch (...) {                                                           \
    write_err(err, err_len, "unexpected C++ exception in the CUDA plugin"); \
    return 1;                                                               \
  }

void write_err(char* err, size_t err_len, const char* msg) {
  if (err && err_len) std::snprintf(err, err_len, "CUDA plugin: %s", msg);
}

void api_probe(ShimmyProbe* out) {
  try {
    probe(out);
  } catch (...) {
    out->n_devices = 0;
    std::snprintf(out->reason, sizeof out->reason, "probing failed with a C++ exception");
  }
}

int32_t api_supports_type(uint32_t t) {
  return backend_supports_type(t) ? 1 : 0;
}

int32_t api_slice_bytes(int32_t device, const ShimmyModelDesc* desc, ShimmySliceBytes* out,
                        char* err, size_t err_len) {
  SHIMMY_GUARD(return backend_slice_bytes(desc, out, err, err_len);)
}

int32_t api_create(int32_t device, const ShimmyModelDesc* desc, ShimmyContext** out, char* err,
                   size_t err_len) {
  SHIMMY_GUARD({
    *out = nullptr;
    const int ordinal = device_ordinal(device);
    if (ordinal < 0) {
      ShimmyProbe p;
      probe(&p);
      if (err && err_len) {
        std::snprintf(err, err_len, "CUDA device %d is not usable (%d usable)%s%s", device,
                      p.n_devices, p.reason[0] ? ": " : "", p.reason);
      }
      return 1;
    }
    return context_create(ordinal, desc, out, err, err_len);
  })
}

void api_destroy(ShimmyContext* ctx) {
  try {
    context_destroy(ctx);
  } catch (...) {
  }
}

int32_t api_eval(ShimmyContext* ctx, const ShimmyBatch* batch, char* err, size_t err_len) {
  SHIMMY_GUARD(return context_eval(ctx, batch, err, err_len);)
}

int32_t api_seq_truncate(ShimmyContext* ctx, int32_t seq, int64_t pos, char* err, size_t err_len) {
  SHIMMY_GUARD(return context_truncate(ctx, seq, pos, err, err_len);)
}

void* api_host_alloc(uint64_t bytes) {
  try {
    return host_alloc(bytes);
  } catch (...) {
    return nullptr;
  }
}

void api_host_free(void* p) {
  try {
    host_free(p);
  } catch (...) {
  }
}

const ShimmyBackendApi kApi = {
    SHIMMY_BACKEND_ABI_VERSION,
    "cuda",
    SHIMMY_CUDA_PLUGIN_DESCRIPTION,
    api_probe,
    api_supports_type,
    api_slice_bytes,
    api_create,
    api_destroy,
    api_eval,
    api_seq_truncate,
    api_host_alloc,
    api_host_free,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const ShimmyBackendApi* shimmy_backend_api(
    uint32_t core_abi_version) {
  return core_abi_version == SHIMMY_BACKEND_ABI_VERSION ? &kApi : nullptr;
}
