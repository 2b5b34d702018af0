// Options shared by the subcommands that load a model (run, bench, logits, serve):
// flag names follow llama.cpp and Ollama, and each has a SHIMMY_* environment variable.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "engine/sampler.h"

namespace shimmy::cli {

struct ModelOptions {
  std::string model;
  int64_t ctx = 0;  // 0: min(4096, training context)
  int threads = 0;  // 0: physical cores
  std::string kv_type = "f16";
};

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
