// libshimmy-backend-fake.so: a backend plugin for tests on machines without a GPU.
//
// Its devices come from the environment, so tests can stage any memory situation:
//   SHIMMY_FAKE_DEVICES="Fake GPU A:free_mib:total_mib[:bandwidth_gbs],..."  (MiB may be
//       fractional; unset or empty: no device, with a reason)
//   SHIMMY_FAKE_ABI=N      return abi_version N (tests the core's refusal)
//   SHIMMY_FAKE_TYPES=Q4_K,Q6_K|all   weight types accepted besides F32 (default: F32 only)
//   SHIMMY_FAKE_LOG=FILE   append one line per create/eval/seq_truncate/destroy/host_alloc/
//                          host_free call (eval: "out host" when `out` is host_alloc memory)
//
// It really computes the layers (and head) it is given when their weights are F32: naive
// loops with the same math and the same f16 roundings as the CPU path (src/model/forward.cpp),
// over its own per-slot KV cache, so partial offload is tested end to end. Weights of other
// accepted types are only sized; eval() on them fails with a message.
//
// Standalone on purpose: it includes only the C ABI header and shares no code with the core.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "backend/plugin_abi.h"

namespace {

struct FakeDevice {
  std::string name;
  double free_mib = 0, total_mib = 0, gbs = 0;
};

const char* env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(sep, b);
    if (e == std::string::npos) e = s.size();
    out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

std::vector<FakeDevice> devices() {
  std::vector<FakeDevice> out;
  const std::string spec = env("SHIMMY_FAKE_DEVICES");
  if (spec.empty()) return out;
  for (const auto& d : split(spec, ',')) {
    auto f = split(d, ':');
    if (f.size() < 3) continue;
    out.push_back({f[0], std::atof(f[1].c_str()), std::atof(f[2].c_str()),
                   f.size() > 3 ? std::atof(f[3].c_str()) : 0.0});
  }
  return out;
}

void log_line(const std::string& s) {
  const char* path = env("SHIMMY_FAKE_LOG");
  if (!*path) return;
  if (FILE* f = std::fopen(path, "a")) {
    std::fprintf(f, "%s\n", s.c_str());
    std::fclose(f);
  }
}

void set_err(char* err, size_t len, const std::string& msg) {
  if (!err || !len) return;
  std::snprintf(err, len, "%s", msg.c_str());
}

const char* type_name(uint32_t t) {
  switch (t) {
    case 0:
      return "F32";
    case 1:
      return "F16";
    case 2:
      return "Q4_0";
    case 3:
      return "Q4_1";
    case 6:
      return "Q5_0";
    case 7:
      return "Q5_1";
    case 8:
      return "Q8_0";
    case 10:
      return "Q2_K";
    case 11:
      return "Q3_K";
    case 12:
      return "Q4_K";
    case 13:
      return "Q5_K";
    case 14:
      return "Q6_K";
    case 20:
      return "IQ4_NL";
    case 30:
      return "BF16";
    default:
      return "?";
  }
}

int32_t supports_type(uint32_t t) {
  if (t == 0) return 1;
  const std::string types = env("SHIMMY_FAKE_TYPES");
  if (types == "all") return 1;
  for (const auto& n : split(types, ',')) {
    if (n == type_name(t)) return 1;
  }
  return 0;
}

void probe(ShimmyProbe* out) {
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->runtime, sizeof out->runtime, "fake runtime 1.0");
  auto ds = devices();
  if (ds.empty()) {
    std::snprintf(out->reason, sizeof out->reason,
                  "SHIMMY_FAKE_DEVICES is empty: the fake backend has no devices");
    return;
  }
  out->n_devices = static_cast<int32_t>(std::min<size_t>(ds.size(), SHIMMY_MAX_DEVICES));
  for (int32_t i = 0; i < out->n_devices; ++i) {
    ShimmyDeviceInfo& d = out->devices[i];
    std::snprintf(d.name, sizeof d.name, "%s", ds[i].name.c_str());
    d.free_bytes = static_cast<uint64_t>(ds[i].free_mib * 1048576.0);
    d.total_bytes = static_cast<uint64_t>(ds[i].total_mib * 1048576.0);
    d.mem_bandwidth_gbs = ds[i].gbs;
  }
}

