// The Q3_K weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q3_k() { return Launcher<kQ3_K>::ops(); }

}  // namespace shimmy::cuda::mm
