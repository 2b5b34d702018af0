// Device discovery through the NVIDIA driver API, loaded with dlopen("libcuda.so.1") so the
// plugin loads (and says why not) on machines without a driver. Never spawns nvidia-smi.
#pragma once

#include <cstdint>

#include "plugin_abi.h"

namespace shimmy::cuda {

// Fills out (ABI semantics: n_devices = 0 plus a reason when nothing is usable). Devices
// that are present but unusable (compute capability below 8.0) are left out and named in
// `reason`. Thread-safe; each call re-reads free memory.
void probe(ShimmyProbe* out);

// CUDA device ordinal of the probe's device index, or -1 (probes first if needed).
int device_ordinal(int32_t index);

}  // namespace shimmy::cuda
