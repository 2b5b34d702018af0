// GGUF rows -> the device layout of layout.h. Pure bit shuffling: every quant field, scale
// and half keeps its bits, so the device decodes exactly what the CPU dequantizes.
#include "mm/repack.h"

#include <cstring>

#include "backend/cpu/quant/blocks.h"

namespace shimmy::cuda::mm {
namespace {

using namespace shimmy::quant;  // Block* layouts, kIQ4NL

// Writes fields of one row; a value is named by its step s, group G (in the step) and index
// v (in the group).
class Packer {
 public:
  Packer(const Format& f, int64_t cols, uint8_t* row) : f_(f), l_(row_layout(f, cols)), row_(row) {}

  // Byte b of lane t's main bytes of step s.
  uint8_t* main_byte(int64_t s, int t, int b) const {
    const int64_t base = l_.main_off + s * 4 * f_.main_lane;
    if (f_.main_lane >= 16) return row_ + base + (b / 16) * 64 + 16 * t + b % 16;
    return row_ + base + 8 * t + b;
  }
  uint8_t* laux_byte(int64_t s, int t, int b) const {
    return row_ + l_.laux_off + s * 4 * f_.laux_lane + f_.laux_lane * t + b;
  }
  uint8_t* sa(int64_t rec) const { return row_ + l_.sa_off + rec * f_.sa; }
  uint8_t* sb(int64_t rec) const { return row_ + l_.sb_off + rec * f_.sb; }

  // 4-bit field, nibble word of group G.
  void nibble(int64_t s, int G, int v, unsigned q) const {
    or32(main_byte(s, lane(v), 4 * G), q << (4 * pair(v) + 16 * second(v)));
  }
  // 4-bit index, byte word of group G (IQ4_NL).
  void index(int64_t s, int G, int v, unsigned q) const {
    or32(main_byte(s, lane(v), 4 * G), q << (8 * pair(v) + 4 * second(v)));
  }
  // 1-bit field, the lane's bit word (laux).
  void bit(int64_t s, int G, int v, unsigned b) const {
    or32(laux_byte(s, lane(v), 0), b << (4 * G + pair(v) + 16 * second(v)));
  }
  // 2-bit field in the crumb words of main (Q2_K, Q3_K) or of laux (Q6_K).
  void crumb_main(int64_t s, int G, int v, unsigned q) const {
    or32(main_byte(s, lane(v), 4 * (G >> 1)), q << crumb_shift(G, v));
  }
  void crumb_laux(int64_t s, int G, int v, unsigned q) const {
    or32(laux_byte(s, lane(v), 4 * (G >> 1)), q << crumb_shift(G, v));
  }
  // Byte of lane t holding element (h, e) of group G when a lane keeps `size`-byte elements
  // of `per_group` groups in order (Q8_0: size 1; F16/BF16: 2; F32: 4). Values 4u..4u + 3
  // lie in consecutive elements, so a run of four is one copy.
  uint8_t* element(int64_t s, int G, int v, int size) const {
    return main_byte(s, lane(v), size * (8 * G + 4 * (v / 16) + v % 4));
  }

  // A group's 32 fields at once (q[v], v < 32), one word store a lane instead of a
  // read-modify-write a value: the same words as the per-value functions above.
  void nibbles(int64_t s, int G, const uint8_t* q) const {
    main_words(s, 4 * G, q, [](int v) { return 4 * pair(v) + 16 * second(v); });
  }
  void indices(int64_t s, int G, const uint8_t* q) const {
    main_words(s, 4 * G, q, [](int v) { return 8 * pair(v) + 4 * second(v); });
  }
  void bits(int64_t s, int G, const uint8_t* b) const {
    laux_words(s, 0, b, [G](int v) { return 4 * G + pair(v) + 16 * second(v); });
  }
  void crumbs_main(int64_t s, int G, const uint8_t* q) const {
    main_words(s, 4 * (G >> 1), q, [G](int v) { return crumb_shift(G, v); });
  }
  void crumbs_laux(int64_t s, int G, const uint8_t* q) const {
    laux_words(s, 4 * (G >> 1), q, [G](int v) { return crumb_shift(G, v); });
  }

