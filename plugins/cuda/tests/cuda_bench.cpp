// shimmy-cuda-bench: speed of the CUDA plugin through its ABI, as the core drives it.
//
//   shimmy-cuda-bench MODEL.gguf [--pp 512] [--tg 128] [--par 8] [--reps 3]
//   shimmy-cuda-bench --ops      attention kernels alone (device events), at model shapes
//
// Prints prompt processing (one batch of pp tokens), single-stream decode with CUDA graphs
// on and off (tg steps after the prompt), and parallel decode (par slots, one token each
// per step). Decode lines give the weight bytes read per step over the step time, and that
// as a fraction of the device's peak memory bandwidth (the probe's figure).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "harness.h"
#include "kernels.h"

using namespace shimmy;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Ctx {
  const ShimmyBackendApi* api;
  const model::Model& m;
  std::unique_ptr<cudatest::Desc> desc;
  ShimmyContext* ctx = nullptr;
  ShimmySliceBytes bytes{};
  // Logits rows in the plugin's host memory (host_alloc), as the core's Forward keeps them:
  // the device writes them directly.
  float* out = nullptr;
  size_t out_floats = 0;

  Ctx(const ShimmyBackendApi* a, const model::Model& model, int64_t max_ctx, int64_t max_seqs,
      int64_t max_batch)
      : api(a), m(model) {
    desc = cudatest::make_desc(m, 0, m.cfg.n_layer, true, max_ctx, max_seqs, max_batch);
    char err[512] = "";
    if (api->slice_bytes(0, &desc->d, &bytes, err, sizeof err) ||
        api->create(0, &desc->d, &ctx, err, sizeof err)) {
      std::fprintf(stderr, "shimmy-cuda-bench: %s\n", err);
      std::exit(1);
    }
  }
  ~Ctx() {
    api->destroy(ctx);
    api->host_free(out);
  }

  void eval(const std::vector<int32_t>& tokens, const std::vector<int32_t>& seq,
            const std::vector<int32_t>& pos, const std::vector<uint8_t>& want) {
    const std::vector<float> x = cudatest::embed(m, tokens), cs = cudatest::rope_table(m, pos);
    const int64_t n_out = std::count(want.begin(), want.end(), 1);
    const size_t need = size_t(std::max<int64_t>(1, n_out) * m.cfg.n_vocab);
    if (need > out_floats) {
      api->host_free(out);
      out = static_cast<float*>(api->host_alloc(need * sizeof(float)));
      out_floats = out ? need : 0;
      if (!out) {
        std::fprintf(stderr, "shimmy-cuda-bench: host_alloc of %zu bytes failed\n",
                     need * sizeof(float));
        std::exit(1);
      }
    }
    ShimmyBatch b{static_cast<int64_t>(tokens.size()),
                  seq.data(),
                  pos.data(),
                  cs.data(),
                  x.data(),
                  want.data(),
                  out};
    char err[512] = "";
    if (api->eval(ctx, &b, err, sizeof err)) {
      std::fprintf(stderr, "shimmy-cuda-bench: eval: %s\n", err);
      std::exit(1);
    }
  }
  void truncate(int32_t seq) {
    char err[256];
    api->seq_truncate(ctx, seq, 0, err, sizeof err);
  }
};