uint64_t tensor_bytes(const ShimmyTensor& t) {
  return t.data ? t.row_bytes * static_cast<uint64_t>(t.rows) : 0;
}

template <typename F>
void each_tensor(const ShimmyModelDesc& d, F&& f) {
  for (int64_t l = 0; l < d.layer_end - d.layer_begin; ++l) {
    const ShimmyLayerWeights& L = d.layers[l];
    for (const ShimmyTensor* t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv,
                                  &L.q_norm, &L.k_norm, &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down})
      f(*t);
  }
  if (d.has_output) {
    f(d.output_norm);
    f(d.output);
  }
}

ShimmySliceBytes sizes(const ShimmyModelDesc& d) {
  ShimmySliceBytes s{0, 0, 0};
  each_tensor(d, [&](const ShimmyTensor& t) { s.weights += tensor_bytes(t); });
  const uint64_t kv_dim = static_cast<uint64_t>(d.n_head_kv * d.head_dim);
  s.kv = static_cast<uint64_t>(d.layer_end - d.layer_begin) * static_cast<uint64_t>(d.max_ctx) *
         static_cast<uint64_t>(d.max_seqs) * 2 * kv_dim * (d.kv_type == SHIMMY_KV_F16 ? 2 : 4);
  const int64_t width = 4 * d.n_embd + 2 * d.n_ff + d.n_head * d.head_dim;
  s.scratch = static_cast<uint64_t>(d.max_batch * width * 4);
  if (d.has_output) s.scratch += static_cast<uint64_t>(d.max_batch * d.n_vocab * 4);
  return s;
}

int32_t slice_bytes(int32_t device, const ShimmyModelDesc* d, ShimmySliceBytes* out, char* err,
                    size_t len) {
  if (device < 0 || device >= static_cast<int32_t>(devices().size())) {
    set_err(err, len, "no fake device " + std::to_string(device));
    return 1;
  }
  *out = sizes(*d);
  return 0;
}

// ---- the compute: one context per device slice --------------------------------------

// The nearest f16 value (ties to even) of a finite float, as a float.
float round_f16(float f) {
  if (!std::isfinite(f)) return f;
  const float a = std::fabs(f);
  if (a >= 65520.0f) return std::copysign(INFINITY, f);
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1): 11 significant bits, or subnormal spacing
  const int spacing = std::max(e - 11, -24);
  return std::copysign(std::ldexp(std::nearbyint(std::ldexp(a, -spacing)), spacing), f);
}

struct Mat {  // an F32 tensor copied out of the caller's memory
  std::vector<float> w;
  int64_t rows = 0, cols = 0;
  bool present = false;
};

Mat copy(const ShimmyTensor& t) {
  Mat m;
  if (!t.data || t.type != 0) return m;
  m.rows = t.rows;
  m.cols = t.cols;
  m.present = true;
  const float* p = static_cast<const float*>(t.data);
  m.w.assign(p, p + t.rows * t.cols);
  return m;
}

// y[rows] = W x[cols]
void matvec(const Mat& W, const float* x, float* y) {
  for (int64_t r = 0; r < W.rows; ++r) {
    const float* row = W.w.data() + r * W.cols;
    float s = 0.0f;
    for (int64_t c = 0; c < W.cols; ++c) s += row[c] * x[c];
    y[r] = s;
  }
}

void rms_norm(const float* x, const Mat& w, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * (w.present ? w.w[i] : 1.0f);
}

struct FakeLayer {
  Mat attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, w_gate, w_up, w_down;
};

}  // namespace

struct ShimmyContext {
  ShimmyModelDesc d;  // pointers in it are not kept (the core may release them)
  int32_t device = 0;
  bool computable = true;
  std::string not_computable;
  std::vector<FakeLayer> layers;
  Mat output_norm, output;
  // cache[slot][layer][pos][kv_dim] for k and v; len[slot] positions held.
  std::vector<float> k, v;
  std::vector<int64_t> len;
};

