// quant_bench: single-thread speed of the CPU weight-type kernels.
//
//   quant_bench [TYPE...]        (default: every supported type; SHIMMY_CPU_ISA=scalar
//                                 measures the scalar kernels)
//
// For a [5632, 2048] weight matrix (a 1.1B model's FFN shape) of random values:
//   vec_dot   GB/s of weight bytes, one vec_dot per row (act row quantized once)
//   m=1       GB/s of weight bytes through matmul_rows with one act row (the decode path:
//             1 × 4 tiles)
//   m=128     GFLOP/s (2·rows·n·m) through matmul_rows with 128 act rows (prompt path)
//   deq row   ns to dequantize one row to f32 (what a GPU decode step does on the host for
//             its token embedding), the row in cache
// Figures are the best of a few repetitions.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/quant/kernels.h"
#include "backend/cpu/quant/packed.h"

using namespace shimmy;
using namespace shimmy::quant;
using gguf::TensorType;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F>
double best_time(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
    f();
    best = std::min(best, now_s() - t0);
  }
  return best;
}

volatile float g_sink;

}  // namespace

int main(int argc, char** argv) {
  std::vector<TensorType> types = {
      TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,   TensorType::Q4_0,
      TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::IQ4_NL, TensorType::Q2_K,
      TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
  if (argc > 1) {
    std::vector<TensorType> picked;
    for (int i = 1; i < argc; ++i)
      for (TensorType t : types)
        if (gguf::type_name(uint32_t(t)) == argv[i]) picked.push_back(t);
    types = picked;
  }
  const int64_t rows = 5632, n = 2048, m = 128;
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.f, 0.02f);
  std::vector<float> wf(size_t(rows * n)), xf(size_t(m * n));
  for (auto& v : wf) v = dist(rng);
  for (auto& v : xf) v = dist(rng) * 50.f;

  std::printf("quant_bench: W [%lld, %lld], isa %s, single thread\n", (long long)rows, (long long)n,
              isa_name(best_isa()));
  std::printf("%-7s %10s %10s %10s %12s %10s\n", "type", "MiB", "vec_dot", "m=1", "m=128",
              "deq row");
  std::printf("%-7s %10s %10s %10s %12s %10s\n", "", "", "GB/s", "GB/s", "GFLOP/s", "ns");
  for (TensorType t : types) {
    const WeightKernels* k = kernels_for(t);
    if (!k) continue;
    const size_t ws = weight_row_bytes(*k, n).value(), as = act_row_bytes(*k, n).value();
    std::vector<uint8_t> W(ws * size_t(rows)), A(as * size_t(m));
    for (int64_t r = 0; r < rows; ++r)
      (void)quantize_row(t, wf.data() + r * n, W.data() + size_t(r) * ws, n);
    for (int64_t i = 0; i < m; ++i)
      k->quantize_act(xf.data() + i * n, A.data() + size_t(i) * as, n);
    std::vector<float> out(size_t(m * rows));
    const double bytes = double(W.size());

    const double t_dot = best_time(5, [&] {
      float s = 0;
      for (int64_t r = 0; r < rows; ++r) s += k->vec_dot(n, W.data() + size_t(r) * ws, A.data());
      g_sink = s;
    });
    const double t_m1 = best_time(
        5, [&] { matmul_rows(*k, n, W.data(), ws, A.data(), as, 1, out.data(), rows, 0, rows); });
    const double t_mm = best_time(
        2, [&] { matmul_rows(*k, n, W.data(), ws, A.data(), as, m, out.data(), rows, 0, rows); });
    constexpr int kDeq = 1000;
    const double t_deq = best_time(5, [&] {
      for (int i = 0; i < kDeq; ++i) k->dequantize(W.data() + size_t(i % 4) * ws, out.data(), n);
      g_sink = out[size_t(n) - 1];
    });
    std::printf("%-7s %10.1f %10.2f %10.2f %12.1f %10.0f\n", gguf::type_name(uint32_t(t)).c_str(),
                bytes / (1 << 20), bytes / t_dot * 1e-9, bytes / t_m1 * 1e-9,
                2.0 * double(rows) * double(n) * double(m) / t_mm * 1e-9, t_deq / kDeq * 1e9);
    if (can_pack(*k, rows, n)) {  // the row-interleaved layout the engine uses (packed.h)
      std::vector<uint8_t> P(W.size());
      pack_rows(*k, W.data(), ws, rows, n, P.data());
      const WeightKernels& pk = *k->packed;
      const double p_m1 = best_time(
          5, [&] { matmul_rows(pk, n, P.data(), ws, A.data(), as, 1, out.data(), rows, 0, rows); });
      const double p_mm = best_time(
          2, [&] { matmul_rows(pk, n, P.data(), ws, A.data(), as, m, out.data(), rows, 0, rows); });
      std::printf("%-7s %10s %10s %10.2f %12.1f\n", (gguf::type_name(uint32_t(t)) + "/p").c_str(),
                  "", "", bytes / p_m1 * 1e-9,
                  2.0 * double(rows) * double(n) * double(m) / p_mm * 1e-9);
    }
    std::fflush(stdout);
  }
  return 0;
}
