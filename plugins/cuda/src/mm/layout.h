// Device layout of weight rows for the matmul kernels (host repacker and kernels share it).
//
// Why a repack: every kernel feeds the tensor cores (mma.sync m16n8k16) with weight
// fragments decoded straight from 16-byte loads. In the fragment of a 16-wide k slice, lane
// t of a quad holds the values at slice offsets 4t..4t+3. The kernels permute k inside
// each 32-value group so that lane t takes group values {4t..4t+3} (first 16-slice, "h = 0")
// and {16+4t..16+4t+3} (second, "h = 1"); x is read with the same permutation, so the sum
// is unchanged. A row is cut into steps (128 values; 32 for the float types) and each step
// stores, for each quad lane t, the fields of its 8 values of each group contiguously,
// behind the per-block scales. Loads are then aligned, 8 or 16 bytes wide and coalesced,
// and no byte is fetched twice.
//
// One row = 4 arrays, each starting 16-byte aligned:
//   main [nsteps][4 lanes][main_lane bytes]   quant bits; lanes interleaved by 16-byte piece:
//                                             piece j of lane t at j*64 + 16t (8-byte
//                                             lanes: at 8t)
//   laux [nsteps][4 lanes][laux_lane bytes]   extra bits (5th bit, Q3_K high bit, Q6_K top 2)
//   sa   [nrec][sa bytes]                     scales of the step (or super-block)
//   sb   [nrec][sb bytes]                     super-block d / dmin where sa has no room
// nrec = nsteps, or nsteps / 2 for K types (records per 256-value super-block).
// Columns are padded with zero bytes to a multiple of 128: a padded value decodes to 0.
//
// Value fields inside a lane (v = 16h + 4t + e is the value's index in its group G,
// p = 2h + (e >> 1) its pair, "second" = e & 1):
//   nibble word (u32 per group)   4-bit field at bit 4p + 16*second
//   byte word (IQ4_NL)            4-bit index at bit 8p + 4*second
//   bit word (u32 per step)       1-bit field at bit 4G + p + 16*second
//   crumb words (u32 per 2 groups) 2-bit field of group G in word G/2 at bit
//                                  2(4(G&1) + p) + 16*second
//   Q8_0: byte 8G + 4h + e.  F16/BF16: element 4h + e.  F32: element 4h + e (= GGUF order).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ggml_types.h"

#if defined(__CUDACC__)
#define SHIMMY_MM_HD __host__ __device__
#else
#define SHIMMY_MM_HD
#endif

namespace shimmy::cuda::mm {

// Weight types by their ggml ids: GgmlType (ggml_types.h, one table for the plugin).

struct Format {
  int step;         // values per step: 128, or 32 for F32/F16/BF16
  int main_lane;    // main bytes per lane per step: 8, 16 or 32
  int laux_lane;    // lane-aux bytes per lane per step: 0, 4 or 8
  int sa;           // bytes per sa record: 0, 8 or 16
  int sb;           // bytes per sb record: 0 or 4
  bool super;       // records per super-block (two steps)
  int block;        // GGUF block size in values (cols must be a multiple of it)
  int block_bytes;  // GGUF bytes per block
};

// clang-format off
inline constexpr Format kFmtF32{32,  32, 0, 0,  0, false, 1, 4};
inline constexpr Format kFmtF16{32,  16, 0, 0,  0, false, 1, 2};
inline constexpr Format kFmtBF16{32,  16, 0, 0,  0, false, 1, 2};
inline constexpr Format kFmtQ4_0{128, 16, 0, 8,  0, false, 32, 18};   // sa: 4 x f16 d
inline constexpr Format kFmtQ4_1{128, 16, 0, 16, 0, false, 32, 20};   // sa: 4 x (f16 d, f16 m)
inline constexpr Format kFmtQ5_0{128, 16, 4, 8,  0, false, 32, 22};
inline constexpr Format kFmtQ5_1{128, 16, 4, 16, 0, false, 32, 24};
inline constexpr Format kFmtQ8_0{128, 32, 0, 8,  0, false, 32, 34};
inline constexpr Format kFmtIQ4_NL{128, 16, 0, 8,  0, false, 32, 18};
inline constexpr Format kFmtQ2_K{128, 8,  0, 16, 4, true, 256, 84};   // sa: scales[16]; sb: d, dmin
inline constexpr Format kFmtQ3_K{128, 8,  4, 16, 0, true, 256, 110};   // sa: scales[12], d, 0
inline constexpr Format kFmtQ4_K{128, 16, 0, 16, 0, true, 256, 144};   // sa: d, dmin, scales[12]
inline constexpr Format kFmtQ5_K{128, 16, 4, 16, 0, true, 256, 176};
inline constexpr Format kFmtQ6_K{128, 16, 8, 16, 4, true, 256, 210};   // sa: scales[16]; sb: d, 0
// clang-format on

// Format of a ggml type id, nullptr when the kernels do not compute it.
inline const Format* format_of(uint32_t type) {
  switch (type) {
    case kF32:
      return &kFmtF32;
    case kF16:
      return &kFmtF16;
    case kBF16:
      return &kFmtBF16;
    case kQ4_0:
      return &kFmtQ4_0;
    case kQ4_1:
      return &kFmtQ4_1;
    case kQ5_0:
      return &kFmtQ5_0;
    case kQ5_1:
      return &kFmtQ5_1;
    case kQ8_0:
      return &kFmtQ8_0;
    case kIQ4_NL:
      return &kFmtIQ4_NL;
    case kQ2_K:
      return &kFmtQ2_K;
    case kQ3_K:
      return &kFmtQ3_K;
    case kQ4_K:
      return &kFmtQ4_K;
    case kQ5_K:
      return &kFmtQ5_K;
    case kQ6_K:
      return &kFmtQ6_K;
    default:
      return nullptr;
  }
}

inline constexpr int64_t kColPad = 128;  // columns are padded to a multiple of this

SHIMMY_MM_HD constexpr int64_t round_up(int64_t v, int64_t a) {
  return (v + a - 1) / a * a;
}

struct RowLayout {
  int64_t nsteps = 0;  // steps of the padded row
  int64_t main_off = 0, laux_off = 0, sa_off = 0, sb_off = 0;
  int64_t row_bytes = 0;  // multiple of 16
};

SHIMMY_MM_HD constexpr RowLayout row_layout(const Format& f, int64_t cols) {
  RowLayout l;
  l.nsteps = round_up(cols, kColPad) / f.step;
  const int64_t nrec = f.super ? l.nsteps / 2 : l.nsteps;
  l.main_off = 0;
  l.laux_off = round_up(l.main_off + l.nsteps * 4 * f.main_lane, 16);
  l.sa_off = round_up(l.laux_off + l.nsteps * 4 * f.laux_lane, 16);
  l.sb_off = round_up(l.sa_off + nrec * f.sa, 16);
  l.row_bytes = round_up(l.sb_off + nrec * f.sb, 16);
  return l;
}

}  // namespace shimmy::cuda::mm
