// CPU weight-type kernels: dequantization, activation quantization, dot products and the
// tiled matrix product, for every weight type the engine computes with.
//
// Design ("dispatch on weight type once"): the model loader calls kernels_for(type) once
// per weight tensor and keeps the returned WeightKernels pointer. Hot loops then call
// plain function pointers; there is no switch on the type per row or per element. The
// instruction set (scalar or AVX2+FMA+F16C) is detected from CPUID once, on first use.
//
// Numerics mirror llama.cpp's CPU path, because the conformance references were made
// with it: before a product with quantized weights, each activation row is itself
// quantized ("act" type below), and the dot product is an integer dot per block times
// the two block scales:
//
//   weight type                      activation type   per-block product
//   Q4_0 Q5_0 Q8_0 IQ4_NL            Q8_0              d_w*d_a * Σ q_w*q_a
//   Q4_1 Q5_1                        Q8_1              d_w*d_a * Σ q_w*q_a + m_w*s_a
//   Q2_K Q3_K Q4_K Q5_K Q6_K         Q8_K              d*d_a*Σ_j sc_j Σ q*q_a - dmin*d_a*Σ_j
//   m_j*bsum_j F16                              F16 (rounded)     Σ w*a in float (FMA) BF16 BF16
//   (rounded)    Σ w*a in float (FMA) F32                              F32               Σ w*a in
//   float (FMA)
//
// Activation formats (x = one activation row of n floats):
//   Q8_0: blocks of 32 {f16 d; int8 q[32]}, d = amax/127, q = round-half-even(x*127/amax)
//   Q8_1: blocks of 32 {f16 d; f16 s; int8 q[32]}, as Q8_0 plus s = d*Σq
//   Q8_K: blocks of 256 {f32 d; int8 q[256]; int16 bsums[16]}, d = max/-127 where max is
//         the value of largest magnitude, bsums[j] = Σ of q[16j..16j+15]
//   F16/BF16: each value rounded (to nearest even) to f16/bf16, but STORED as f32 (4 bytes a
//         value) so the tiled product converts only the weights. F32: a plain copy.
//
// Batch invariance: matmul_rows computes every (activation row, weight row) pair with the
// very same sequence of float operations as vec_dot (same per-block accumulation order,
// same final horizontal sum), whatever m is and whichever tile the pair falls in. Output
// for one token therefore never depends on how many tokens share the batch.
//
// Shapes and strides: a weight matrix is [rows, n] row-major in its block format, row
// stride in bytes (normally row_bytes(type, n)); activations are [m, n] in the act format,
// row stride in bytes (normally act_row_bytes(kernels, n)); outputs are [m, rows] floats
// with a row stride in floats. n must be a multiple of the weight block size (32 or 256);
// kernels_for() callers check that once at load time with weight_row_bytes().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "gguf/types.h"
#include "util/result.h"

namespace shimmy::quant {

enum class ActType { F32, F16, BF16, Q8_0, Q8_1, Q8_K };
enum class Isa { Scalar, Avx2 };

const char* act_type_name(ActType t);
const char* isa_name(Isa isa);

struct WeightKernels {
  gguf::TensorType type;
  Isa isa;
  int64_t block;       // weights per block (1 for float types, 32, or 256)
  size_t block_bytes;  // bytes per weight block
  ActType act;
  int64_t act_block;       // activations per act block (same as `block`, or 1)
  size_t act_block_bytes;  // bytes per act block

  // dst[0..n) = exact dequantized weights of one row; n a multiple of `block`.
  void (*dequantize)(const void* src, float* dst, int64_t n);
  // out = act-format row of x[0..n); out holds act_row_bytes(n) bytes.
  void (*quantize_act)(const float* x, void* out, int64_t n);
  // Σ w_i*a_i for one weight row and one act row of n values.
  float (*vec_dot)(int64_t n, const void* w, const void* a);
  // out[i*ldo + j] = vec_dot(n, W row j, A row i) for i < na, j < nw (any na, nw >= 0):
  // the building block of matmul_rows, bit-identical to vec_dot per pair.
  void (*tile)(int64_t n, const void* w, size_t w_stride, int64_t nw, const void* a,
               size_t a_stride, int64_t na, float* out, int64_t ldo);
  // True when `tile` blocks over weight rows itself (it unpacks bands into scratch and
  // prepares the act rows once per call): matmul_rows then hands it the whole range.
  bool tile_blocks;

  // Row-interleaved layouts (packed.h). group_rows = 1: the GGUF layout above. For a
  // packed table group_rows = 8, the weight pointer is the repacked matrix, vec_dot and
  // dequantize are null, and `tile` takes whole groups.
  int64_t group_rows = 1;
  // On a GGUF-layout table: the packed table of the same type and ISA (null if none).
  const WeightKernels* packed = nullptr;
};

// Best instruction set of this CPU (AVX2 needs AVX2, FMA, F16C and BMI2). The
// environment variable SHIMMY_CPU_ISA=scalar forces the scalar kernels.
Isa best_isa();

// Kernels for a weight type with the best ISA; nullptr if the type is not supported.
const WeightKernels* kernels_for(gguf::TensorType type);
// Kernels for a given ISA (tests compare ISAs); nullptr if unsupported type or the CPU
// lacks the ISA.
const WeightKernels* kernels_for(gguf::TensorType type, Isa isa);

// Bytes of one weight row / one act row of n values; nullopt if n is not a multiple of
// the block size (or overflows).
std::optional<size_t> weight_row_bytes(const WeightKernels& k, int64_t n);
std::optional<size_t> act_row_bytes(const WeightKernels& k, int64_t n);

// out[i*ldo + r] = Σ_k W[r][k] * A[i][k] for i in [0, m), r in [r0, r1).
//   W: [rows, n] weights, w_stride bytes per row;  A: [m, n] act rows, a_stride bytes per row.
// Tiled (4 act rows × 2 weight rows, or 1 × 4 when m is small) and blocked so a band of
// weight rows stays in cache while all m act rows pass over it; with m >= 4 the Q4_0,
// Q5_0, Q8_0, IQ4_NL and K-type tiles unpack each band once into per-thread scratch, and
// the m = 1 tiles prefetch the next tile's rows (decode streams from DRAM). Use it for
// decode too (m = 1): its 1 × 4 tiles are faster than calling vec_dot row by row. The
// caller splits [0, rows) into ranges across its threads. Bit-identical to vec_dot per
// element.
void matmul_rows(const WeightKernels& k, int64_t n, const void* W, size_t w_stride, const void* A,
                 size_t a_stride, int64_t m, float* out, int64_t ldo, int64_t r0, int64_t r1);

// ---- checked entry points by type (tools, tests, loaders; not for hot loops) ----------

// Exact dequantization of one row of any supported weight type (and Q8_0 / Q8_1 / Q8_K
// act blocks): dst[0..n).
Status dequantize_row(gguf::TensorType type, const void* src, float* dst, int64_t n);

// Weight quantization of one row (benchmark-model generator, round-trip tests):
// F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL Q2_K Q3_K Q4_K Q5_K Q6_K.
// dst holds row_bytes(type, n) bytes.
Status quantize_row(gguf::TensorType type, const float* src, void* dst, int64_t n);

}  // namespace shimmy::quant