 private:
  static int lane(int v) { return (v % 16) / 4; }
  static int pair(int v) { return 2 * (v / 16) + ((v % 4) >> 1); }
  static int second(int v) { return v & 1; }
  static int crumb_shift(int G, int v) { return 2 * (4 * (G & 1) + pair(v)) + 16 * second(v); }
  // Lane t's word at lane0 + t * lane_stride collects fields v = 4t..4t + 3 and
  // 16 + 4t..16 + 4t + 3 (lane(v) == t), each at shift(v).
  template <class Shift>
  static uint32_t word(int t, const uint8_t* q, Shift shift) {
    uint32_t w = 0;
    for (int k = 0; k < 8; ++k) {
      const int v = 4 * t + (k & 3) + 16 * (k >> 2);
      w |= uint32_t(q[v]) << shift(v);
    }
    return w;
  }
  template <class Shift>
  void main_words(int64_t s, int b, const uint8_t* q, Shift shift) const {
    for (int t = 0; t < 4; ++t) or32(main_byte(s, t, b), word(t, q, shift));
  }
  template <class Shift>
  void laux_words(int64_t s, int b, const uint8_t* q, Shift shift) const {
    for (int t = 0; t < 4; ++t) or32(laux_byte(s, t, b), word(t, q, shift));
  }
  static void or32(uint8_t* p, uint32_t bits) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    w |= bits;
    std::memcpy(p, &w, 4);
  }

  const Format& f_;
  RowLayout l_;
  uint8_t* row_;
};

uint32_t load_u32(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// ---- 32-value blocks: block b is group b % 4 of step b / 4 ------------------------------
template <class B>
unsigned low4(const B& blk, int v) {
  return v < 16 ? blk.qs[v] & 0xF : blk.qs[v - 16] >> 4;
}

void pack_q4_0(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t s = i / 4;
    const int G = int(i % 4);
    std::memcpy(P.sa(s) + 2 * G, &b[i].d, 2);
    for (int v = 0; v < 32; ++v) P.nibble(s, G, v, low4(b[i], v));
  }
}

void pack_iq4_nl(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockIQ4_NL*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t s = i / 4;
    const int G = int(i % 4);
    std::memcpy(P.sa(s) + 2 * G, &b[i].d, 2);
    for (int v = 0; v < 32; ++v) P.index(s, G, v, low4(b[i], v));
  }
}

void pack_q4_1(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t s = i / 4;
    const int G = int(i % 4);
    std::memcpy(P.sa(s) + 4 * G, &b[i].d, 2);
    std::memcpy(P.sa(s) + 4 * G + 2, &b[i].m, 2);
    for (int v = 0; v < 32; ++v) P.nibble(s, G, v, low4(b[i], v));
  }
}

template <class B, bool kHasMin>
void pack_q5(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const B*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t s = i / 4;
    const int G = int(i % 4);
    if constexpr (kHasMin) {
      std::memcpy(P.sa(s) + 4 * G, &b[i].d, 2);
      std::memcpy(P.sa(s) + 4 * G + 2, &b[i].m, 2);
    } else {
      std::memcpy(P.sa(s) + 2 * G, &b[i].d, 2);
    }
    const uint32_t qh = load_u32(b[i].qh);
    for (int v = 0; v < 32; ++v) {
      P.nibble(s, G, v, low4(b[i], v));
      P.bit(s, G, v, (qh >> v) & 1);
    }
  }
}

void pack_q8_0(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t s = i / 4;
    const int G = int(i % 4);
    std::memcpy(P.sa(s) + 2 * G, &b[i].d, 2);
    for (int v = 0; v < 32; ++v) *P.element(s, G, v, 1) = uint8_t(b[i].qs[v]);
  }
}

// ---- K super-blocks: super-block b is steps 2b (values 0..127) and 2b + 1 ---------------
// Value vv of a super-block: step 2b + vv / 128, group (vv % 128) / 32, index vv % 32.
void pack_q2_k(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    std::memcpy(P.sa(i), b[i].scales, 16);
    std::memcpy(P.sb(i), &b[i].d, 2);
    std::memcpy(P.sb(i) + 2, &b[i].dmin, 2);
    for (int vv = 0; vv < 256; ++vv) {
      const int half = vv / 128, j = (vv % 128) / 32, l = vv % 32;
      P.crumb_main(2 * i + half, j, l, (b[i].qs[32 * half + l] >> (2 * j)) & 3);
    }
  }
}

void pack_q3_k(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ3_K*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    std::memcpy(P.sa(i), b[i].scales, 12);
    std::memcpy(P.sa(i) + 12, &b[i].d, 2);
    for (int vv = 0; vv < 256; ++vv) {
      const int half = vv / 128, j = (vv % 128) / 32, l = vv % 32;
      P.crumb_main(2 * i + half, j, l, (b[i].qs[32 * half + l] >> (2 * j)) & 3);
      P.bit(2 * i + half, j, l, (b[i].hmask[l] >> (4 * half + j)) & 1);
    }
  }
}

template <class B, bool kFifth>
void pack_q45_k(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const B*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    std::memcpy(P.sa(i), &b[i], 16);  // d, dmin, scales[12]: the block's first 16 bytes
    for (int vv = 0; vv < 256; ++vv) {
      const int half = vv / 128, G = (vv % 128) / 32, l = vv % 32, c = vv / 32;
      const uint8_t q = b[i].qs[32 * (c / 2) + l];
      P.nibble(2 * i + half, G, l, (c & 1) ? q >> 4 : q & 0xF);
      if constexpr (kFifth) P.bit(2 * i + half, G, l, (b[i].qh[l] >> c) & 1);
    }
  }
}

