// Reading a llama-family model out of a GGUF file: config from metadata, weights by name.
#include <cmath>

#include "model/model.h"

namespace shimmy::model {

namespace {

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t k = 0; k < s.size(); ++k) out += (k ? ", " : "") + std::to_string(s[k]);
  return out + "]";
}

Status read_config(const gguf::File& f, Config& c) {
  c.arch = f.get_string("general.architecture").value_or("");
  if (c.arch != "llama" && c.arch != "qwen2" && c.arch != "qwen3") {
    return make_error(f.path() + ": architecture '" + c.arch +
                      "' is not supported (supported: " + supported_architectures() + ")");
  }
  const std::string a = c.arch + ".";
  auto need = [&](const std::string& key, int64_t& out) -> Status {
    auto v = f.get_uint(a + key);
    if (!v || *v == 0 || *v > (1u << 30)) {
      return make_error(f.path() + ": metadata key '" + a + key +
                        "' is missing or not a positive integer");
    }
    out = static_cast<int64_t>(*v);
    return Status{};
  };
  for (auto [key, out] : {std::pair<const char*, int64_t*>{"embedding_length", &c.n_embd},
                          {"block_count", &c.n_layer},
                          {"attention.head_count", &c.n_head},
                          {"feed_forward_length", &c.n_ff}}) {
    if (Status st = need(key, *out); !st) return st;
  }
  c.n_head_kv = static_cast<int64_t>(f.get_uint(a + "attention.head_count_kv").value_or(c.n_head));
  c.n_ctx_train = static_cast<int64_t>(f.get_uint(a + "context_length").value_or(2048));
  c.head_dim =
      static_cast<int64_t>(f.get_uint(a + "attention.key_length").value_or(c.n_embd / c.n_head));
  c.n_rot = static_cast<int64_t>(f.get_uint(a + "rope.dimension_count").value_or(c.head_dim));
  if (c.n_head_kv == 0 || c.n_head % c.n_head_kv != 0 || c.head_dim == 0 || c.head_dim % 2 ||
      c.n_rot > c.head_dim || c.n_rot % 2) {
    return make_error(f.path() + ": inconsistent attention shape (heads " +
                      std::to_string(c.n_head) + ", KV heads " + std::to_string(c.n_head_kv) +
                      ", head size " + std::to_string(c.head_dim) + ", rope dims " +
                      std::to_string(c.n_rot) + ")");
  }
  c.rms_eps =
      static_cast<float>(f.get_float(a + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  c.rope_base = static_cast<float>(f.get_float(a + "rope.freq_base").value_or(10000.0));
  c.rope_type = c.arch == "llama" ? RopeType::Normal : RopeType::NeoX;
  std::string scaling = f.get_string(a + "rope.scaling.type").value_or("none");
  double factor = f.get_float(a + "rope.scaling.factor").value_or(0.0);
  if (scaling == "linear" && factor > 0) {
    c.rope_scaling = RopeScaling::Linear;
    c.rope_scale = static_cast<float>(factor);
  } else if (scaling == "yarn" && factor > 0) {
    c.rope_scaling = RopeScaling::Yarn;
    c.rope_scale = static_cast<float>(factor);
    c.yarn_orig_ctx = static_cast<int64_t>(
        f.get_uint(a + "rope.scaling.original_context_length").value_or(c.n_ctx_train));
  } else if (scaling != "none" && scaling != "") {
    return make_error(f.path() + ": rope scaling '" + scaling + "' is not supported");
  }
  c.qkv_bias = c.arch == "qwen2";
  c.qk_norm = c.arch == "qwen3";
  return Status{};
}

struct Binder {
  const gguf::File& f;
  uint64_t& bytes;
  // Binds `name` expecting GGUF shape {cols, rows} (rows = 1 for a vector).
  Status bind(Weight& w, const std::string& name, int64_t cols, int64_t rows, bool matrix,
              bool optional = false) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    std::vector<uint64_t> want = {static_cast<uint64_t>(cols)};
    if (matrix) want.push_back(static_cast<uint64_t>(rows));
    if (!t) {
      if (optional) return Status{};
      return make_error(f.path() + ": tensor '" + name + "' is missing (expected shape " +
                        shape_str(want) + ")");
    }
    std::vector<uint64_t> got = t->shape;
    while (got.size() > want.size() && got.back() == 1) got.pop_back();
    if (got != want) {
      return make_error(f.path() + ": tensor '" + name + "' has shape " + shape_str(t->shape) +
                        ", expected " + shape_str(want));
    }
    w.data = t->data;
    w.src = t->data;
    w.type = t->type;
    w.cols = cols;
    w.rows = matrix ? rows : 1;
    w.row_bytes = t->n_bytes / static_cast<uint64_t>(w.rows);
    bytes += t->n_bytes;
    if (!matrix) {
      if (t->type != gguf::TensorType::F32) {
        return make_error(f.path() + ": tensor '" + name + "' is " +
                          gguf::type_name(static_cast<uint32_t>(t->type)) + ", expected F32");
      }
      return Status{};
    }
    w.k = quant::kernels_for(t->type);
    if (!w.k) {
      return make_error(f.path() + ": tensor '" + name + "' has weight type " +
                        gguf::type_name(static_cast<uint32_t>(t->type)) +
                        ", which the CPU backend cannot compute yet");
    }
    return Status{};
  }
};

}  // namespace

