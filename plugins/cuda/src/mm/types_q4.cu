// Weight kernels (kernels.cuh) of Q4_0, Q4_1 and IQ4_NL in one translation unit: the
// front end (headers, host code) costs about as much as one type's device code.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_q4_0() {
  return Launcher<kQ4_0>::ops();
}
const TypeOps& ops_q4_1() {
  return Launcher<kQ4_1>::ops();
}
const TypeOps& ops_iq4_nl() {
  return Launcher<kIQ4_NL>::ops();
}

}  // namespace shimmy::cuda::mm
