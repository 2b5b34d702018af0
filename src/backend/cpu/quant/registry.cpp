// The kernel tables (one WeightKernels per weight type and ISA, built once), CPUID-based
// ISA selection, the cache-blocked matmul_rows driver, and the checked by-type entry
// points.
#include <cpuid.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cpu/quant/internal.h"

namespace shimmy::quant {
namespace {

using gguf::TensorType;

// Weight type -> act type, as in llama.cpp's CPU type traits.
std::optional<ActType> act_for(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return ActType::F32;
    case TensorType::F16:
      return ActType::F16;
    case TensorType::BF16:
      return ActType::BF16;
    case TensorType::Q4_0:
    case TensorType::Q5_0:
    case TensorType::Q8_0:
    case TensorType::IQ4_NL:
      return ActType::Q8_0;
    case TensorType::Q4_1:
    case TensorType::Q5_1:
      return ActType::Q8_1;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return ActType::Q8_K;
    default:
      return std::nullopt;
  }
}

void act_block_shape(ActType a, int64_t* block, size_t* bytes) {
  switch (a) {
    case ActType::F32:
    case ActType::F16:
    case ActType::BF16:
      *block = 1, *bytes = 4;
      return;
    case ActType::Q8_0:
      *block = 32, *bytes = sizeof(BlockQ8_0);
      return;
    case ActType::Q8_1:
      *block = 32, *bytes = sizeof(BlockQ8_1);
      return;
    case ActType::Q8_K:
      *block = 256, *bytes = sizeof(BlockQ8_K);
      return;
  }
}

// CPUID directly (clang 14's __builtin_cpu_supports knows no "f16c"): leaf 1 ECX has FMA
// (bit 12), OSXSAVE (27), AVX (28), F16C (29); leaf 7 EBX has AVX2 (5) and BMI2 (8); and
// the OS must save the YMM state (XCR0 bits 1 and 2).
bool cpu_has_avx2() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28),
             f16c = c & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return false;
  unsigned xlo = 0, xhi = 0;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  if ((xlo & 6u) != 6u) return false;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (b & (1u << 5)) && (b & (1u << 8));
}

DotFns avx2_dot_fns(TensorType t) {
  if (auto f = avx2_dot_fns_q32(t); f.vec_dot) return f;
  if (auto f = avx2_dot_fns_k(t); f.vec_dot) return f;
  return avx2_dot_fns_float(t);
}

struct Tables {
  std::array<WeightKernels, gguf::kNumTypeIds> by_isa[2];
  std::array<WeightKernels, gguf::kNumTypeIds> packed[2];  // row-interleaved layouts
  std::array<bool, gguf::kNumTypeIds> ok[2]{};
  bool has_avx2 = false;
  Isa best = Isa::Scalar;
};

// Built in place: the GGUF-layout tables point at their packed twins.
void build_tables(Tables& tb) {
  tb.has_avx2 = cpu_has_avx2();
  const char* env = std::getenv("SHIMMY_CPU_ISA");
  const bool force_scalar = env && std::string(env) == "scalar";
  tb.best = tb.has_avx2 && !force_scalar ? Isa::Avx2 : Isa::Scalar;
  for (uint32_t id = 0; id < gguf::kNumTypeIds; ++id) {
    const auto traits = gguf::type_traits(id);
    const auto t = static_cast<TensorType>(id);
    const auto act = act_for(t);
    if (!traits || !act) continue;
    for (int isa = 0; isa < 2; ++isa) {
      if (isa == 1 && !tb.has_avx2) continue;
      const DotFns dots = isa == 0 ? scalar_dot_fns(t) : avx2_dot_fns(t);
      WeightKernels k{};
      k.type = t;
      k.isa = isa == 0 ? Isa::Scalar : Isa::Avx2;
      k.block = traits->block_size;
      k.block_bytes = traits->block_bytes;
      k.act = *act;
      act_block_shape(*act, &k.act_block, &k.act_block_bytes);
      k.dequantize = dequantize_fn(t);
      if (isa == 1 && dequantize_avx2_fn(t)) k.dequantize = dequantize_avx2_fn(t);
      k.quantize_act = quantize_act_fn(*act);
      if (isa == 1 && quantize_act_avx2_fn(*act)) k.quantize_act = quantize_act_avx2_fn(*act);
      k.vec_dot = dots.vec_dot;
      k.tile = dots.tile;
      k.tile_blocks = dots.tile_blocks;
      if (!k.dequantize || !k.quantize_act || !k.vec_dot || !k.tile) continue;
      tb.by_isa[isa][id] = k;
      tb.ok[isa][id] = true;
      const DotFns pk = isa == 0 ? packed_scalar_fns(t) : packed_avx2_fns(t);
      if (pk.tile) {
        WeightKernels p = k;
        p.dequantize = nullptr;
        p.vec_dot = nullptr;
        p.tile = pk.tile;
        p.tile_blocks = true;
        p.group_rows = 8;
        tb.packed[isa][id] = p;
        tb.by_isa[isa][id].packed = &tb.packed[isa][id];
      }
    }
  }
}

