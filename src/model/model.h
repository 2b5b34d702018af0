// A loaded model: hyper-parameters (one flat config for the llama family — llama, mistral,
// qwen2, qwen3 — with flags for the variants) and views of its weights straight in the
// GGUF memory map, each with its kernels chosen once at load ("dispatch on type once").
//
// Weight shapes follow GGUF: a matrix [rows, cols] is stored row-major with ne0 = cols
// (the input dimension), so y = W x is one dot product per row.
//   token_embd   [n_vocab, n_embd]      output       [n_vocab, n_embd] (or tied to token_embd)
//   attn_q       [n_head*hd, n_embd]    attn_k/v     [n_head_kv*hd, n_embd]
//   attn_output  [n_embd, n_head*hd]    ffn_gate/up  [n_ff, n_embd]   ffn_down [n_embd, n_ff]
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/quant/kernels.h"
#include "gguf/reader.h"
#include "util/result.h"

namespace shimmy::model {

enum class RopeType { Normal, NeoX };  // pairs (2i, 2i+1) or (i, i + n_rot/2)
enum class RopeScaling { None, Linear, Yarn };

struct Config {
  std::string arch;  // "llama", "qwen2", "qwen3"
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0,
          n_ctx_train = 0, n_rot = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  RopeType rope_type = RopeType::Normal;
  RopeScaling rope_scaling = RopeScaling::None;
  float rope_scale = 1.0f;  // linear / YaRN factor (positions are divided by it)
  int64_t yarn_orig_ctx = 0;
  float yarn_beta_fast = 32.0f, yarn_beta_slow = 1.0f;
  bool qkv_bias = false;  // qwen2
  bool qk_norm = false;   // qwen3: RMSNorm over each head of q and k
  bool tied_embeddings = false;
};

// One weight tensor: a view into the map plus its kernels. `data` is what the CPU kernels
// read: the GGUF bytes in the map, or, once pack_cpu_weights ran, a row-interleaved copy
// (k->group_rows > 1; the map's pages are then released). `src` always points at the
// GGUF-layout bytes in the map (what a GPU plugin uploads).
struct Weight {
  const uint8_t* data = nullptr;
  const uint8_t* src = nullptr;
  gguf::TensorType type = gguf::TensorType::F32;
  int64_t rows = 0, cols = 0;
  size_t row_bytes = 0;
  const quant::WeightKernels* k = nullptr;  // null for vectors (norms, biases: F32 only)
  const float* f32() const { return reinterpret_cast<const float*>(data); }
  explicit operator bool() const { return data != nullptr; }
};

struct Layer {
  Weight attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm;
  Weight ffn_norm, w_gate, w_up, w_down;
};

struct Model {
  gguf::File file;  // owns the memory map the weights point into
  // Row-interleaved copies (pack_cpu_weights): one aligned block per call, freed with free.
  struct FreeBytes {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t[], FreeBytes>> packed;
  Config cfg;
  Weight token_embd, output_norm, output, rope_freqs;
  std::vector<Layer> layers;
  uint64_t weight_bytes = 0;  // bytes of all weights (what a decode step reads)
};

// Loads and validates: architecture supported, every tensor present with the expected
// shape and a type the CPU kernels compute. Errors name the tensor and the expected shape.
// pack = false leaves every weight in the map's GGUF layout: callers that place layers on a
// GPU first call pack_cpu_weights for the CPU's layers once the placement is known.
Result<std::unique_ptr<Model>> load_model(const std::string& path, bool pack = true);
Result<std::unique_ptr<Model>> load_model(gguf::File file, bool pack = true);

// Repacks the matrix weights of layers [0, n_layers) (and the output projection when
// `output` and it is not tied to the embeddings) into the CPU's row-interleaved layouts
// where one exists (quant/packed.h), and releases the mapped pages they came from, so the
// model is not held twice. Layers a GPU runs are left alone. load_model calls it for all
// layers. Packed kernels round like the scalar ones; GGUF-layout AVX2 kernels need not
// (the K types' accumulate in 8 FMA lanes), so packed and unpacked results can differ in
// the last bits. Either way a row's result never depends on the batch.
void pack_cpu_weights(Model& m, int64_t n_layers, bool output);

// "llama, mistral (as llama), qwen2, qwen3"
const char* supported_architectures();

}  // namespace shimmy::model
