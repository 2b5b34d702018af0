#include "probe.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <mutex>

// Driver API types as in cuda.h, declared here so this file needs no CUDA headers or libs.
namespace {

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;

constexpr int kAttrMemClockKHz = 36, kAttrBusWidthBits = 37, kAttrCcMajor = 75, kAttrCcMinor = 76;
// The CUDA version this plugin was built with (CUDA_VERSION of the toolkit, e.g. 13000).
#ifndef SHIMMY_CUDA_BUILD_VERSION
#error "SHIMMY_CUDA_BUILD_VERSION must be defined by the build"
#endif
constexpr int kBuiltFor = SHIMMY_CUDA_BUILD_VERSION;
constexpr int kMinCcMajor = 8;

struct Driver {
  void* lib = nullptr;
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDriverGetVersion)(int*) = nullptr;
  CUresult (*cuDeviceGetCount)(int*) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*cuDeviceGetName)(char*, int, CUdevice) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice) = nullptr;
  CUresult (*cuDeviceTotalMem)(size_t*, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*cuCtxGetCurrent)(CUcontext*) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext) = nullptr;
  CUresult (*cuMemGetInfo)(size_t*, size_t*) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char**) = nullptr;
};

template <typename F>
bool sym(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  return *out != nullptr;
}

// Loads libcuda.so.1 once; returns null with a reason if it cannot.
const Driver* driver(char* reason, size_t len) {
  static Driver d;
  static bool tried = false;
  static char why[256] = "";
  if (!tried) {
    tried = true;
    d.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!d.lib) {
      std::snprintf(why, sizeof why,
                    "libcuda.so.1 not found: no NVIDIA driver is installed (install the NVIDIA "
                    "driver; the CUDA toolkit alone is not enough)");
    } else {
      const bool ok = sym(d.lib, "cuInit", &d.cuInit) &&
                      sym(d.lib, "cuDriverGetVersion", &d.cuDriverGetVersion) &&
                      sym(d.lib, "cuDeviceGetCount", &d.cuDeviceGetCount) &&
                      sym(d.lib, "cuDeviceGet", &d.cuDeviceGet) &&
                      sym(d.lib, "cuDeviceGetName", &d.cuDeviceGetName) &&
                      sym(d.lib, "cuDeviceGetAttribute", &d.cuDeviceGetAttribute) &&
                      sym(d.lib, "cuDeviceTotalMem_v2", &d.cuDeviceTotalMem) &&
                      sym(d.lib, "cuDevicePrimaryCtxRetain", &d.cuDevicePrimaryCtxRetain) &&
                      (sym(d.lib, "cuDevicePrimaryCtxRelease_v2", &d.cuDevicePrimaryCtxRelease) ||
                       sym(d.lib, "cuDevicePrimaryCtxRelease", &d.cuDevicePrimaryCtxRelease)) &&
                      sym(d.lib, "cuCtxGetCurrent", &d.cuCtxGetCurrent) &&
                      sym(d.lib, "cuCtxSetCurrent", &d.cuCtxSetCurrent) &&
                      sym(d.lib, "cuMemGetInfo_v2", &d.cuMemGetInfo);
      sym(d.lib, "cuGetErrorString", &d.cuGetErrorString);  // optional
      if (!ok) {
        std::snprintf(
            why, sizeof why,
            "libcuda.so.1 lacks driver API functions this plugin needs: the NVIDIA driver "
            "is too old or broken (reinstall a current driver)");
        d.lib = nullptr;
      }
    }
  }
  if (!d.lib) {
    std::snprintf(reason, len, "%s", why);
    return nullptr;
  }
  return &d;
}

// A sentence for a failed driver call, with what the user can do about the common codes.
void explain(const Driver& d, const char* call, CUresult r, char* out, size_t len) {
  const char* hint = nullptr;
  switch (r) {
    case 999:
      hint =
          "unknown error, typical after suspend/resume: reload the nvidia_uvm module "
          "(sudo rmmod nvidia_uvm && sudo modprobe nvidia_uvm) or reboot";
      break;
    case 100:
      hint =
          "no CUDA-capable device is detected: check that the GPU is visible here "
          "(CUDA_VISIBLE_DEVICES, a container's --gpus flag, /dev/nvidia* present)";
      break;
    case 35:
      hint = "the NVIDIA driver is older than the CUDA runtime: update the driver";
      break;
    case 34:
      hint =
          "libcuda.so.1 is the CUDA toolkit's stub library, not the driver: install the "
          "NVIDIA driver, or remove the stubs directory from LD_LIBRARY_PATH";
      break;
    case 46:
      hint =
          "the GPU is busy or unavailable (exclusive-process compute mode, or in use): "
          "free it or change the compute mode";
      break;
    case 101:
      hint = "invalid device ordinal: check CUDA_VISIBLE_DEVICES";
      break;
    case 304:
      hint =
          "an operating-system call failed: check the permissions of /dev/nvidia* and "
          "that the nvidia kernel modules are loaded";
      break;
    case 803:
      hint =
          "the driver library and the loaded kernel module have different versions "
          "(a driver update without a reboot): reboot";
      break;
    case 804:
      hint =
          "the CUDA forward-compatibility package does not support this GPU: remove it "
          "from the library path";
      break;
    case 2:
      hint = "out of memory while creating a context: free GPU memory";
      break;
    default:
      break;
  }
  const char* desc = nullptr;
  if (!hint && d.cuGetErrorString && d.cuGetErrorString(r, &desc) == 0 && desc) hint = desc;
  std::snprintf(out, len, "%s failed with CUDA error %d (%s)", call, r,
                hint ? hint : "no description");
}

