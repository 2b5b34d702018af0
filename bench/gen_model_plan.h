// What shimmy-gen-model writes: the shapes of real models and llama.cpp's rules for which
// tensor gets which weight type in a quantization mix. No I/O here; gen_model.cpp turns
// a plan into a file.
//
// Tensor shapes are GGUF order, ne0 (the row length, i.e. the input dimension of a
// matmul) first:
//   token_embd.weight      [n_embd, n_vocab]       output.weight     [n_embd, n_vocab]
//   blk.N.attn_q.weight    [n_embd, n_embd]        attn_k/v.weight   [n_embd, n_kv*head_dim]
//   blk.N.attn_output      [n_embd, n_embd]        ffn_gate/up       [n_embd, n_ff]
//   blk.N.ffn_down.weight  [n_ff, n_embd]          *_norm.weight     [n_embd] F32
//   qwen2: blk.N.attn_q/k/v.bias [n_embd] / [n_kv*head_dim] F32; tied embeddings (no output)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gguf/types.h"

namespace shimmy::bench {

struct ModelShape {
  std::string shape;  // "tinyllama", "qwen2.5-0.5b", "tiny"
  std::string arch;   // general.architecture: "llama", "qwen2"
  std::string name;   // general.name
  uint32_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_ctx = 0;
  float rope_base = 10000.0f, rms_eps = 1e-5f;
  bool qkv_bias = false;     // qwen2: biases on q, k and v
  bool tied_output = false;  // no output.weight; token_embd doubles as the output matrix
  uint32_t n_vocab = 0;      // rows of token_embd; 0: the vocab file's token count
  std::string vocab_file;    // default vocabulary, a file name under ../shared/vocab
  uint32_t head_dim() const { return n_embd / n_head; }
};

// Known shapes; nullopt for an unknown name.
std::optional<ModelShape> find_shape(const std::string& name);
std::vector<std::string> shape_names();

// A quantization mix ("Q4_K_M"): its llama.cpp general.file_type id and base type.
struct Mix {
  std::string name;
  uint32_t file_type = 0;
  gguf::TensorType base = gguf::TensorType::F16;
  bool quantized = false;  // llama.cpp applies its per-tensor rules only to quantized mixes
};
std::optional<Mix> find_mix(const std::string& name);
std::vector<std::string> mix_names();

// How a tensor's random values are drawn: value = mean + std * (Gaussian-ish sample).
struct TensorPlan {
  std::string name;
  gguf::TensorType type = gguf::TensorType::F32;
  std::vector<uint64_t> shape;  // ne0 first
  float mean = 0.0f, std = 0.02f;
  uint64_t rows() const;
};

// Every tensor of the model, in file order, with its type under `mix`.
std::vector<TensorPlan> plan_tensors(const ModelShape& s, uint32_t n_vocab, const Mix& mix);

// llama.cpp's type for one 2-D weight under a mix (exposed for tests and docs):
// `role` is the tensor name without "blk.N." ("attn_v.weight"), `layer` its block.
gguf::TensorType weight_type(const ModelShape& s, const Mix& mix, const std::string& role,
                             uint32_t layer, uint64_t ne0);

}  // namespace shimmy::bench
