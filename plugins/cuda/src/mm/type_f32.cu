// The F32 weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_f32() { return Launcher<kF32>::ops(); }

}  // namespace shimmy::cuda::mm
