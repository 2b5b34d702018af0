// The Q8_0 weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q8_0() { return Launcher<kQ8_0>::ops(); }

}  // namespace shimmy::cuda::mm