namespace {

int32_t create(int32_t device, const ShimmyModelDesc* d, ShimmyContext** out, char* err,
               size_t len) {
  auto ds = devices();
  if (device < 0 || device >= static_cast<int32_t>(ds.size())) {
    set_err(err, len, "no fake device " + std::to_string(device));
    return 1;
  }
  std::string bad;
  each_tensor(*d, [&](const ShimmyTensor& t) {
    if (t.data && !supports_type(t.type) && bad.empty()) bad = type_name(t.type);
  });
  if (!bad.empty()) {
    set_err(err, len, std::string("the fake backend does not accept ") + bad + " weights");
    return 1;
  }
  const ShimmySliceBytes s = sizes(*d);
  const uint64_t need = s.weights + s.kv + s.scratch;
  const uint64_t free_b = static_cast<uint64_t>(ds[device].free_mib * 1048576.0);
  if (need > free_b) {
    set_err(err, len,
            "out of fake device memory: the slice needs " + std::to_string(need) + " bytes, " +
                std::to_string(free_b) + " are free");
    return 1;
  }
  auto* c = new ShimmyContext;
  c->d = *d;
  c->d.layers = nullptr;
  c->device = device;
  each_tensor(*d, [&](const ShimmyTensor& t) {
    if (t.data && t.type != 0 && c->computable) {
      c->computable = false;
      c->not_computable =
          std::string("the fake backend computes F32 weights only, not ") + type_name(t.type);
    }
  });
  if (c->computable) {
    for (int64_t l = 0; l < d->layer_end - d->layer_begin; ++l) {
      const ShimmyLayerWeights& L = d->layers[l];
      c->layers.push_back({copy(L.attn_norm), copy(L.wq), copy(L.wk), copy(L.wv), copy(L.wo),
                           copy(L.bq), copy(L.bk), copy(L.bv), copy(L.q_norm), copy(L.k_norm),
                           copy(L.ffn_norm), copy(L.w_gate), copy(L.w_up), copy(L.w_down)});
    }
    if (d->has_output) {
      c->output_norm = copy(d->output_norm);
      c->output = copy(d->output);
    }
    const size_t kv_dim = static_cast<size_t>(d->n_head_kv * d->head_dim);
    const size_t n = static_cast<size_t>(d->max_seqs) * c->layers.size() *
                     static_cast<size_t>(d->max_ctx) * kv_dim;
    c->k.assign(n, 0.0f);
    c->v.assign(n, 0.0f);
  }
  c->len.assign(static_cast<size_t>(d->max_seqs), 0);
  log_line("create device " + std::to_string(device) + " layers " + std::to_string(d->layer_begin) +
           "-" + std::to_string(d->layer_end) + (d->has_output ? " +output" : "") + " seqs " +
           std::to_string(d->max_seqs));
  *out = c;
  return 0;
}

void destroy(ShimmyContext* c) {
  if (c) log_line("destroy device " + std::to_string(c->device));
  delete c;
}

// One layer over the batch: x [n][n_embd] in place.
void run_layer(ShimmyContext& c, int64_t li, const ShimmyBatch& b, std::vector<float>& x) {
  const ShimmyModelDesc& d = c.d;
  const FakeLayer& L = c.layers[static_cast<size_t>(li)];
  const int64_t n = b.n_tokens, E = d.n_embd, H = d.n_head, KVH = d.n_head_kv, hd = d.head_dim,
                Q = H * hd, KV = KVH * hd, F = d.n_ff, half = d.n_rot / 2;
  const bool f16 = d.kv_type == SHIMMY_KV_F16;
  auto cache_row = [&](std::vector<float>& cache, int32_t seq, int64_t pos) {
    const size_t nl = c.layers.size();
    return cache.data() +
           ((static_cast<size_t>(seq) * nl + static_cast<size_t>(li)) * d.max_ctx + pos) * KV;
  };
  std::vector<float> h(E), q(static_cast<size_t>(n * Q)), k(KV), v(KV), att(Q), o(E), g(F), u(F),
      sc(static_cast<size_t>(d.max_ctx));
  // q, k, v of every token; k and v go to the cache before any attention (causal order).
  for (int64_t i = 0; i < n; ++i) {
    float* qi = q.data() + i * Q;
    rms_norm(x.data() + i * E, L.attn_norm, h.data(), E, d.rms_eps);
    matvec(L.wq, h.data(), qi);
    matvec(L.wk, h.data(), k.data());
    matvec(L.wv, h.data(), v.data());
    if (L.bq.present) {
      for (int64_t j = 0; j < Q; ++j) qi[j] += L.bq.w[j];
      for (int64_t j = 0; j < KV; ++j) k[j] += L.bk.w[j], v[j] += L.bv.w[j];
    }
    if (L.q_norm.present) {
      for (int64_t hh = 0; hh < H; ++hh)
        rms_norm(qi + hh * hd, L.q_norm, qi + hh * hd, hd, d.rms_eps);
      for (int64_t hh = 0; hh < KVH; ++hh)
        rms_norm(k.data() + hh * hd, L.k_norm, k.data() + hh * hd, hd, d.rms_eps);
    }
    const float* cs = b.rope_cs + i * d.n_rot;
    for (float* base : {qi, k.data()}) {
      const int64_t heads = base == qi ? H : KVH;
      for (int64_t hh = 0; hh < heads; ++hh) {
        float* vv = base + hh * hd;
        for (int64_t j = 0; j < half; ++j) {
          const int64_t a = d.rope_type == SHIMMY_ROPE_NEOX ? j : 2 * j;
          const int64_t bb = d.rope_type == SHIMMY_ROPE_NEOX ? j + half : 2 * j + 1;
          const float x0 = vv[a], x1 = vv[bb], cc = cs[2 * j], ss = cs[2 * j + 1];
          vv[a] = x0 * cc - x1 * ss;
          vv[bb] = x0 * ss + x1 * cc;
        }
      }
    }
    for (int64_t j = 0; j < Q; ++j) qi[j] = round_f16(qi[j]);
    float* kd = cache_row(c.k, b.seq[i], b.pos[i]);
    float* vd = cache_row(c.v, b.seq[i], b.pos[i]);
    for (int64_t j = 0; j < KV; ++j) {
      kd[j] = f16 ? round_f16(k[j]) : k[j];
      vd[j] = f16 ? round_f16(v[j]) : v[j];
    }
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t n_pos = b.pos[i] + 1;
    for (int64_t hh = 0; hh < H; ++hh) {
      const int64_t gk = hh / (H / KVH);
      const float* qh = q.data() + i * Q + hh * hd;
      float mx = -INFINITY;
      for (int64_t p = 0; p < n_pos; ++p) {
        const float* kr = cache_row(c.k, b.seq[i], p) + gk * hd;
        float s = 0.0f;
        for (int64_t j = 0; j < hd; ++j) s += qh[j] * kr[j];
        sc[p] = s * scale;
        mx = std::max(mx, sc[p]);
      }
      double sum = 0.0;
      for (int64_t p = 0; p < n_pos; ++p) {
        sc[p] = std::exp(sc[p] - mx);
        sum += sc[p];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t p = 0; p < n_pos; ++p) {
        sc[p] *= inv;
        if (f16) sc[p] = round_f16(sc[p]);
      }
      float* out = att.data() + hh * hd;
      std::fill(out, out + hd, 0.0f);
      for (int64_t p = 0; p < n_pos; ++p) {
        const float* vr = cache_row(c.v, b.seq[i], p) + gk * hd;
        for (int64_t j = 0; j < hd; ++j) out[j] += sc[p] * vr[j];
      }
    }
    float* xi = x.data() + i * E;
    matvec(L.wo, att.data(), o.data());
    for (int64_t j = 0; j < E; ++j) xi[j] += o[j];
    rms_norm(xi, L.ffn_norm, h.data(), E, d.rms_eps);
    matvec(L.w_gate, h.data(), g.data());
    matvec(L.w_up, h.data(), u.data());
    for (int64_t j = 0; j < F; ++j) u[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
    matvec(L.w_down, u.data(), o.data());
    for (int64_t j = 0; j < E; ++j) xi[j] += o[j];
  }
}

// host_alloc blocks (plain malloc here: the fake has no device to write them), by start.
std::mutex g_host_mu;
std::map<const char*, uint64_t> g_host;

void* host_alloc(uint64_t bytes) {
  void* p = std::malloc(bytes ? bytes : 1);
  if (!p) return nullptr;
  std::lock_guard<std::mutex> lk(g_host_mu);
  g_host[static_cast<const char*>(p)] = bytes;
  log_line("host_alloc " + std::to_string(bytes));
  return p;
}

void host_free(void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lk(g_host_mu);
    g_host.erase(static_cast<const char*>(p));
  }
  std::free(p);
  log_line("host_free");
}

bool in_host_block(const void* p, uint64_t bytes) {
  std::lock_guard<std::mutex> lk(g_host_mu);
  const char* q = static_cast<const char*>(p);
  auto it = g_host.upper_bound(q);
  if (it == g_host.begin()) return false;
  --it;
  return q + bytes <= it->first + it->second;
}

int32_t eval(ShimmyContext* c, const ShimmyBatch* b, char* err, size_t len) {
  const ShimmyModelDesc& d = c->d;
  int64_t rows = 0;
  for (int64_t i = 0; i < b->n_tokens; ++i) rows += d.has_output ? b->want_logits[i] != 0 : 1;
  const uint64_t out_bytes =
      static_cast<uint64_t>(rows * (d.has_output ? d.n_vocab : d.n_embd)) * 4;
  log_line("eval device " + std::to_string(c->device) + " tokens " + std::to_string(b->n_tokens) +
           (in_host_block(b->out, out_bytes) ? " out host" : ""));
  if (!c->computable) {
    set_err(err, len, c->not_computable);
    return 1;
  }
  if (b->n_tokens > d.max_batch) {
    set_err(err, len, "batch of " + std::to_string(b->n_tokens) + " exceeds max_batch");
    return 1;
  }
  // Positions must continue each slot: a reused slot must be truncated first.
  std::vector<int64_t> next = c->len;
  for (int64_t i = 0; i < b->n_tokens; ++i) {
    const int32_t s = b->seq[i];
    if (s < 0 || s >= d.max_seqs || b->pos[i] >= d.max_ctx) {
      set_err(err, len,
              "slot " + std::to_string(s) + " / position " + std::to_string(b->pos[i]) +
                  " out of range");
      return 1;
    }
    if (b->pos[i] != next[s]) {
      set_err(err, len,
              "slot " + std::to_string(s) + " holds " + std::to_string(next[s]) +
                  " positions, but a token came at position " + std::to_string(b->pos[i]) +
                  " (seq_truncate first)");
      return 1;
    }
    next[s] = b->pos[i] + 1;
  }
  c->len = next;
  const int64_t E = d.n_embd;
  std::vector<float> x(b->hidden_in, b->hidden_in + b->n_tokens * E);
  for (int64_t l = 0; l < static_cast<int64_t>(c->layers.size()); ++l) run_layer(*c, l, *b, x);
  if (!d.has_output) {
    std::memcpy(b->out, x.data(), x.size() * sizeof(float));
    return 0;
  }
  std::vector<float> h(E);
  int64_t n_out = 0;
  for (int64_t i = 0; i < b->n_tokens; ++i) {
    if (!b->want_logits[i]) continue;
    rms_norm(x.data() + i * E, c->output_norm, h.data(), E, d.rms_eps);
    matvec(c->output, h.data(), b->out + n_out * d.n_vocab);
    ++n_out;
  }
  return 0;
}

int32_t seq_truncate(ShimmyContext* c, int32_t seq, int64_t pos, char* err, size_t len) {
  log_line("truncate device " + std::to_string(c->device) + " seq " + std::to_string(seq) +
           " pos " + std::to_string(pos));
  if (seq < 0 || seq >= static_cast<int32_t>(c->len.size())) {
    set_err(err, len, "no slot " + std::to_string(seq));
    return 1;
  }
  c->len[static_cast<size_t>(seq)] = std::min(c->len[static_cast<size_t>(seq)], pos);
  return 0;
}

ShimmyBackendApi g_api = {SHIMMY_BACKEND_ABI_VERSION,
                          "fake",
                          "fake test backend 1.0",
                          probe,
                          supports_type,
                          slice_bytes,
                          create,
                          destroy,
                          eval,
                          seq_truncate,
                          host_alloc,
                          host_free};

}  // namespace

extern "C" __attribute__((visibility("default"))) const ShimmyBackendApi* shimmy_backend_api(
    uint32_t core_abi_version) {
  (void)core_abi_version;
  const char* abi = std::getenv("SHIMMY_FAKE_ABI");
  g_api.abi_version = abi && *abi ? static_cast<uint32_t>(std::strtoul(abi, nullptr, 10))
                                  : SHIMMY_BACKEND_ABI_VERSION;
  return &g_api;
}
