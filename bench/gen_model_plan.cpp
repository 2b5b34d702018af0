#include "gen_model_plan.h"

#include <cmath>

namespace shimmy::bench {

using gguf::TensorType;

namespace {

ModelShape tinyllama() {
  ModelShape s;
  s.shape = "tinyllama";
  s.arch = "llama";
  s.name = "TinyLlama-1.1B (random weights)";
  s.n_embd = 2048;
  s.n_layer = 22;
  s.n_head = 32;
  s.n_head_kv = 4;
  s.n_ff = 5632;
  s.n_ctx = 2048;
  s.rope_base = 10000.0f;
  s.rms_eps = 1e-5f;
  s.n_vocab = 32000;
  s.vocab_file = "ggml-vocab-llama-spm.gguf";
  return s;
}

ModelShape qwen25_05b() {
  ModelShape s;
  s.shape = "qwen2.5-0.5b";
  s.arch = "qwen2";
  s.name = "Qwen2.5-0.5B (random weights)";
  s.n_embd = 896;
  s.n_layer = 24;
  s.n_head = 14;
  s.n_head_kv = 2;
  s.n_ff = 4864;
  s.n_ctx = 32768;
  s.rope_base = 1000000.0f;
  s.rms_eps = 1e-6f;
  s.qkv_bias = true;
  s.tied_output = true;
  s.n_vocab = 151936;
  s.vocab_file = "ggml-vocab-qwen2.gguf";
  return s;
}

// Small enough for unit tests (a few MB), shaped to exercise GQA and 256-wide K-quants.
ModelShape tiny() {
  ModelShape s;
  s.shape = "tiny";
  s.arch = "llama";
  s.name = "tiny llama (random weights)";
  s.n_embd = 256;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 768;
  s.n_ctx = 512;
  s.vocab_file = "ggml-vocab-llama-spm.gguf";
  return s;
}

// llama.cpp's "use more bits" layers: the first and last eighth, and every third between.
bool use_more_bits(uint32_t i, uint32_t n) {
  const auto il = static_cast<int64_t>(i), nl = static_cast<int64_t>(n);
  return il < nl / 8 || il >= 7 * nl / 8 || (il - nl / 8) % 3 == 2;
}

// llama.cpp's fallback when a row is not a multiple of a 256-wide K-quant block.
TensorType fallback_32(TensorType t) {
  switch (t) {
    case TensorType::Q4_K:
      return TensorType::Q5_0;
    case TensorType::Q5_K:
      return TensorType::Q5_1;
    case TensorType::Q6_K:
      return TensorType::Q8_0;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
      return TensorType::IQ4_NL;
    default:
      return t;
  }
}

}  // namespace

std::optional<ModelShape> find_shape(const std::string& name) {
  if (name == "tinyllama") return tinyllama();
  if (name == "qwen2.5-0.5b") return qwen25_05b();
  if (name == "tiny") return tiny();
  return std::nullopt;
}

std::vector<std::string> shape_names() {
  return {"tinyllama", "qwen2.5-0.5b", "tiny"};
}

std::optional<Mix> find_mix(const std::string& name) {
  // llama.cpp's llama_ftype ids (general.file_type).
  static const Mix mixes[] = {
      {"F32", 0, TensorType::F32, false},     {"F16", 1, TensorType::F16, false},
      {"BF16", 32, TensorType::BF16, false},  {"Q4_0", 2, TensorType::Q4_0, true},
      {"Q4_1", 3, TensorType::Q4_1, true},    {"Q8_0", 7, TensorType::Q8_0, true},
      {"Q5_0", 8, TensorType::Q5_0, true},    {"Q5_1", 9, TensorType::Q5_1, true},
      {"Q4_K_M", 15, TensorType::Q4_K, true}, {"Q5_K_M", 17, TensorType::Q5_K, true},
      {"Q6_K", 18, TensorType::Q6_K, true},
  };
  for (const auto& m : mixes) {
    if (m.name == name) return m;
  }
  return std::nullopt;
}

std::vector<std::string> mix_names() {
  return {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K_M", "Q5_K_M", "Q6_K"};
}

// The subset of llama.cpp's llama_tensor_get_type that the mixes above reach:
//   - float mixes: every 2-D weight in the mix's type, no rules;
//   - the output matrix (token_embd when tied): Q8_0 if ne0 % 256 != 0, else Q6_K unless
//     the mix is Q8_0;
//   - Q4_K_M / Q5_K_M: attn_v and ffn_down in use_more_bits() layers get Q6_K;
//   - a 256-block type on a row that is not a multiple of 256 falls back to a 32-block one.
TensorType weight_type(const ModelShape& s, const Mix& mix, const std::string& role, uint32_t layer,
                       uint64_t ne0) {
  if (!mix.quantized) return mix.base;
  TensorType t = mix.base;
  const bool is_output = role == "output.weight" || (s.tied_output && role == "token_embd.weight");
  const bool k_m = mix.name == "Q4_K_M" || mix.name == "Q5_K_M";
  if (is_output) {
    if (ne0 % 256 != 0) return TensorType::Q8_0;
    if (t != TensorType::Q8_0) t = TensorType::Q6_K;
  } else if (k_m && (role == "attn_v.weight" || role == "ffn_down.weight") &&
             use_more_bits(layer, s.n_layer)) {
    t = TensorType::Q6_K;
  }
  const auto traits = gguf::type_traits(static_cast<uint32_t>(t));
  if (traits && ne0 % traits->block_size != 0) t = fallback_32(t);
  return t;
}

uint64_t TensorPlan::rows() const {
  uint64_t r = 1;
  for (size_t k = 1; k < shape.size(); ++k) r *= shape[k];
  return r;
}

std::vector<TensorPlan> plan_tensors(const ModelShape& s, uint32_t n_vocab, const Mix& mix) {
  const uint64_t e = s.n_embd, kv = uint64_t{s.n_head_kv} * s.head_dim(), ff = s.n_ff;
  std::vector<TensorPlan> out;
  auto weight = [&](const std::string& role, uint32_t layer, std::vector<uint64_t> shape,
                    const std::string& name, float std) {
    out.push_back({name, weight_type(s, mix, role, layer, shape[0]), std::move(shape), 0.0f, std});
  };
  auto vec = [&](const std::string& name, uint64_t n, float mean, float std) {
    out.push_back({name, TensorType::F32, {n}, mean, std});
  };
  // Embedding rows have unit-ish norm (std 1/sqrt(n_embd)); matrices std 0.02, which
  // keeps the RMS-normed residual stream finite over a few dozen layers.
  const float embd_std = 1.0f / std::sqrt(static_cast<float>(e));
  weight("token_embd.weight", 0, {e, n_vocab}, "token_embd.weight", embd_std);
  vec("output_norm.weight", e, 1.0f, 0.02f);
  if (!s.tied_output) weight("output.weight", 0, {e, n_vocab}, "output.weight", 0.02f);
  for (uint32_t l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", e, 1.0f, 0.02f);
    weight("attn_q.weight", l, {e, e}, b + "attn_q.weight", 0.02f);
    weight("attn_k.weight", l, {e, kv}, b + "attn_k.weight", 0.02f);
    weight("attn_v.weight", l, {e, kv}, b + "attn_v.weight", 0.02f);
    if (s.qkv_bias) {
      vec(b + "attn_q.bias", e, 0.0f, 0.02f);
      vec(b + "attn_k.bias", kv, 0.0f, 0.02f);
      vec(b + "attn_v.bias", kv, 0.0f, 0.02f);
    }
    weight("attn_output.weight", l, {e, e}, b + "attn_output.weight", 0.02f);
    vec(b + "ffn_norm.weight", e, 1.0f, 0.02f);
    weight("ffn_gate.weight", l, {e, ff}, b + "ffn_gate.weight", 0.02f);
    weight("ffn_up.weight", l, {e, ff}, b + "ffn_up.weight", 0.02f);
    weight("ffn_down.weight", l, {ff, e}, b + "ffn_down.weight", 0.02f);
  }
  return out;
}

}  // namespace shimmy::bench
