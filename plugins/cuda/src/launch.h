// Launches of the layer kernels as programmatic dependent launches (sm_90+): the kernel may
// be scheduled before its predecessor finishes and waits for it with pdl_wait()
// (device_util.cuh), which hides most of the ~2 us gap between small kernels of a decode
// graph. Falls back to a plain launch before sm_90 or with SHIMMY_CUDA_PDL=0 (A/B timing).
#pragma once

#include <cuda_runtime.h>

namespace shimmy::cuda {

// Whether the current device takes programmatic dependent launches (cached per device).
bool pdl_enabled();

template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);
}

}  // namespace shimmy::cuda