// Device time of one f() (launches on stream s), in ms: a graph of 20 calls back to back,
// median of 20 replays after 3 warm-ups, divided by 20. The launch gaps a decode graph has,
// not those of separate launches (a graph of one call measures mostly the graph launch).
template <typename F>
double time_device(F f) {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  constexpr int kCalls = 20;
  cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  for (int i = 0; i < kCalls; ++i) f(s);
  cudaStreamEndCapture(s, &graph);
  cudaGraphInstantiate(&exec, graph, 0);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<double> t;
  for (int r = 0; r < 23; ++r) {
    cudaEventRecord(a, s);
    cudaGraphLaunch(exec, s);
    cudaEventRecord(b, s);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    if (r >= 3) t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  return median(t) / kCalls;
}

// Attention alone: prompts (split kernel and flash) and decode steps, at two head layouts.
int bench_ops() {
  struct Shape {
    const char* name;
    int H, KVH, hd;
  };
  const Shape shapes[] = {{"tinyllama 32/4x64", 32, 4, 64}, {"llama-7b 32/32x128", 32, 32, 128}};
  std::printf("%-20s %-14s %10s %12s\n", "heads", "case", "ms", "TFLOP/s");
  for (const Shape& sh : shapes) {
    for (int64_t n : {512, 2048}) {
      const int64_t ctx = n, KV = int64_t(sh.KVH) * sh.hd, Q = int64_t(sh.H) * sh.hd;
      void *k, *v, *part, *q, *att, *seq, *pos;
      cudaMalloc(&k, ctx * KV * 2);
      cudaMalloc(&v, ctx * KV * 2);
      cudaMalloc(&q, n * Q * 4);
      cudaMalloc(&att, n * Q * 4);
      const int64_t part_n = shimmy::cuda::attn_partial_floats(n, ctx, sh.H, sh.KVH, sh.hd);
      cudaMalloc(&part, part_n * 4);
      cudaMemset(part, 0, part_n * 4);  // the decode kernel's counters start at zero
      cudaMalloc(&seq, n * 4);
      cudaMalloc(&pos, n * 4);
      cudaMemset(k, 0x11, ctx * KV * 2);  // small finite f16 values
      cudaMemset(v, 0x22, ctx * KV * 2);
      cudaMemset(q, 0x3c, n * Q * 4);  // ~0.0115 everywhere: finite, non-zero
      cudaMemset(seq, 0, n * 4);
      std::vector<int32_t> hp(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) hp[size_t(i)] = int32_t(i);
      cudaMemcpy(pos, hp.data(), n * 4, cudaMemcpyHostToDevice);
      shimmy::cuda::AttnParams p{};
      p.q = static_cast<float*>(q);
      p.k_cache = k;
      p.v_cache = v;
      p.seq = static_cast<int32_t*>(seq);
      p.pos = static_cast<int32_t*>(pos);
      p.att = static_cast<float*>(att);
      p.part = static_cast<float*>(part);
      p.max_ctx = ctx;
      p.n_tokens = static_cast<int>(n);
      p.n_head = sh.H;
      p.n_head_kv = sh.KVH;
      p.hd = sh.hd;
      p.kv_f16 = true;
      const double flop = 4.0 * double(n) * double(n) / 2 * sh.H * sh.hd;
      shimmy::cuda::attention_flash(p, nullptr);  // sets its shared-memory limit outside capture
      const double t_split = time_device([&](cudaStream_t s) { shimmy::cuda::attention(p, s); });
      const double t_flash =
          time_device([&](cudaStream_t s) { shimmy::cuda::attention_flash(p, s); });
      std::printf("%-20s prompt %-7lld %10.3f %12.2f  attention()\n", sh.name, (long long)n,
                  t_split, flop / t_split / 1e9);
      std::printf("%-20s prompt %-7lld %10.3f %12.2f  flash\n", sh.name, (long long)n, t_flash,
                  flop / t_flash / 1e9);
      // Decode: one token at the last position of a cache of n, then 16 tokens at the last
      // 16 positions; the one-kernel path and the split kernels (SHIMMY_CUDA_ATTN=split).
      for (const char* path : {"one kernel", "split"}) {
        if (!std::strcmp(path, "split")) setenv("SHIMMY_CUDA_ATTN", "split", 1);
        for (int nt : {1, 16}) {
          for (int i = 0; i < nt; ++i) hp[size_t(i)] = int32_t(n - nt + i);
          cudaMemcpy(pos, hp.data(), 4 * nt, cudaMemcpyHostToDevice);
          p.n_tokens = nt;
          const double t_dec = time_device([&](cudaStream_t s) { shimmy::cuda::attention(p, s); });
          const double bytes = 2.0 * double(n) * double(KV) * 2;
          std::printf("%-20s decode@%-7lld %10.4f %9.0f GB/s  %d token%s, %s\n", sh.name,
                      (long long)n, t_dec, bytes / t_dec / 1e6, nt, nt > 1 ? "s" : "", path);
        }
        unsetenv("SHIMMY_CUDA_ATTN");
      }
#ifdef SHIMMY_CUDA_EXPERIMENTS
      if (n == 512) {  // phases of the one-kernel path (SHIMMY_CUDA_ATTN_EXP), 1 token
        hp[0] = int32_t(n - 1);
        cudaMemcpy(pos, hp.data(), 4, cudaMemcpyHostToDevice);
        p.n_tokens = 1;
        for (const char* x : {"1", "2", "3", "4", "0"}) {
          setenv("SHIMMY_CUDA_ATTN_EXP", x, 1);
          const double t = time_device([&](cudaStream_t s) { shimmy::cuda::attention(p, s); });
          std::printf("%-20s decode@512 exp %s %10.4f ms\n", sh.name, x, t);
        }
        unsetenv("SHIMMY_CUDA_ATTN_EXP");
      }
#endif
      for (int64_t i = 0; i < n; ++i) hp[size_t(i)] = int32_t(i);
      cudaMemcpy(pos, hp.data(), n * 4, cudaMemcpyHostToDevice);
      if (cudaGetLastError() != cudaSuccess) {
        std::printf("CUDA error\n");
        return 1;
      }
      for (void* ptr : {k, v, q, att, part, seq, pos}) cudaFree(ptr);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && !std::strcmp(argv[1], "--ops")) {
    if (cudatest::probe().n_devices == 0) {
      std::fprintf(stderr, "shimmy-cuda-bench: no usable CUDA device: %s\n",
                   cudatest::probe().reason);
      return 1;
    }
    return bench_ops();
  }
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: shimmy-cuda-bench MODEL.gguf [--pp N] [--tg N] [--par N] [--reps N]\n");
    return 2;
  }
  int64_t pp = 512, tg = 128, par = 8, reps = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    const int64_t v = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--pp"))
      pp = v;
    else if (!std::strcmp(argv[i], "--tg"))
      tg = v;
    else if (!std::strcmp(argv[i], "--par"))
      par = v;
    else if (!std::strcmp(argv[i], "--reps"))
      reps = v;
  }
  const ShimmyBackendApi* api = cudatest::api();
  if (!api) {
    std::fprintf(stderr, "shimmy-cuda-bench: %s\n", cudatest::load_error().c_str());
    return 1;
  }
  const ShimmyProbe& probe = cudatest::probe();
  if (probe.n_devices == 0) {
    std::fprintf(stderr, "shimmy-cuda-bench: no usable CUDA device: %s\n", probe.reason);
    return 1;
  }
  auto mr = model::load_model(argv[1]);
  if (!mr.ok()) {
    std::fprintf(stderr, "shimmy-cuda-bench: %s\n", mr.error().message.c_str());
    return 1;
  }
  const model::Model& m = **mr;
  const double peak = probe.devices[0].mem_bandwidth_gbs;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(1, static_cast<int32_t>(m.cfg.n_vocab - 1));
  auto tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = tok(rng);
    return t;
  };
  const int64_t ctx = pp + tg + 1;
  std::printf("device: %s, %.0f GB/s peak; plugin %s\n", probe.devices[0].name, peak, api->version);

  double gbs_on = 0, ms_on = 0, ms_off = 0;
  for (int graphs = 1; graphs >= 0; --graphs) {
    if (!graphs) setenv("SHIMMY_CUDA_GRAPHS", "0", 1);
    Ctx c(api, m, ctx, 1, pp);
    unsetenv("SHIMMY_CUDA_GRAPHS");
    if (graphs) {
      std::printf(
          "model: %s  %lld layers  slice %.1f MiB weights + %.1f MiB KV + %.1f MiB scratch\n",
          argv[1], (long long)m.cfg.n_layer, c.bytes.weights / 1048576.0, c.bytes.kv / 1048576.0,
          c.bytes.scratch / 1048576.0);
    }
    // Prompt: one batch of pp tokens, logits of the last.
    std::vector<double> t_pp;
    const auto prompt = tokens(pp);
    std::vector<int32_t> seq(static_cast<size_t>(pp), 0), pos(static_cast<size_t>(pp));
    for (int64_t i = 0; i < pp; ++i) pos[size_t(i)] = int32_t(i);
    std::vector<uint8_t> want(static_cast<size_t>(pp), 0);
    want.back() = 1;
    for (int64_t r = 0; r <= reps; ++r) {  // first run is a warm-up
      c.truncate(0);
      const auto t0 = Clock::now();
      c.eval(prompt, seq, pos, want);
      if (r) t_pp.push_back(ms_since(t0));
    }
    // Decode: tg single-token steps after the prompt.
    std::vector<double> t_tg;
    int32_t next = tok(rng);
    for (int64_t s = 0; s < tg; ++s) {
      const auto t0 = Clock::now();
      c.eval({next}, {0}, {int32_t(pp + s)}, {1});
      t_tg.push_back(ms_since(t0));
      next = tok(rng);
    }
    t_tg.erase(t_tg.begin());  // the first step captures the graph
    const double ms = median(t_tg), gbs = c.bytes.weights / (ms * 1e-3) / 1e9;
    (graphs ? ms_on : ms_off) = ms;
    if (graphs) gbs_on = gbs;
    std::printf(
        "graphs %-3s  pp%-5lld %9.2f ms %10.1f tok/s   tg%-4lld %7.3f ms/token %8.1f tok/s  %7.1f "
        "GB/s "
        "(%.1f%% of peak)\n",
        graphs ? "on" : "off", (long long)pp, median(t_pp), pp / (median(t_pp) * 1e-3),
        (long long)tg, ms, 1e3 / ms, gbs, 100.0 * gbs / peak);
  }
  std::printf("graph gain (decode): %.1f%% less time per token\n",
              100.0 * (ms_off - ms_on) / ms_off);
  (void)gbs_on;

  // Parallel decode: par slots, each with a short prompt, one token per slot per step.
  if (par > 1) {
    Ctx c(api, m, 64 + tg + 1, par, std::max<int64_t>(par, 64));
    for (int64_t s = 0; s < par; ++s) {
      std::vector<int32_t> seq(64, int32_t(s)), pos(64);
      for (int i = 0; i < 64; ++i) pos[size_t(i)] = i;
      std::vector<uint8_t> want(64, 0);
      c.eval(tokens(64), seq, pos, want);
    }
    std::vector<double> t;
    std::vector<int32_t> seq(static_cast<size_t>(par)), pos(static_cast<size_t>(par));
    for (int64_t s = 0; s < par; ++s) seq[size_t(s)] = int32_t(s);
    for (int64_t step = 0; step < tg; ++step) {
      for (auto& p : pos) p = int32_t(64 + step);
      const auto t0 = Clock::now();
      c.eval(tokens(par), seq, pos, std::vector<uint8_t>(size_t(par), 1));
      t.push_back(ms_since(t0));
    }
    t.erase(t.begin());
    const double ms = median(t);
    std::printf("parallel decode %lld slots (graphs): %.3f ms/step, %.1f tok/s total\n",
                (long long)par, ms, par * 1e3 / ms);
  }
  return 0;
}
