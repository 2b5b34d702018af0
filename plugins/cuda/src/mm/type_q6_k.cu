// The Q6_K weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q6_k() { return Launcher<kQ6_K>::ops(); }

}  // namespace shimmy::cuda::mm
