#include "model/slice.h"

namespace shimmy::model {

namespace {

ShimmyTensor to_c(const Weight& w) {
  ShimmyTensor t{};
  if (!w) return t;
  t.data = w.src ? w.src : w.data;  // the GGUF layout, never the CPU's packed copy
  t.type = static_cast<uint32_t>(w.type);
  t.rows = w.rows;
  t.cols = w.cols;
  t.row_bytes = w.row_bytes;
  return t;
}

}  // namespace

SliceDesc describe_slice(const Model& m, int64_t begin, int64_t end, bool head,
                         const SliceShape& shape) {
  const Config& c = m.cfg;
  SliceDesc s;
  ShimmyModelDesc& d = s.desc;
  d.n_vocab = c.n_vocab;
  d.n_embd = c.n_embd;
  d.n_layer = c.n_layer;
  d.n_head = c.n_head;
  d.n_head_kv = c.n_head_kv;
  d.head_dim = c.head_dim;
  d.n_ff = c.n_ff;
  d.n_rot = c.n_rot;
  d.rms_eps = c.rms_eps;
  d.rope_type = c.rope_type == RopeType::NeoX ? SHIMMY_ROPE_NEOX : SHIMMY_ROPE_NORMAL;
  d.qkv_bias = c.qkv_bias;
  d.qk_norm = c.qk_norm;
  d.layer_begin = begin;
  d.layer_end = end;
  for (int64_t l = begin; l < end; ++l) {
    const Layer& L = m.layers[static_cast<size_t>(l)];
    s.layers.push_back({to_c(L.attn_norm), to_c(L.wq), to_c(L.wk), to_c(L.wv), to_c(L.wo),
                        to_c(L.bq), to_c(L.bk), to_c(L.bv), to_c(L.q_norm), to_c(L.k_norm),
                        to_c(L.ffn_norm), to_c(L.w_gate), to_c(L.w_up), to_c(L.w_down)});
  }
  d.layers = s.layers.data();
  d.has_output = head;
  if (head) {
    d.output_norm = to_c(m.output_norm);
    d.output = to_c(m.output);
  }
  d.kv_type = shape.kv_f16 ? SHIMMY_KV_F16 : SHIMMY_KV_F32;
  d.max_ctx = shape.ctx;
  d.max_seqs = shape.seqs;
  d.max_batch = shape.batch;
  return s;
}

uint64_t tensor_bytes(const Weight& w) {
  return w ? w.row_bytes * static_cast<uint64_t>(w.rows) : 0;
}

uint64_t layer_bytes(const Model& m, int64_t l) {
  uint64_t b = 0;
  for (const Weight* w : layer_tensors(m.layers[static_cast<size_t>(l)])) b += tensor_bytes(*w);
  return b;
}

uint64_t head_bytes(const Model& m) {
  return tensor_bytes(m.output_norm) + tensor_bytes(m.output);
}

uint64_t kv_bytes_per_layer(const Config& c, const SliceShape& shape) {
  return static_cast<uint64_t>(shape.ctx) * static_cast<uint64_t>(shape.seqs) * 2 *
         static_cast<uint64_t>(c.n_head_kv * c.head_dim) * (shape.kv_f16 ? 2 : 4);
}

}  // namespace shimmy::model
