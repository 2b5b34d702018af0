// shimmy logits -m FILE [--top K] [--json] [-c CTX] [-t THREADS] [--gpu-backend B] [-ngl N] ...
// The conformance interface: reads the prompt from stdin (exact bytes), tokenizes it as the
// reference does (BOS as the metadata says, special tokens not parsed), evaluates every
// position in one batch, and prints per position the log-sum-exp and the top K logits:
//   {"tokens":[...], "positions":[{"lse":..., "top":[[id, logit], ...]}, ...]}
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/commands.h"
#include "cli/options.h"
#include "engine/thread_pool.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"

namespace shimmy::cli {

int cmd_logits(int argc, char** argv) {
  CLI::App app{"Per-position top-k logits of a prompt read from stdin, as JSON", "shimmy logits"};
  ModelOptions mo;  // -c defaults to min(2048, training context) here
  int top = 10;
  bool json = true;
  add_model_options(app, mo);
  app.add_option("--top", top, "logits per position, highest first (up to the vocabulary size)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", json, "print JSON (the only output format; accepted for clarity)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
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
  const model::Config& c = (*model)->cfg;
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::vector<int32_t> ids = (*tok)->encode(text, /*add_special=*/true, /*parse_special=*/false);
  const int64_t ctx = mo.ctx > 0 ? mo.ctx : std::min<int64_t>(2048, c.n_ctx_train);
  if (ids.empty()) {
    std::fprintf(stderr, "error: the prompt is empty after tokenization\n");
    return 1;
  }
  if (static_cast<int64_t>(ids.size()) > ctx) {
    std::fprintf(stderr, "error: the prompt is %zu tokens, longer than the context of %lld\n",
                 ids.size(), static_cast<long long>(ctx));
    return 1;
  }
  const int64_t n = static_cast<int64_t>(ids.size());
  const bool kv_f16 = mo.kv_type == "f16";
  auto offload = place_or_report(**model, mo, {ctx, 1, n, kv_f16});
  if (!offload) return 3;
  engine::ThreadPool pool(mo.threads > 0 ? mo.threads : engine::physical_cores());
  model::Forward fwd(**model, n, ctx, pool, offload->layer_plan());
  model::KvCache cache(c, ctx, kv_f16, fwd.cpu_layers(), 0);
  std::vector<model::BatchToken> batch(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) batch[i] = {ids[i], static_cast<int32_t>(i), &cache, true};
  std::vector<float> logits(static_cast<size_t>(n * c.n_vocab));
  if (Status st = fwd.eval(batch, logits.data()); !st) {
    std::fprintf(stderr, "error: %s\n", st.message().c_str());
    return 1;
  }
  const int k = static_cast<int>(std::min<int64_t>(top, c.n_vocab));
  nlohmann::json out;
  out["tokens"] = ids;
  nlohmann::json positions = nlohmann::json::array();
  std::vector<int32_t> order(static_cast<size_t>(c.n_vocab));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * c.n_vocab;
    float mx = *std::max_element(row, row + c.n_vocab);
    double sum = 0;
    for (int64_t v = 0; v < c.n_vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    nlohmann::json topk = nlohmann::json::array();
    for (int j = 0; j < k; ++j) topk.push_back({order[j], row[order[j]]});
    positions.push_back({{"lse", mx + std::log(sum)}, {"top", topk}});
  }
  out["positions"] = positions;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace shimmy::cli
