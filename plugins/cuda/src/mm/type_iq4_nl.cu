// The IQ4_NL weight kernels (kernels.cuh), in a translation unit of their own.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_iq4_nl() { return Launcher<kIQ4_NL>::ops(); }

}  // namespace shimmy::cuda::mm
