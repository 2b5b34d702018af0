// The llama-family forward pass on the CPU, for a batch of tokens that may belong to
// different sequences (prompt processing is one sequence with many tokens; parallel decode
// is many sequences with one token each; anything in between works).
//
//   x = embed(tokens)                                   [n, n_embd]
//   per layer:  h = rmsnorm(x) * attn_norm
//               q,k,v = h Wq (+bq), h Wk (+bk), h Wv (+bv)      rope(q, k) at each position
//               k, v → the token's sequence cache; causal attention over its cache
//               x += attn Wo
//               h = rmsnorm(x) * ffn_norm;   x += (silu(h Wgate) * (h Wup)) Wdown
//   logits = (rmsnorm(x) * output_norm) Woutput        only for the rows asked for
//
// Partial offload: with a LayerPlan, the CPU runs layers [0, cpu_layers) and each device
// stage (a backend plugin's context, backend/plugin_abi.h) runs the next consecutive range,
// taking the f32 hidden states, the rope cos/sin and each token's sequence slot and
// position; the last stage may also run the head and return the logits. The stages keep
// their own KV caches, addressed by KvCache::slot().
//
// All scratch memory is allocated in the constructor for `max_batch` tokens: eval() never
// allocates. Numerics follow the reference (llama.cpp's CPU path): activations are
// quantized to the weight's activation type before each product (quant/kernels.h), K and
// V are stored as f16, q and the attention probabilities are rounded to f16.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/plugin_abi.h"
#include "engine/thread_pool.h"
#include "model/model.h"
#include "util/result.h"

namespace shimmy::model {

// One sequence's keys and values on the CPU: [n_layers][n_ctx][n_head_kv * head_dim], for
// the layers the CPU runs (all of them, or [0, Forward::cpu_layers())). `slot` names the
// sequence in the device stages' caches (0 .. max_seqs-1); give each live cache its own.
class KvCache {
 public:
  KvCache(const Config& c, int64_t n_ctx, bool f16 = true) : KvCache(c, n_ctx, f16, c.n_layer) {}
  KvCache(const Config& c, int64_t n_ctx, bool f16, int64_t n_layers, int32_t slot = 0);
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_layers() const { return n_layers_; }
  int32_t slot() const { return slot_; }
  bool f16() const { return f16_; }
  uint64_t bytes() const { return f16_ ? k16_.size() * 4 : k32_.size() * 8; }
  // Row of layer l, position p.
  uint16_t* k16(int64_t l, int64_t p) { return k16_.data() + (l * n_ctx_ + p) * kv_dim_; }
  uint16_t* v16(int64_t l, int64_t p) { return v16_.data() + (l * n_ctx_ + p) * kv_dim_; }
  float* k32(int64_t l, int64_t p) { return k32_.data() + (l * n_ctx_ + p) * kv_dim_; }
  float* v32(int64_t l, int64_t p) { return v32_.data() + (l * n_ctx_ + p) * kv_dim_; }

 private:
  int64_t n_ctx_, kv_dim_, n_layers_;
  int32_t slot_;
  bool f16_;
  std::vector<uint16_t> k16_, v16_;
  std::vector<float> k32_, v32_;
};

struct BatchToken {
  int32_t token = 0;
  int32_t pos = 0;           // position in its sequence; the cache holds 0..pos-1 already
  KvCache* cache = nullptr;  // the sequence's cache
  bool logits = false;       // compute this row's logits
};

// Layers [begin, end) of the model, and the head when `head`, run by a plugin context that
// someone else (engine/offload.h) created and owns.
struct DeviceStage {
  const ShimmyBackendApi* api = nullptr;
  ShimmyContext* ctx = nullptr;
  int64_t begin = 0, end = 0;
  bool head = false;
  int64_t max_batch = 0, max_seqs = 0;  // what the context was created for
  std::string label;                    // "cuda:0", for messages
};

// What runs where; the default runs everything on the CPU.
struct LayerPlan {
  int64_t cpu_layers = -1;          // the CPU runs [0, cpu_layers); -1: every layer
  std::vector<DeviceStage> stages;  // consecutive from cpu_layers to n_layer
};

// Rope parameters of a model (rope base, NeoX pairs, linear/YaRN scaling, Llama-3 frequency
// factors): what Forward rotates with, and what any backend must rotate with too.
cpu::RopeParams rope_params(const Model& m);

class Forward {
 public:
  // max_ctx: the largest cache any batch token will use.
  Forward(const Model& m, int64_t max_batch, int64_t max_ctx, engine::ThreadPool& pool,
          LayerPlan plan = {});
  ~Forward();
  Forward(const Forward&) = delete;
  Forward& operator=(const Forward&) = delete;

  // Runs the batch; writes logits of the rows with `logits` set, in batch order, to
  // out[k * n_vocab ...]. Errors: batch too large, token id out of range, position out of
  // the cache.
  Status eval(std::span<const BatchToken> batch, float* out);

  // A place for eval()'s `out` of at least `rows` logit rows that the device running the
  // head writes directly: page-locked memory from its plugin (host_alloc), which saves a
  // copy of every row through the plugin's staging buffer, else plain memory. Valid until
  // a call asks for more rows (the old buffer is then freed) or the Forward is destroyed.
  float* logits_buffer(int64_t rows);

  // Forgets positions >= pos of the cache's sequence in every device stage (pos 0: the
  // sequence starts over). Call it before reusing a cache for another sequence; the CPU
  // part needs nothing (positions are simply overwritten).
  Status truncate(const KvCache& cache, int64_t pos);

  const Model& model() const { return m_; }
  int64_t max_batch() const { return max_batch_; }
  // Layers the CPU runs, [0, cpu_layers()): the layers a KvCache needs.
  int64_t cpu_layers() const { return cpu_layers_; }

 private:
  // y[m, w.rows] = x[m, w.cols] W^T (x quantized to W's activation type first).
  void matmul(const Weight& w, const float* x, int64_t m, float* y);
  void attention(std::span<const BatchToken> batch, int64_t layer);
  Status run_stages(std::span<const BatchToken> batch, float* out, bool& logits_done);

  const Model& m_;
  const Config& c_;
  int64_t max_batch_, max_ctx_;
  engine::ThreadPool& pool_;
  cpu::RopeParams rope_;
  int64_t cpu_layers_;
  std::vector<DeviceStage> stages_;
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_, cs_, scores_;
  std::vector<float> y_;            // [max_batch, n_embd] a stage's output hidden states
  std::vector<int32_t> seq_, pos_;  // [max_batch] a stage batch's slots and positions
  std::vector<uint8_t> want_;       // [max_batch] rows that want logits
  std::vector<uint8_t> act_;        // quantized activations, [m] rows of the largest act row
  // logits_buffer(): out_floats_ floats at out_, freed by out_free_ (a plugin's host_free)
  // or owned by out_plain_.
  float* out_ = nullptr;
  size_t out_floats_ = 0;
  void (*out_free_)(void*) = nullptr;
  std::vector<float> out_plain_;
};

}  // namespace shimmy::model
