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
// All scratch memory is allocated in the constructor for `max_batch` tokens: eval() never
// allocates. Numerics follow the reference (llama.cpp's CPU path): activations are
// quantized to the weight's activation type before each product (quant/kernels.h), K and
// V are stored as f16, q and the attention probabilities are rounded to f16.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/cpu/ops.h"
#include "engine/thread_pool.h"
#include "model/model.h"
#include "util/result.h"

namespace shimmy::model {

// One sequence's keys and values: [n_layer][n_ctx][n_head_kv * head_dim].
class KvCache {
 public:
  KvCache(const Config& c, int64_t n_ctx, bool f16 = true);
  int64_t n_ctx() const { return n_ctx_; }
  bool f16() const { return f16_; }
  uint64_t bytes() const { return f16_ ? k16_.size() * 4 : k32_.size() * 8; }
  // Row of layer l, position p.
  uint16_t* k16(int64_t l, int64_t p) { return k16_.data() + (l * n_ctx_ + p) * kv_dim_; }
  uint16_t* v16(int64_t l, int64_t p) { return v16_.data() + (l * n_ctx_ + p) * kv_dim_; }
  float* k32(int64_t l, int64_t p) { return k32_.data() + (l * n_ctx_ + p) * kv_dim_; }
  float* v32(int64_t l, int64_t p) { return v32_.data() + (l * n_ctx_ + p) * kv_dim_; }

 private:
  int64_t n_ctx_, kv_dim_;
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

class Forward {
 public:
  // max_ctx: the largest cache any batch token will use.
  Forward(const Model& m, int64_t max_batch, int64_t max_ctx, engine::ThreadPool& pool);

  // Runs the batch; writes logits of the rows with `logits` set, in batch order, to
  // out[k * n_vocab ...]. Errors: batch too large, token id out of range, position out of
  // the cache.
  Status eval(std::span<const BatchToken> batch, float* out);

  const Model& model() const { return m_; }
  int64_t max_batch() const { return max_batch_; }

 private:
  // y[m, w.rows] = x[m, w.cols] W^T (x quantized to W's activation type first).
  void matmul(const Weight& w, const float* x, int64_t m, float* y);
  void attention(std::span<const BatchToken> batch, int64_t layer);

  const Model& m_;
  const Config& c_;
  int64_t max_batch_, max_ctx_;
  engine::ThreadPool& pool_;
  cpu::RopeParams rope_;
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_, cs_, scores_;
  std::vector<uint8_t> act_;  // quantized activations, [m] rows of the largest act row
};

}  // namespace shimmy::model