std::mutex g_mu;
int g_ordinals[SHIMMY_MAX_DEVICES];
int g_n_usable = -1;  // -1: never probed

void probe_locked(ShimmyProbe* out) {
  std::memset(out, 0, sizeof *out);
  g_n_usable = 0;
  const Driver* d = driver(out->reason, sizeof out->reason);
  if (!d) return;
  CUresult r = d->cuInit(0);
  int drv = 0;
  d->cuDriverGetVersion(&drv);
  if (drv > 0) {
    std::snprintf(out->runtime, sizeof out->runtime, "CUDA driver %d.%d, plugin built for %d.%d",
                  drv / 1000, (drv % 1000) / 10, kBuiltFor / 1000, (kBuiltFor % 1000) / 10);
  } else {
    std::snprintf(out->runtime, sizeof out->runtime, "CUDA driver unknown, plugin built for %d.%d",
                  kBuiltFor / 1000, (kBuiltFor % 1000) / 10);
  }
  if (r != 0) {
    explain(*d, "cuInit", r, out->reason, sizeof out->reason);
    return;
  }
  // Minor-version compatibility: any driver of the same major version runs this plugin's
  // machine code; an older major version cannot.
  if (drv / 1000 < kBuiltFor / 1000) {
    std::snprintf(out->reason, sizeof out->reason,
                  "NVIDIA driver too old: it supports CUDA %d.%d, the plugin needs CUDA %d.%d "
                  "(update the driver)",
                  drv / 1000, (drv % 1000) / 10, kBuiltFor / 1000, (kBuiltFor % 1000) / 10);
    return;
  }
  int count = 0;
  r = d->cuDeviceGetCount(&count);
  if (r != 0) {
    explain(*d, "cuDeviceGetCount", r, out->reason, sizeof out->reason);
    return;
  }
  if (count == 0) {
    explain(*d, "cuDeviceGetCount", 100, out->reason, sizeof out->reason);
    return;
  }
  char skipped[384] = "";
  for (int i = 0; i < count && out->n_devices < SHIMMY_MAX_DEVICES; ++i) {
    CUdevice dev = 0;
    if (d->cuDeviceGet(&dev, i) != 0) continue;
    ShimmyDeviceInfo info{};
    if (d->cuDeviceGetName(info.name, sizeof info.name, dev) != 0) {
      std::snprintf(info.name, sizeof info.name, "CUDA device %d", i);
    }
    d->cuDeviceGetAttribute(&info.cc_major, kAttrCcMajor, dev);
    d->cuDeviceGetAttribute(&info.cc_minor, kAttrCcMinor, dev);
    if (info.cc_major < kMinCcMajor) {
      const size_t used = std::strlen(skipped);
      std::snprintf(skipped + used, sizeof skipped - used,
                    "%s%s has compute capability %d.%d, the plugin needs 8.0 or newer",
                    used ? "; " : "", info.name, info.cc_major, info.cc_minor);
      continue;
    }
    size_t total = 0;
    d->cuDeviceTotalMem(&total, dev);
    info.total_bytes = total;
    int clock_khz = 0, bus_bits = 0;
    if (d->cuDeviceGetAttribute(&clock_khz, kAttrMemClockKHz, dev) == 0 &&
        d->cuDeviceGetAttribute(&bus_bits, kAttrBusWidthBits, dev) == 0 && clock_khz > 0 &&
        bus_bits > 0) {
      // Double data rate: two transfers per clock.
      info.mem_bandwidth_gbs = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
    }
    // Free memory needs a context: retain the primary one (shared with the runtime), read,
    // release, and leave the thread's current context as it was.
    CUcontext prev = nullptr, ctx = nullptr;
    d->cuCtxGetCurrent(&prev);
    r = d->cuDevicePrimaryCtxRetain(&ctx, dev);
    if (r != 0) {
      const size_t used = std::strlen(skipped);
      char why[256];
      explain(*d, "cuDevicePrimaryCtxRetain", r, why, sizeof why);
      std::snprintf(skipped + used, sizeof skipped - used, "%s%s: %s", used ? "; " : "", info.name,
                    why);
      continue;
    }
    size_t free_b = 0, total_b = 0;
    if (d->cuCtxSetCurrent(ctx) == 0 && d->cuMemGetInfo(&free_b, &total_b) == 0) {
      info.free_bytes = free_b;
    }
    d->cuCtxSetCurrent(prev);
    d->cuDevicePrimaryCtxRelease(dev);
    g_ordinals[out->n_devices] = i;
    out->devices[out->n_devices++] = info;
  }
  g_n_usable = out->n_devices;
  if (out->n_devices == 0) {
    std::snprintf(out->reason, sizeof out->reason, "no usable CUDA device: %s", skipped);
  } else if (skipped[0]) {
    std::snprintf(out->reason, sizeof out->reason, "skipped: %s", skipped);
  }
}

}  // namespace

namespace shimmy::cuda {

void probe(ShimmyProbe* out) {
  std::lock_guard<std::mutex> lock(g_mu);
  probe_locked(out);
}

int device_ordinal(int32_t index) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_n_usable < 0) {
    static ShimmyProbe p;
    probe_locked(&p);
  }
  return index >= 0 && index < g_n_usable ? g_ordinals[index] : -1;
}

}  // namespace shimmy::cuda
