// Weight kernels (kernels.cuh) of Q4_K, Q5_K and Q6_K in one translation unit: the
// front end (headers, host code) costs about as much as one type's device code.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q4_k() {
  return Launcher<kQ4_K>::ops();
}
const TypeOps& ops_q5_k() {
  return Launcher<kQ5_K>::ops();
}
const TypeOps& ops_q6_k() {
  return Launcher<kQ6_K>::ops();
}

}  // namespace shimmy::cuda::mm