void pack_q6_k(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    std::memcpy(P.sa(i), b[i].scales, 16);
    std::memcpy(P.sb(i), &b[i].d, 2);
    for (int vv = 0; vv < 256; ++vv) {
      const int half = vv / 128, k = (vv % 128) / 32, l = vv % 32;
      const uint8_t ql = b[i].ql[64 * half + 32 * (k & 1) + l];
      P.nibble(2 * i + half, k, l, k < 2 ? ql & 0xF : ql >> 4);
      P.crumb_laux(2 * i + half, k, l, (b[i].qh[32 * half + l] >> (2 * k)) & 3);
    }
  }
}

// ---- float types: step s is group s ---------------------------------------------------
template <int kSize>
void pack_float(const Packer& P, const uint8_t* src, int64_t cols) {
  for (int64_t k = 0; k < cols; ++k)
    std::memcpy(P.element(k / 32, 0, int(k % 32), kSize), src + k * kSize, kSize);
}

// ---- the same layouts a group at a time: repack_row. The per-value packers above are the
// reference (repack_row_reference) a test compares these with, byte for byte. -------------
template <class B>
void low_nibbles(const B& blk, uint8_t* q) {
  for (int v = 0; v < 16; ++v) {
    q[v] = blk.qs[v] & 0xF;
    q[v + 16] = blk.qs[v] >> 4;
  }
}

// Q4_0, Q4_1 (d and m) and IQ4_NL (its nibbles are table indices).
template <class B, bool kHasMin, bool kIndex>
void fast_q4(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const B*>(src);
  uint8_t q[32];
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t s = i / 4;
    const int G = int(i % 4);
    if constexpr (kHasMin) {
      std::memcpy(P.sa(s) + 4 * G, &b[i].d, 2);
      std::memcpy(P.sa(s) + 4 * G + 2, &b[i].m, 2);
    } else {
      std::memcpy(P.sa(s) + 2 * G, &b[i].d, 2);
    }
    low_nibbles(b[i], q);
    if constexpr (kIndex) {
      P.indices(s, G, q);
    } else {
      P.nibbles(s, G, q);
    }
  }
}

template <class B, bool kHasMin>
void fast_q5(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const B*>(src);
  uint8_t q[32], h[32];
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t s = i / 4;
    const int G = int(i % 4);
    if constexpr (kHasMin) {
      std::memcpy(P.sa(s) + 4 * G, &b[i].d, 2);
      std::memcpy(P.sa(s) + 4 * G + 2, &b[i].m, 2);
    } else {
      std::memcpy(P.sa(s) + 2 * G, &b[i].d, 2);
    }
    const uint32_t qh = load_u32(b[i].qh);
    for (int v = 0; v < 32; ++v) h[v] = (qh >> v) & 1;
    low_nibbles(b[i], q);
    P.nibbles(s, G, q);
    P.bits(s, G, h);
  }
}

void fast_q8_0(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t s = i / 4;
    const int G = int(i % 4);
    std::memcpy(P.sa(s) + 2 * G, &b[i].d, 2);
    for (int v = 0; v < 32; v += 4) std::memcpy(P.element(s, G, v, 1), b[i].qs + v, 4);
  }
}

void fast_q2_k(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ2_K*>(src);
  uint8_t q[32];
  for (int64_t i = 0; i < nb; ++i) {
    std::memcpy(P.sa(i), b[i].scales, 16);
    std::memcpy(P.sb(i), &b[i].d, 2);
    std::memcpy(P.sb(i) + 2, &b[i].dmin, 2);
    for (int half = 0; half < 2; ++half) {
      for (int j = 0; j < 4; ++j) {
        for (int l = 0; l < 32; ++l) q[l] = (b[i].qs[32 * half + l] >> (2 * j)) & 3;
        P.crumbs_main(2 * i + half, j, q);
      }
    }
  }
}

void fast_q3_k(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ3_K*>(src);
  uint8_t q[32], h[32];
  for (int64_t i = 0; i < nb; ++i) {
    std::memcpy(P.sa(i), b[i].scales, 12);
    std::memcpy(P.sa(i) + 12, &b[i].d, 2);
    for (int half = 0; half < 2; ++half) {
      for (int j = 0; j < 4; ++j) {
        for (int l = 0; l < 32; ++l) {
          q[l] = (b[i].qs[32 * half + l] >> (2 * j)) & 3;
          h[l] = (b[i].hmask[l] >> (4 * half + j)) & 1;
        }
        P.crumbs_main(2 * i + half, j, q);
        P.bits(2 * i + half, j, h);
      }
    }
  }
}

