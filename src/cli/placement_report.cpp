#include "cli/placement_report.h"

namespace shimmy::cli {

namespace {

std::string layer_range(int64_t b, int64_t e) {
  if (e <= b) return "no layers";
  if (e - b == 1) return "layer " + std::to_string(b);
  return "layers " + std::to_string(b) + "-" + std::to_string(e - 1);
}

}  // namespace

std::string placement_text(const engine::Offload& off, const std::string& in) {
  using engine::format_bytes;
  const engine::Plan& p = off.plan();
  std::string s = in + off.summary() + "\n";
  for (const auto& seg : p.segments) {
    const auto& d = off.devices()[static_cast<size_t>(seg.device)];
    const auto& info = off.device_info()[static_cast<size_t>(seg.device)];
    s += in + "  " + d.label + " " + d.name + ": " + layer_range(seg.begin, seg.end) +
         (seg.head ? " + output" : "") + "; " + format_bytes(seg.weight_bytes) + " weights + " +
         format_bytes(seg.kv_bytes) + " KV + " + format_bytes(seg.scratch_bytes) + " scratch; " +
         format_bytes(info.free_bytes) + " free of " + format_bytes(info.total_bytes) + "\n";
  }
  s += in + "  cpu: " + (p.cpu_layers > 0 ? layer_range(0, p.cpu_layers) + " + " : "") +
       (p.head_on_cpu ? "output + " : "") + "embeddings; " + format_bytes(p.cpu_weight_bytes) +
       " weights + " + format_bytes(p.cpu_kv_bytes) + " KV\n";
  if (!off.fallback().empty()) s += in + "  why the CPU: " + off.fallback() + "\n";
  for (const auto& n : p.notes) s += in + "  note: " + n + "\n";
  return s;
}

nlohmann::json placement_json(const engine::Offload& off) {
  const engine::Plan& p = off.plan();
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& seg : p.segments) {
    const auto& d = off.devices()[static_cast<size_t>(seg.device)];
    const auto& info = off.device_info()[static_cast<size_t>(seg.device)];
    devices.push_back({{"device", d.label},
                       {"name", d.name},
                       {"layers", {seg.begin, seg.end}},
                       {"output", seg.head},
                       {"weight_bytes", seg.weight_bytes},
                       {"kv_bytes", seg.kv_bytes},
                       {"scratch_bytes", seg.scratch_bytes},
                       {"free_bytes", info.free_bytes},
                       {"total_bytes", info.total_bytes}});
  }
  return {{"backend", p.all_cpu() ? "cpu" : off.backend()},
          {"summary", off.summary()},
          {"fallback",
           off.fallback().empty() ? nlohmann::json(nullptr) : nlohmann::json(off.fallback())},
          {"notes", p.notes},
          {"n_layer", p.n_layer},
          {"cpu",
           {{"layers", {0, p.cpu_layers}},
            {"output", p.head_on_cpu},
            {"embeddings", true},
            {"weight_bytes", p.cpu_weight_bytes},
            {"kv_bytes", p.cpu_kv_bytes}}},
          {"devices", devices}};
}

}  // namespace shimmy::cli