const char* supported_architectures() {
  return "llama (Llama 1/2/3, Mistral, TinyLlama, SmolLM), qwen2, qwen3";
}

Result<std::unique_ptr<Model>> load_model(const std::string& path, bool pack) {
  auto f = gguf::File::open(path);
  if (!f) return f.error();
  return load_model(std::move(f.value()), pack);
}

Result<std::unique_ptr<Model>> load_model(gguf::File file, bool pack) {
  auto m = std::make_unique<Model>();
  m->file = std::move(file);
  Config& c = m->cfg;
  if (Status st = read_config(m->file, c); !st) return st.error();
  const auto* emb = m->file.find_tensor("token_embd.weight");
  if (!emb || emb->shape.size() < 2) {
    return make_error(m->file.path() + ": tensor 'token_embd.weight' is missing (expected shape [" +
                      std::to_string(c.n_embd) + ", n_vocab])");
  }
  c.n_vocab = static_cast<int64_t>(emb->shape[1]);
  Binder b{m->file, m->weight_bytes};
  const int64_t E = c.n_embd, Q = c.n_head * c.head_dim, KV = c.n_head_kv * c.head_dim;
  Status st;
  auto chk = [&](Status s) {
    if (st.ok() && !s.ok()) st = s;
  };
  chk(b.bind(m->token_embd, "token_embd.weight", E, c.n_vocab, true));
  chk(b.bind(m->output_norm, "output_norm.weight", E, 1, false));
  chk(b.bind(m->output, "output.weight", E, c.n_vocab, true, /*optional=*/true));
  chk(b.bind(m->rope_freqs, "rope_freqs.weight", c.n_rot / 2, 1, false, true));
  if (!m->output) {
    c.tied_embeddings = true;
    m->output = m->token_embd;
  }
  m->layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t l = 0; l < c.n_layer && st.ok(); ++l) {
    Layer& L = m->layers[static_cast<size_t>(l)];
    const std::string p = "blk." + std::to_string(l) + ".";
    chk(b.bind(L.attn_norm, p + "attn_norm.weight", E, 1, false));
    chk(b.bind(L.wq, p + "attn_q.weight", E, Q, true));
    chk(b.bind(L.wk, p + "attn_k.weight", E, KV, true));
    chk(b.bind(L.wv, p + "attn_v.weight", E, KV, true));
    chk(b.bind(L.wo, p + "attn_output.weight", Q, E, true));
    chk(b.bind(L.bq, p + "attn_q.bias", Q, 1, false, !c.qkv_bias));
    chk(b.bind(L.bk, p + "attn_k.bias", KV, 1, false, !c.qkv_bias));
    chk(b.bind(L.bv, p + "attn_v.bias", KV, 1, false, !c.qkv_bias));
    chk(b.bind(L.q_norm, p + "attn_q_norm.weight", c.head_dim, 1, false, !c.qk_norm));
    chk(b.bind(L.k_norm, p + "attn_k_norm.weight", c.head_dim, 1, false, !c.qk_norm));
    chk(b.bind(L.ffn_norm, p + "ffn_norm.weight", E, 1, false));
    chk(b.bind(L.w_gate, p + "ffn_gate.weight", E, c.n_ff, true));
    chk(b.bind(L.w_up, p + "ffn_up.weight", E, c.n_ff, true));
    chk(b.bind(L.w_down, p + "ffn_down.weight", c.n_ff, E, true));
  }
  if (!st) return st.error();
  if (pack) pack_cpu_weights(*m, c.n_layer, /*output=*/true);
  return m;
}

}  // namespace shimmy::model
