// Weight kernels (kernels.cuh) of F32, F16 and BF16 in one translation unit: the
// front end (headers, host code) costs about as much as one type's device code.
#include "mm/kernels.cuh"

namespace shimmy::cuda::mm {

const TypeOps& ops_f32() {
  return Launcher<kF32>::ops();
}
const TypeOps& ops_f16() {
  return Launcher<kF16>::ops();
}
const TypeOps& ops_bf16() {
  return Launcher<kBF16>::ops();
}

}  // namespace shimmy::cuda::mm
