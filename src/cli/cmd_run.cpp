// shimmy run -m FILE [-p PROMPT] [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]
//            [--repeat-penalty R] [--seed S] [-c CTX] [-t THREADS] [--json] [--stop S]...
//            [--gpu-backend B] [--gpu-layers N] [--gpu-margin MiB] [--tensor-split a,b]
// Streams the continuation of PROMPT to stdout (the prompt itself is not echoed).
// --json prints {"prompt_tokens":[...], "tokens":[...], "text":"..."} at the end instead.
// Without -p: an interactive loop, one completion per line read from stdin.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "engine/session.h"

namespace shimmy::cli {

namespace {

int complete(engine::Session& s, const tokenizer::Tokenizer& tok, const std::string& prompt,
             const engine::GenerateOptions& g, bool json, bool verbose) {
  auto ids = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  auto r = s.generate(ids, g, [&](const std::string& piece) {
    if (!json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  if (!r) {
    std::fprintf(stderr, "\nerror: %s\n", r.error().message.c_str());
    return 1;
  }
  if (json) {
    nlohmann::json j = {{"prompt_tokens", r->prompt_tokens},
                        {"tokens", r->tokens},
                        {"text", r->text},
                        {"stop_reason", engine::stop_reason_name(r->reason)}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("\n");
  }
  if (verbose) {
    std::fprintf(
        stderr,
        "prompt: %zu tokens in %.3f s (%.1f tok/s); generated %zu tokens in %.3f s (%.1f tok/s)\n",
        r->prompt_tokens.size(), r->prompt_seconds,
        r->prompt_tokens.size() / std::max(1e-9, r->prompt_seconds), r->tokens.size(),
        r->gen_seconds, r->tokens.size() / std::max(1e-9, r->gen_seconds));
  }
  return 0;
}

}  // namespace

int cmd_run(int argc, char** argv) {
  CLI::App app{"Generate text from a prompt", "shimmy run"};
  ModelOptions mo;
  engine::GenerateOptions g;
  std::string prompt;
  bool have_prompt = false, json = false, verbose = false;
  add_model_options(app, mo);
  add_sampling_options(app, g.sampling);
  auto* p = app.add_option("-p,--prompt", prompt, "the prompt (none: interactive)");
  app.add_option("-n,--n-predict", g.n_predict,
                 "tokens to generate (-1: until the context is full)")
      ->envname("SHIMMY_N_PREDICT");
  app.add_option("--stop", g.stop, "stop string (repeatable)");
  app.add_flag("--json", json, "print one JSON object at the end instead of streaming");
  app.add_flag("-v,--verbose", verbose, "print timings to stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  have_prompt = p->count() > 0;
  auto model = model::load_model(mo.model, /*pack=*/false);  // packed after placement
  if (!model) {
    std::fprintf(stderr, "error: %s\n", model.error().message.c_str());
    return 1;
  }
  auto tok = tokenizer::Tokenizer::from_gguf((*model)->file);
  if (!tok) {
    std::fprintf(stderr, "error: %s\n", tok.error().message.c_str());
    return 1;
  }
  const int64_t ctx = mo.ctx > 0 ? mo.ctx : std::min<int64_t>(4096, (*model)->cfg.n_ctx_train);
  const int64_t batch = 256;
  auto offload = place_or_report(**model, mo, {ctx, 1, batch, mo.kv_type == "f16"});
  if (!offload) return 3;
  engine::ThreadPool pool(mo.threads > 0 ? mo.threads : engine::physical_cores());
  engine::Session session(**model, **tok, pool, ctx, batch, mo.kv_type == "f16",
                          offload->layer_plan());
  if (have_prompt) return complete(session, **tok, prompt, g, json, verbose);
  std::string line;
  std::fprintf(stderr, "> ");
  while (std::getline(std::cin, line)) {
    if (!line.empty()) complete(session, **tok, line, g, json, verbose);
    std::fprintf(stderr, "> ");
  }
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace shimmy::cli
