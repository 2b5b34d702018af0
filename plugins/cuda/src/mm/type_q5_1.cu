// The Q5_1 weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q5_1() { return Launcher<kQ5_1>::ops(); }

}  // namespace shimmy::cuda::mm
