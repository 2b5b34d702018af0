// The Q4_1 weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q4_1() { return Launcher<kQ4_1>::ops(); }

}  // namespace shimmy::cuda::mm
