// The Q2_K weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q2_k() { return Launcher<kQ2_K>::ops(); }

}  // namespace shimmy::cuda::mm
