// Weight kernels (kernels.cuh) of Q2_K and Q3_K in one translation unit: the
// front end (headers, host code) costs about as much as one type's device code.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q2_k() {
  return Launcher<kQ2_K>::ops();
}
const TypeOps& ops_q3_k() {
  return Launcher<kQ3_K>::ops();
}

}  // namespace shimmy::cuda::mm
