// The BF16 weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_bf16() { return Launcher<kBF16>::ops(); }

}  // namespace shimmy::cuda::mm
