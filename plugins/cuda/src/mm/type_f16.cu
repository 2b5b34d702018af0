// The F16 weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_f16() { return Launcher<kF16>::ops(); }

}  // namespace shimmy::cuda::mm
