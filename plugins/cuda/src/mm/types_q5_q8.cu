// Weight kernels (kernels.cuh) of Q5_0, Q5_1 and Q8_0 in one translation unit: the
// front end (headers, host code) costs about as much as one type's device code.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q5_0() {
  return Launcher<kQ5_0>::ops();
}
const TypeOps& ops_q5_1() {
  return Launcher<kQ5_1>::ops();
}
const TypeOps& ops_q8_0() {
  return Launcher<kQ8_0>::ops();
}

}  // namespace shimmy::cuda::mm
