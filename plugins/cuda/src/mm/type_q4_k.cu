// The Q4_K weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q4_k() { return Launcher<kQ4_K>::ops(); }

}  // namespace shimmy::cuda::mm
