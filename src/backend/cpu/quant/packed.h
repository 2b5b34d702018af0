// Row-interleaved ("packed") weight layouts for the CPU (Q4_0, Q8_0, F16, Q4_K, Q6_K).
//
// Why: in the GGUF layout each weight row is a run of blocks, so a SIMD dot product works
// on one row at a time and ends with a horizontal sum; a prompt-sized product then spends
// ~7 vector ops per (act row, weight row, 32 values). Interleaving 8 rows puts one row in
// each 32-bit lane: one broadcast act chunk meets the same 4 values of 8 rows in a single
// maddubs, the 8 block sums come out in one register, and the scale multiply-add serves
// 8 rows at once (~3 ops per act row, weight row and 32 values; the weights are unpacked
// once per block and reused by up to 4 act rows).
//
// Layout of one group of 8 rows, n values per row, block after block (nb = n/32 blocks;
// K types: n/256 super-blocks):
//   Q4_0 (144 bytes a block, as 8 GGUF blocks): f16 d[8] (row j's scale), then 4 vectors
//        of 32 bytes; byte 4j+t of vector v is byte 4v+t of row j's qs, whose low nibble
//        is value 4v+t and high nibble value 16+4v+t.
//   Q8_0 (272 bytes): f16 d[8], then 8 vectors of 32 bytes; byte 4j+t of vector c is
//        value 4c+t of row j.
//   F16 (AVX2 only; packed_f16_avx2.cpp): k-major, value k of the 8 rows at 16·k bytes.
//   Q4_K / Q6_K (packed_k.cpp; 8 super-blocks of 256 values a group block): the 8 rows'
//        super-blocks cut into fields, each field stored unit by unit, unit u of row j at
//        (8u + j) · unit bytes: Q4_K (1152 bytes) d[8], dmin[8] (f16), then the 12 scale
//        bytes as 3 words, then qs as 32 words; Q6_K (1680 bytes) d[8], the 16 int8
//        scales as 4 words, ql as 32 words, qh as 16 words. A vector of 32 bytes is one
//        word (4 bytes: 4 or 8 values) of each of the 8 rows.
// A packed matrix has the same size as the GGUF one; group g starts at g * 8 * row_bytes.
//
// Numerics (F16: see packed_f16_avx2.cpp, one FMA chain over k): each (act row, weight
// row) result is Σ over blocks in order of (d_w*d_a) * float(isum) (K types: the scalar
// vec_dot's per-super-block expression over exact integer sums), multiplies then an add
// (no FMA), the very operations of the scalar vec_dot. Packed results are therefore
// bit-identical to the scalar kernels, whatever m is and whatever ISA runs them: batch
// invariant by construction. (The GGUF-layout AVX2 K kernels accumulate in 8 FMA lanes;
// a packed K model therefore rounds like the scalar kernels, not like those.)
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/quant/kernels.h"

namespace shimmy::quant {

// Whether a [rows, n] matrix of GGUF-layout kernels `k` can be packed (type with a
// packed layout, rows a multiple of 8).
bool can_pack(const WeightKernels& k, int64_t rows, int64_t n);

// Repacks rows [0, rows) (GGUF layout, src_stride bytes apart) into dst, which holds
// rows * row_bytes(type, n) bytes. Rows are a multiple of 8 (can_pack).
void pack_rows(const WeightKernels& k, const void* src, size_t src_stride, int64_t rows, int64_t n,
               void* dst);

}  // namespace shimmy::quant
