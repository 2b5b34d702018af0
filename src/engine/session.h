// One generation session over a loaded model: a KV cache, prompt processing in batches,
// then a decode loop that samples, detokenizes (always valid UTF-8) and stops at an
// end-of-generation token, a stop string or the token limit. The CLI's `run` and, later,
// the server's slots drive it. All buffers are sized at construction; the decode loop
// does not allocate beyond the text it hands out.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/thread_pool.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"

namespace shimmy::engine {

struct GenerateOptions {
  int32_t n_predict = 128;  // < 0: until the context is full
  SamplerParams sampling;
  std::vector<std::string> stop;
};

enum class StopReason { Eog, StopString, Length, Context };
const char* stop_reason_name(StopReason r);

struct GenerateResult {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;  // generated ids (the EOG token is not included)
  std::string text;
  StopReason reason = StopReason::Length;
  double prompt_seconds = 0, gen_seconds = 0;
};

class Session {
 public:
  // ctx: context size in tokens; batch: prompt tokens per forward pass; plan: layers on
  // devices (engine/offload.h), whose contexts must serve ctx, batch and slot 0.
  Session(const model::Model& m, const tokenizer::Tokenizer& tok, ThreadPool& pool, int64_t ctx,
          int64_t batch = 256, bool kv_f16 = true, model::LayerPlan plan = {});

  // Generates a continuation of `prompt_ids`; on_text receives each piece of text as soon
  // as it is safe to emit (return false to stop early). Errors: prompt longer than the
  // context, bad token ids.
  Result<GenerateResult> generate(const std::vector<int32_t>& prompt_ids,
                                  const GenerateOptions& opt,
                                  const std::function<bool(const std::string&)>& on_text = {});

  int64_t ctx() const { return ctx_; }

 private:
  const model::Model& m_;
  const tokenizer::Tokenizer& tok_;
  int64_t ctx_, batch_;
  model::KvCache cache_;
  model::Forward fwd_;
  float* logits_;  // one row, from fwd_.logits_buffer
  std::vector<model::BatchToken> bt_;
};

}  // namespace shimmy::engine