// Values 32c..32c + 31 of a super-block (c = 4 half + G): nibble c & 1 of qs[32 (c / 2) + l].
template <class B, bool kFifth>
void fast_q45_k(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const B*>(src);
  uint8_t q[32], h[32];
  for (int64_t i = 0; i < nb; ++i) {
    std::memcpy(P.sa(i), &b[i], 16);  // d, dmin, scales[12]: the block's first 16 bytes
    for (int c = 0; c < 8; ++c) {
      const uint8_t* qs = b[i].qs + 32 * (c / 2);
      for (int l = 0; l < 32; ++l) q[l] = (c & 1) ? qs[l] >> 4 : qs[l] & 0xF;
      P.nibbles(2 * i + c / 4, c % 4, q);
      if constexpr (kFifth) {
        for (int l = 0; l < 32; ++l) h[l] = (b[i].qh[l] >> c) & 1;
        P.bits(2 * i + c / 4, c % 4, h);
      }
    }
  }
}

void fast_q6_k(const Packer& P, const uint8_t* src, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ6_K*>(src);
  uint8_t q[32], c2[32];
  for (int64_t i = 0; i < nb; ++i) {
    std::memcpy(P.sa(i), b[i].scales, 16);
    std::memcpy(P.sb(i), &b[i].d, 2);
    for (int half = 0; half < 2; ++half) {
      for (int k = 0; k < 4; ++k) {
        const uint8_t* ql = b[i].ql + 64 * half + 32 * (k & 1);
        for (int l = 0; l < 32; ++l) {
          q[l] = k < 2 ? ql[l] & 0xF : ql[l] >> 4;
          c2[l] = (b[i].qh[32 * half + l] >> (2 * k)) & 3;
        }
        P.nibbles(2 * i + half, k, q);
        P.crumbs_laux(2 * i + half, k, c2);
      }
    }
  }
}

// Runs of four values are one copy each; a last partial step goes value by value.
template <int kSize>
void fast_float(const Packer& P, const uint8_t* src, int64_t cols) {
  const int64_t full = cols / 32 * 32;
  for (int64_t k = 0; k < full; k += 4)
    std::memcpy(P.element(k / 32, 0, int(k % 32), kSize), src + k * kSize, 4 * kSize);
  for (int64_t k = full; k < cols; ++k)
    std::memcpy(P.element(k / 32, 0, int(k % 32), kSize), src + k * kSize, kSize);
}

using PackFn = void (*)(const Packer&, const uint8_t*, int64_t);
struct Packers {
  PackFn fast, reference;  // both take the row's block count (values for the float types)
};

Packers packers_of(uint32_t type) {
  switch (type) {
    case kF32:
      return {fast_float<4>, pack_float<4>};
    case kF16:
    case kBF16:
      return {fast_float<2>, pack_float<2>};
    case kQ4_0:
      return {fast_q4<BlockQ4_0, false, false>, pack_q4_0};
    case kQ4_1:
      return {fast_q4<BlockQ4_1, true, false>, pack_q4_1};
    case kQ5_0:
      return {fast_q5<BlockQ5_0, false>, pack_q5<BlockQ5_0, false>};
    case kQ5_1:
      return {fast_q5<BlockQ5_1, true>, pack_q5<BlockQ5_1, true>};
    case kQ8_0:
      return {fast_q8_0, pack_q8_0};
    case kIQ4_NL:
      return {fast_q4<BlockIQ4_NL, false, true>, pack_iq4_nl};
    case kQ2_K:
      return {fast_q2_k, pack_q2_k};
    case kQ3_K:
      return {fast_q3_k, pack_q3_k};
    case kQ4_K:
      return {fast_q45_k<BlockQ4_K, false>, pack_q45_k<BlockQ4_K, false>};
    case kQ5_K:
      return {fast_q45_k<BlockQ5_K, true>, pack_q45_k<BlockQ5_K, true>};
    case kQ6_K:
      return {fast_q6_k, pack_q6_k};
    default:
      return {nullptr, nullptr};
  }
}

bool repack(uint32_t type, const uint8_t* src, uint8_t* dst, int64_t cols, bool reference) {
  const Format* f = format_of(type);
  const Packers p = packers_of(type);
  if (!f || !p.fast || cols <= 0 || cols % f->block != 0) return false;
  (reference ? p.reference : p.fast)(Packer(*f, cols, dst), src, cols / f->block);
  return true;
}

}  // namespace

bool repack_row(uint32_t type, const uint8_t* src, uint8_t* dst, int64_t cols) {
  return repack(type, src, dst, cols, false);
}

bool repack_row_reference(uint32_t type, const uint8_t* src, uint8_t* dst, int64_t cols) {
  return repack(type, src, dst, cols, true);
}

}  // namespace shimmy::cuda::mm
