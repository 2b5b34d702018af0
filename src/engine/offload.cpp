#include "engine/offload.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "gguf/types.h"
#include "util/log.h"

namespace shimmy::engine {

namespace {

// "layers 0-21 + output": what a segment runs, for its messages.
std::string segment_layers(const Segment& s) {
  return "layers " + std::to_string(s.begin) + "-" + std::to_string(s.end - 1) +
         (s.head ? " + output" : "");
}

// Sizes from the file: what the CPU keeps, and the fallback when a plugin cannot say.
PlacementInput file_input(const model::Model& m, const BackendOptions& o,
                          const model::SliceShape& shape) {
  PlacementInput in;
  const int64_t n = m.cfg.n_layer;
  for (int64_t l = 0; l < n; ++l) in.cpu_layer_bytes.push_back(model::layer_bytes(m, l));
  in.layer_bytes = in.cpu_layer_bytes;
  in.layer_unsupported.assign(static_cast<size_t>(n), "");
  in.head_bytes = in.cpu_head_bytes = model::head_bytes(m);
  in.embd_bytes = model::tensor_bytes(m.token_embd);
  in.kv_bytes_per_layer = model::kv_bytes_per_layer(m.cfg, shape);
  // Activations of one batch (x, h, q, attention, gate, up) and the logits, in f32.
  const model::Config& c = m.cfg;
  const int64_t width = 4 * c.n_embd + 2 * c.n_ff + c.n_head * c.head_dim + c.n_vocab;
  in.scratch_bytes = static_cast<uint64_t>(shape.batch * width) * 4;
  in.margin_bytes = o.margin_bytes;
  in.request = o.layers;
  in.tensor_split = o.tensor_split;
  return in;
}

std::string unsupported_type(const backend::PluginInfo& p,
                             std::initializer_list<const model::Weight*> ws) {
  for (const model::Weight* w : ws) {
    if (*w && !p.api->supports_type(static_cast<uint32_t>(w->type))) {
      return gguf::type_name(static_cast<uint32_t>(w->type));
    }
  }
  return {};
}

bool explicit_layers(const GpuLayers& g) {
  return g.mode == GpuLayers::Mode::All || (g.mode == GpuLayers::Mode::Count && g.count > 0);
}

std::string layers_flag(const GpuLayers& g) {
  return g.mode == GpuLayers::Mode::All ? "all" : std::to_string(g.count);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
  return s;
}

}  // namespace

PlacementInput placement_input(const model::Model& m, const backend::PluginInfo& plugin,
                               const BackendOptions& o, const model::SliceShape& shape) {
  PlacementInput in = file_input(m, o, shape);
  const int64_t n = m.cfg.n_layer;
  for (size_t d = 0; d < plugin.devices.size(); ++d) {
    in.devices.push_back({plugin.name + ":" + std::to_string(d), plugin.devices[d].name,
                          plugin.devices[d].free_bytes});
  }
  for (int64_t l = 0; l < n; ++l) {
    const model::Layer& L = m.layers[static_cast<size_t>(l)];
    in.layer_unsupported[static_cast<size_t>(l)] = unsupported_type(
        plugin, {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.q_norm,
                 &L.k_norm, &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down});
  }
  in.head_unsupported = unsupported_type(plugin, {&m.output_norm, &m.output});

  // The plugin's own figures (after any repacking): one layer at a time, the head alone,
  // and the whole model for the largest scratch. Any refusal: keep the file's sizes.
  auto ask = [&](int64_t b, int64_t e, bool head, ShimmySliceBytes& out) {
    model::SliceDesc s = model::describe_slice(m, b, e, head, shape);
    char err[512] = {0};
    return plugin.api->slice_bytes(0, &s.desc, &out, err, sizeof err) == 0;
  };
  std::vector<uint64_t> layer(static_cast<size_t>(n));
  ShimmySliceBytes sb{}, head{}, all{};
  uint64_t kv = 0;
  for (int64_t l = 0; l < n; ++l) {
    if (!ask(l, l + 1, false, sb)) return in;
    layer[static_cast<size_t>(l)] = sb.weights;
    kv = std::max(kv, sb.kv);
  }
  if (!ask(n, n, true, head) || !ask(0, n, true, all)) return in;
  in.layer_bytes = layer;
  in.head_bytes = head.weights;
  in.kv_bytes_per_layer = kv;
  in.scratch_bytes = all.scratch;
  return in;
}

Offload::~Offload() {
  for (auto& c : contexts_) {
    if (c.ctx) api_->destroy(c.ctx);
  }
}

model::LayerPlan Offload::layer_plan() const {
  model::LayerPlan lp;
  if (contexts_.empty()) return lp;  // a dry run, or everything on the CPU
  lp.cpu_layers = plan_.cpu_layers;
  for (const auto& c : contexts_) {
    lp.stages.push_back({api_, c.ctx, c.seg.begin, c.seg.end, c.seg.head, shape_.batch, shape_.seqs,
                         devices_[static_cast<size_t>(c.seg.device)].label});
  }
  return lp;
}

uint64_t Offload::device_weight_bytes(int d) const {
  uint64_t b = 0;
  for (const auto& s : plan_.segments) {
    if (s.device == d) b += s.weight_bytes;
  }
  return b;
}

Result<std::unique_ptr<Offload>> place_model(const model::Model& m, const BackendOptions& o,
                                             const model::SliceShape& shape, bool create) {
  auto off = std::make_unique<Offload>();
  off->shape_ = shape;
  const PlacementInput cpu_in = file_input(m, o, shape);
  off->plan_ = cpu_plan(cpu_in);
  if (o.backend == "cpu") return off;

  auto choice = choose_backend(o.backend, backend::plugins());
  if (!choice) return choice.error();
  if (!choice->plugin) {
    if (explicit_layers(o.layers)) {
      return make_error("--gpu-layers " + layers_flag(o.layers) +
                        " cannot be honoured: " + choice->why_cpu);
    }
    off->fallback_ = choice->why_cpu + "; running on the CPU";
    off->fallback_warn_ = choice->warn;
    return off;
  }
  const backend::PluginInfo& plugin = *choice->plugin;
  off->backend_ = plugin.name;
  off->api_ = plugin.api;
  off->info_ = plugin.devices;
  PlacementInput in = placement_input(m, plugin, o, shape);
  off->devices_ = in.devices;
  auto plan = plan_placement(in);
  if (!plan) return plan.error();
  const bool may_fall_back = o.backend == "auto" && o.layers.mode == GpuLayers::Mode::Auto;
  if (plan->all_cpu() && !(o.layers.mode == GpuLayers::Mode::Count && o.layers.count == 0)) {
    const std::string why = "nothing runs on " + plugin.name + ": " + join(plan->notes);
    if (!may_fall_back) return make_error("--gpu-backend " + o.backend + ": " + why);
    off->fallback_ = why + "; running on the CPU";
    off->fallback_warn_ = true;
  }
  off->plan_ = std::move(*plan);
  if (!create) return off;

  for (const Segment& seg : off->plan_.segments) {
    model::SliceDesc s = model::describe_slice(m, seg.begin, seg.end, seg.head, shape);
    ShimmyContext* ctx = nullptr;
    char err[512] = {0};
    const auto t0 = std::chrono::steady_clock::now();
    if (plugin.api->create(seg.device, &s.desc, &ctx, err, sizeof err) != 0 || !ctx) {
      const std::string why = off->devices_[static_cast<size_t>(seg.device)].label +
                              " could not take " + segment_layers(seg) + ": " + err;
      for (auto& c : off->contexts_) plugin.api->destroy(c.ctx);
      off->contexts_.clear();
      if (!may_fall_back) return make_error(why);
      off->plan_ = cpu_plan(cpu_in);
      off->fallback_ = why + "; running on the CPU";
      off->fallback_warn_ = true;
      return off;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    off->contexts_.push_back({ctx, seg, secs});
  }
  return off;
}

void log_placement(const Offload& off) {
  if (!off.fallback().empty()) {
    if (off.fallback_warn())
      log::warn(off.fallback());
    else
      log::info(off.fallback());
  } else {
    for (const auto& n : off.plan().notes) log::info(n);
  }
  log::info(off.summary());
  for (const std::string& l : off.upload_lines()) log::info(l);
}

std::vector<std::string> Offload::upload_lines() const {
  std::vector<std::string> out;
  for (const Context& c : contexts_) {
    const uint64_t b = c.seg.weight_bytes;
    char secs[32], rate[64] = "";
    std::snprintf(secs, sizeof secs, "%.2f s", c.create_s);
    if (c.create_s > 0) std::snprintf(rate, sizeof rate, " (%.1f GB/s)", b / c.create_s / 1e9);
    out.push_back(devices_[static_cast<size_t>(c.seg.device)].label + ": " + segment_layers(c.seg) +
                  " ready in " + secs + ", " + format_bytes(b) + " of weights uploaded" + rate);
  }
  return out;
}

}  // namespace shimmy::engine
