#include "harness.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "backend/cpu/quant/kernels.h"

namespace shimmy::cudatest {
namespace {

std::string exe_dir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

struct Loaded {
  const ShimmyBackendApi* api = nullptr;
  std::string error;
  ShimmyProbe probe{};
};

Loaded& loaded() {
  static Loaded l = [] {
    Loaded r;
    std::vector<std::string> paths;
    if (const char* e = std::getenv("SHIMMY_CUDA_PLUGIN")) paths.push_back(e);
    paths.push_back(exe_dir() + "/libshimmy-backend-cuda.so");
    paths.push_back(SHIMMY_CUDA_PLUGIN_PATH);
    for (const auto& p : paths) {
      if (!std::filesystem::exists(p)) continue;
      void* h = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        r.error = std::string("dlopen ") + p + ": " + dlerror();
        return r;
      }
      auto entry = reinterpret_cast<ShimmyBackendEntryFn>(dlsym(h, SHIMMY_BACKEND_ENTRY));
      if (!entry) {
        r.error = p + " does not export " SHIMMY_BACKEND_ENTRY;
        return r;
      }
      r.api = entry(SHIMMY_BACKEND_ABI_VERSION);
      if (!r.api) r.error = p + " refused ABI version 1";
      if (r.api) r.api->probe(&r.probe);
      return r;
    }
    r.error = "libshimmy-backend-cuda.so not found (set SHIMMY_CUDA_PLUGIN)";
    return r;
  }();
  return l;
}

ShimmyTensor tensor(const model::Weight& w) {
  ShimmyTensor t{};
  if (!w) return t;
  t.data = w.src;  // the GGUF layout (w.data may be the CPU's packed copy)
  t.type = static_cast<uint32_t>(w.type);
  t.rows = w.rows;
  t.cols = w.cols;
  t.row_bytes = w.row_bytes;
  return t;
}

}  // namespace

const ShimmyBackendApi* api() { return loaded().api; }
const std::string& load_error() { return loaded().error; }
const ShimmyProbe& probe() { return loaded().probe; }

std::string shared_dir() {
  if (const char* e = std::getenv("SHIMMY_SHARED_DIR")) return e;
  return SHIMMY_SHARED_DIR;
}
std::string model_path(const std::string& file) { return shared_dir() + "/models/" + file; }

cpu::RopeParams rope_params(const model::Model& m) {
  const model::Config& c = m.cfg;
  cpu::RopeParams r;
  r.n_rot = c.n_rot;
  r.base = c.rope_base;
  r.neox = c.rope_type == model::RopeType::NeoX;
  r.freq_factors = m.rope_freqs ? m.rope_freqs.f32() : nullptr;
  if (c.rope_scaling != model::RopeScaling::None) r.freq_scale = 1.0f / c.rope_scale;
  if (c.rope_scaling == model::RopeScaling::Yarn) {
    r.ext_factor = 1.0f;
    r.n_ctx_orig = c.yarn_orig_ctx;
    r.beta_fast = c.yarn_beta_fast;
    r.beta_slow = c.yarn_beta_slow;
  }
  return r;
}

std::unique_ptr<Desc> make_desc(const model::Model& m, int64_t begin, int64_t end, bool with_head,
                                int64_t max_ctx, int64_t max_seqs, int64_t max_batch,
                                int32_t kv_type) {
  auto out = std::make_unique<Desc>();
  const model::Config& c = m.cfg;
  for (int64_t l = begin; l < end; ++l) {
    const model::Layer& L = m.layers[static_cast<size_t>(l)];
    ShimmyLayerWeights w{};
    w.attn_norm = tensor(L.attn_norm);
    w.wq = tensor(L.wq);
    w.wk = tensor(L.wk);
    w.wv = tensor(L.wv);
    w.wo = tensor(L.wo);
    w.bq = tensor(L.bq);
    w.bk = tensor(L.bk);
    w.bv = tensor(L.bv);
    w.q_norm = tensor(L.q_norm);
    w.k_norm = tensor(L.k_norm);
    w.ffn_norm = tensor(L.ffn_norm);
    w.w_gate = tensor(L.w_gate);
    w.w_up = tensor(L.w_up);
    w.w_down = tensor(L.w_down);
    out->layers.push_back(w);
  }
  ShimmyModelDesc& d = out->d;
  d.n_vocab = c.n_vocab;
  d.n_embd = c.n_embd;
  d.n_layer = c.n_layer;
  d.n_head = c.n_head;
  d.n_head_kv = c.n_head_kv;
  d.head_dim = c.head_dim;
  d.n_ff = c.n_ff;
  d.n_rot = c.n_rot;
  d.rms_eps = c.rms_eps;
  d.rope_type = c.rope_type == model::RopeType::NeoX ? SHIMMY_ROPE_NEOX : SHIMMY_ROPE_NORMAL;
  d.qkv_bias = c.qkv_bias;
  d.qk_norm = c.qk_norm;
  d.layer_begin = begin;
  d.layer_end = end;
  d.layers = out->layers.empty() ? nullptr : out->layers.data();
  d.has_output = with_head;
  if (with_head) {
    d.output_norm = tensor(m.output_norm);
    d.output = tensor(m.output);
  }
  d.kv_type = kv_type;
  d.max_ctx = max_ctx;
  d.max_seqs = max_seqs;
  d.max_batch = max_batch;
  return out;
}

std::vector<float> embed(const model::Model& m, const std::vector<int32_t>& tokens) {
  const int64_t E = m.cfg.n_embd;
  std::vector<float> x(tokens.size() * static_cast<size_t>(E));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& te = m.token_embd;
    const Status s = quant::dequantize_row(te.type, te.data + static_cast<size_t>(tokens[i]) * te.row_bytes,
                                           x.data() + i * E, E);
    if (!s.ok()) return {};
  }
  return x;
}

std::vector<float> rope_table(const model::Model& m, const std::vector<int32_t>& pos) {
  const cpu::RopeParams r = rope_params(m);
  std::vector<float> cs(pos.size() * static_cast<size_t>(r.n_rot));
  for (size_t i = 0; i < pos.size(); ++i) cpu::rope_cos_sin(r, pos[i], cs.data() + i * r.n_rot);
  return cs;
}

}  // namespace shimmy::cudatest
