// The Q5_K weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q5_k() { return Launcher<kQ5_K>::ops(); }

}  // namespace shimmy::cuda::mm