const Tables& tables() {
  static Tables tb;
  static const bool built = (build_tables(tb), true);
  (void)built;
  return tb;
}

std::optional<size_t> blocks_bytes(int64_t n, int64_t block, size_t bytes) {
  if (n < 0 || block <= 0 || n % block != 0) return std::nullopt;
  size_t out = 0;
  if (__builtin_mul_overflow(size_t(n / block), bytes, &out)) return std::nullopt;
  return out;
}

}  // namespace

const char* act_type_name(ActType t) {
  switch (t) {
    case ActType::F32:
      return "F32";
    case ActType::F16:
      return "F16";
    case ActType::BF16:
      return "BF16";
    case ActType::Q8_0:
      return "Q8_0";
    case ActType::Q8_1:
      return "Q8_1";
    case ActType::Q8_K:
      return "Q8_K";
  }
  return "?";
}

const char* isa_name(Isa isa) {
  return isa == Isa::Avx2 ? "avx2" : "scalar";
}

Isa best_isa() {
  return tables().best;
}

const WeightKernels* kernels_for(TensorType type) {
  return kernels_for(type, best_isa());
}

const WeightKernels* kernels_for(TensorType type, Isa isa) {
  const auto id = static_cast<uint32_t>(type);
  const int i = isa == Isa::Avx2 ? 1 : 0;
  if (id >= gguf::kNumTypeIds || !tables().ok[i][id]) return nullptr;
  return &tables().by_isa[i][id];
}

std::optional<size_t> weight_row_bytes(const WeightKernels& k, int64_t n) {
  return blocks_bytes(n, k.block, k.block_bytes);
}

std::optional<size_t> act_row_bytes(const WeightKernels& k, int64_t n) {
  if (n % k.block != 0) return std::nullopt;  // acts follow the weight's blocking
  return blocks_bytes(n, k.act_block, k.act_block_bytes);
}

// Weight rows are taken in bands of about 32 KiB (they stay in L1/L2) while all m act
// rows pass over the band, so each weight byte comes from memory once per call. Inside a
// band the tile kernel walks 4 act rows × 2 weight rows (or 1 × 4 when m < 4).
void matmul_rows(const WeightKernels& k, int64_t n, const void* W, size_t w_stride, const void* A,
                 size_t a_stride, int64_t m, float* out, int64_t ldo, int64_t r0, int64_t r1) {
  if (m <= 0 || r1 <= r0 || n <= 0) return;
  const auto* w = static_cast<const uint8_t*>(W);
  if (k.group_rows > 1 && (r0 % k.group_rows != 0 || (r1 - r0) % k.group_rows != 0)) {
    std::fprintf(stderr, "matmul_rows: packed rows [%lld, %lld) not in whole groups\n",
                 static_cast<long long>(r0), static_cast<long long>(r1));
    std::abort();  // a caller bug: ranges over packed weights come in multiples of 8
  }
  if (k.tile_blocks) {
    k.tile(n, w + size_t(r0) * w_stride, w_stride, r1 - r0, A, a_stride, m, out + r0, ldo);
    return;
  }
  const size_t row = std::max<size_t>(w_stride, 1);
  const int64_t band = std::max<int64_t>(4, int64_t((32u << 10) / row) & ~int64_t{1});
  for (int64_t rb = r0; rb < r1; rb += band) {
    const int64_t nr = std::min(band, r1 - rb);
    k.tile(n, w + size_t(rb) * w_stride, w_stride, nr, A, a_stride, m, out + rb, ldo);
  }
}

Status dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  const auto traits = gguf::type_traits(static_cast<uint32_t>(type));
  const DequantFn f = dequantize_fn(type);
  if (!traits || !f)
    return make_error("dequantize_row: unsupported type " + gguf::type_name(uint32_t(type)));
  if (n < 0 || n % traits->block_size != 0)
    return make_error("dequantize_row: " + std::to_string(n) + " values is not a multiple of " +
                      std::to_string(traits->block_size) + " for " + std::string(traits->name));
  f(src, dst, n);
  return {};
}

Status quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  const auto traits = gguf::type_traits(static_cast<uint32_t>(type));
  QuantizeFn f = quantize_q32_fn(type);
  if (!f) f = quantize_k_fn(type);
  if (!traits || !f)
    return make_error("quantize_row: unsupported type " + gguf::type_name(uint32_t(type)));
  if (n < 0 || n % traits->block_size != 0)
    return make_error("quantize_row: " + std::to_string(n) + " values is not a multiple of " +
                      std::to_string(traits->block_size) + " for " + std::string(traits->name));
  f(src, dst, n);
  return {};
}

}  // namespace shimmy::quant
