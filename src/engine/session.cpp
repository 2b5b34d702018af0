#include "engine/session.h"

#include <chrono>

namespace shimmy::engine {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Eog:
      return "stop";
    case StopReason::StopString:
      return "stop";
    case StopReason::Length:
      return "length";
    case StopReason::Context:
      return "length";
  }
  return "stop";
}

Session::Session(const model::Model& m, const tokenizer::Tokenizer& tok, ThreadPool& pool,
                 int64_t ctx, int64_t batch, bool kv_f16, model::LayerPlan plan)
    : m_(m),
      tok_(tok),
      ctx_(ctx),
      batch_(batch),
      // The CPU cache holds only the layers the CPU runs (cache_ is built before fwd_).
      cache_(m.cfg, ctx, kv_f16, plan.cpu_layers < 0 ? m.cfg.n_layer : plan.cpu_layers, 0),
      fwd_(m, batch, ctx, pool, std::move(plan)),
      logits_(fwd_.logits_buffer(1)),
      bt_(static_cast<size_t>(batch)) {}

Result<GenerateResult> Session::generate(const std::vector<int32_t>& prompt,
                                         const GenerateOptions& opt,
                                         const std::function<bool(const std::string&)>& on_text) {
  using clock = std::chrono::steady_clock;
  GenerateResult r;
  r.prompt_tokens = prompt;
  const int64_t n = static_cast<int64_t>(prompt.size());
  if (n == 0) return make_error("the prompt is empty");
  if (n >= ctx_) {
    return make_error("the prompt is " + std::to_string(n) + " tokens, but the context holds " +
                      std::to_string(ctx_) + " (raise -c/--ctx-size or shorten the prompt)");
  }
  // A new sequence in the same slot: device stages forget the previous one.
  if (Status st = fwd_.truncate(cache_, 0); !st) return st.error();
  auto t0 = clock::now();
  // Prompt processing in batches; logits only for the last prompt token.
  for (int64_t b = 0; b < n; b += batch_) {
    const int64_t e = std::min(n, b + batch_);
    for (int64_t i = b; i < e; ++i) {
      bt_[static_cast<size_t>(i - b)] = {prompt[static_cast<size_t>(i)], static_cast<int32_t>(i),
                                         &cache_, i == n - 1};
    }
    Status st = fwd_.eval(
        std::span<const model::BatchToken>(bt_.data(), static_cast<size_t>(e - b)), logits_);
    if (!st) return st.error();
  }
  auto t1 = clock::now();
  r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

  Sampler sampler(opt.sampling, static_cast<int32_t>(m_.cfg.n_vocab));
  for (int32_t id : prompt) sampler.accept(id);
  tokenizer::StreamDecoder dec(tok_);
  StopStrings stops(opt.stop);
  bool keep_going = true;
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    r.text += s;
    if (on_text && !on_text(s)) keep_going = false;
  };
  int64_t pos = n;
  for (;;) {
    if (opt.n_predict >= 0 && static_cast<int64_t>(r.tokens.size()) >= opt.n_predict) {
      r.reason = StopReason::Length;
      break;
    }
    const int32_t id = sampler.sample(logits_);
    if (tok_.is_eog(id)) {
      r.reason = StopReason::Eog;
      break;
    }
    sampler.accept(id);
    r.tokens.push_back(id);
    auto step = stops.push(dec.push(id));
    emit(step.emit);
    if (step.stopped) {
      r.reason = StopReason::StopString;
      break;
    }
    if (!keep_going) break;
    if (pos >= ctx_) {
      r.reason = StopReason::Context;
      break;
    }
    model::BatchToken bt{id, static_cast<int32_t>(pos), &cache_, true};
    Status st = fwd_.eval(std::span<const model::BatchToken>(&bt, 1), logits_);
    if (!st) return st.error();
    ++pos;
  }
  if (r.reason != StopReason::StopString) {
    auto step = stops.push(dec.flush());
    emit(step.emit);
    emit(stops.flush());
  }
  r.gen_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

}  // namespace shimmy::engine
