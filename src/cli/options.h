// Options shared by the subcommands that load a model (run, bench, logits, serve):
// flag names follow llama.cpp and Ollama, and each has a SHIMMY_* environment variable.
// `-ngl` (llama.cpp's spelling of --gpu-layers) is rewritten by main.cpp, since CLI11 only
// takes one-letter short names.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "engine/offload.h"
#include "engine/sampler.h"

namespace shimmy::cli {

struct ModelOptions {
  std::string model;
  int64_t ctx = 0;  // 0: min(4096, training context)
  int threads = 0;  // 0: physical cores
  std::string kv_type = "f16";
  // Where layers run (engine/offload.h, engine/placement.h).
  std::string gpu_backend = "auto";
  std::string gpu_layers = "auto";
  int64_t gpu_margin_mib = 512;
  std::string tensor_split;  // "" : in proportion to free memory
};

inline void add_gpu_options(CLI::App& app, ModelOptions& o) {
  app.add_option("--gpu-backend", o.gpu_backend,
                 "auto (the best usable plugin, else the CPU), cpu, or a plugin name (cuda, ...)")
      ->envname("SHIMMY_GPU_BACKEND")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            const bool ok =
                !s.empty() && s.size() <= 32 &&
                s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
            return ok ? ""
                      : "--gpu-backend must be auto, cpu or a backend name like cuda, not '" + s +
                            "'";
          },
          "NAME"));
  app.add_option("--gpu-layers", o.gpu_layers,
                 "layers on the GPU: auto (as many as fit), all, or N (also -ngl)")
      ->envname("SHIMMY_GPU_LAYERS")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            auto r = engine::parse_gpu_layers(s);
            return r ? "" : r.error().message;
          },
          "auto|all|N"));
  app.add_option("--gpu-margin", o.gpu_margin_mib, "MiB of device memory left free (default 512)")
      ->envname("SHIMMY_GPU_MARGIN")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--tensor-split", o.tensor_split,
                 "share of the layers per device, e.g. 3,1 (default: by free memory)")
      ->envname("SHIMMY_TENSOR_SPLIT")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            auto r = engine::parse_tensor_split(s);
            return r ? "" : r.error().message;
          },
          "a,b,..."));
}

// The flags as the engine takes them (already validated by the parser).
inline engine::BackendOptions backend_options(const ModelOptions& o) {
  engine::BackendOptions b;
  b.backend = o.gpu_backend;
  if (auto g = engine::parse_gpu_layers(o.gpu_layers)) b.layers = *g;
  b.margin_bytes = static_cast<uint64_t>(o.gpu_margin_mib) << 20;
  if (!o.tensor_split.empty()) {
    if (auto t = engine::parse_tensor_split(o.tensor_split)) b.tensor_split = *t;
  }
  return b;
}

// Places a model loaded with pack = false per the flags, uploads the device slices, logs the
// placement, then packs the weights the CPU runs (only those: device layers stay in the
// map's layout and are not held twice). On a request that cannot be honoured prints the
// reason and returns null: the command then exits with status 3.
inline std::unique_ptr<engine::Offload> place_or_report(model::Model& m, const ModelOptions& o,
                                                        const model::SliceShape& shape) {
  auto off = engine::place_model(m, backend_options(o), shape, /*create=*/true);
  if (!off) {
    std::fprintf(stderr, "error: %s\n", off.error().message.c_str());
    return nullptr;
  }
  engine::log_placement(**off);
  model::pack_cpu_weights(m, (*off)->plan().cpu_layers, (*off)->plan().head_on_cpu);
  return std::move(*off);
}

inline void add_model_options(CLI::App& app, ModelOptions& o, bool model_required = true) {
  auto* m = app.add_option("-m,--model", o.model, "GGUF model file")->envname("SHIMMY_MODEL");
  if (model_required) m->required();
  app.add_option("-c,--ctx-size", o.ctx, "context size in tokens (default: min(4096, trained))")
      ->envname("SHIMMY_CTX_SIZE")
      ->check(CLI::NonNegativeNumber);
  app.add_option("-t,--threads", o.threads, "CPU threads (default: physical cores)")
      ->envname("SHIMMY_THREADS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--kv-type", o.kv_type, "KV cache type: f16 or f32")
      ->envname("SHIMMY_KV_TYPE")
      ->check(CLI::IsMember({"f16", "f32"}));
  add_gpu_options(app, o);
}

inline void add_sampling_options(CLI::App& app, engine::SamplerParams& s) {
  app.add_option("--temp", s.temperature, "temperature (0: greedy)")->envname("SHIMMY_TEMP");
  app.add_option("--top-k", s.top_k, "top-k (0: off)")->envname("SHIMMY_TOP_K");
  app.add_option("--top-p", s.top_p, "top-p (1: off)")->envname("SHIMMY_TOP_P");
  app.add_option("--min-p", s.min_p, "min-p (0: off)")->envname("SHIMMY_MIN_P");
  app.add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty (1: off)")
      ->envname("SHIMMY_REPEAT_PENALTY");
  app.add_option("--repeat-last-n", s.penalty_last_n, "tokens the penalties look back over")
      ->envname("SHIMMY_REPEAT_LAST_N");
  app.add_option("--frequency-penalty", s.frequency_penalty, "frequency penalty")
      ->envname("SHIMMY_FREQUENCY_PENALTY");
  app.add_option("--presence-penalty", s.presence_penalty, "presence penalty")
      ->envname("SHIMMY_PRESENCE_PENALTY");
  app.add_option("-s,--seed", s.seed, "random seed (same seed, same output)")
      ->envname("SHIMMY_SEED");
}

}  // namespace shimmy::cli
