#include "engine/placement.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>

namespace shimmy::engine {

namespace {

// Layers per device: n split in proportion to `share` (largest remainder; ties go to the
// earlier device, which balances the head that the last device carries).
std::vector<int64_t> split_counts(int64_t n, const std::vector<double>& share) {
  const double total = std::accumulate(share.begin(), share.end(), 0.0);
  std::vector<int64_t> c(share.size(), 0);
  std::vector<std::pair<double, size_t>> rest;
  int64_t given = 0;
  for (size_t d = 0; d < share.size(); ++d) {
    const double exact = total > 0 ? static_cast<double>(n) * share[d] / total : 0.0;
    c[d] = static_cast<int64_t>(std::floor(exact));
    given += c[d];
    if (share[d] > 0) rest.push_back({exact - static_cast<double>(c[d]), d});
  }
  std::stable_sort(rest.begin(), rest.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < n && k < rest.size(); ++k, ++given) c[rest[k].second]++;
  return c;
}

struct Attempt {
  std::vector<Segment> segments;
  std::vector<uint64_t> need;  // per device, margin included
  bool fits = true;
};

// Places the last n layers (and the head when `head`) on the devices by `share`.
Attempt try_place(const PlacementInput& in, const std::vector<double>& share, int64_t n,
                  bool head) {
  const int64_t n_layer = static_cast<int64_t>(in.layer_bytes.size());
  const auto counts = split_counts(n, share);
  int head_dev = -1;  // the last device with layers, else the last with a share
  for (size_t d = 0; d < share.size(); ++d) {
    if (counts[d] > 0 || (n == 0 && share[d] > 0)) head_dev = static_cast<int>(d);
  }
  Attempt a;
  a.need.assign(share.size(), 0);
  int64_t l = n_layer - n;
  for (size_t d = 0; d < share.size(); ++d) {
    const bool has_head = head && static_cast<int>(d) == head_dev;
    if (counts[d] == 0 && !has_head) continue;
    Segment s;
    s.device = static_cast<int>(d);
    s.begin = l;
    s.end = l + counts[d];
    s.head = has_head;
    for (; l < s.end; ++l) s.weight_bytes += in.layer_bytes[static_cast<size_t>(l)];
    if (has_head) s.weight_bytes += in.head_bytes;
    s.kv_bytes = in.kv_bytes_per_layer * static_cast<uint64_t>(counts[d]);
    s.scratch_bytes = in.scratch_bytes;
    a.need[d] = s.weight_bytes + s.kv_bytes + s.scratch_bytes + in.margin_bytes;
    if (a.need[d] > in.devices[d].free_bytes) a.fits = false;
    a.segments.push_back(s);
  }
  return a;
}

Plan finish(const PlacementInput& in, Plan p) {
  const int64_t n_layer = static_cast<int64_t>(in.layer_bytes.size());
  p.n_layer = n_layer;
  p.cpu_layers = p.segments.empty() ? n_layer : p.segments.front().begin;
  p.head_on_cpu = p.segments.empty() || !p.segments.back().head;
  p.cpu_weight_bytes = in.embd_bytes;
  for (int64_t l = 0; l < p.cpu_layers && l < static_cast<int64_t>(in.cpu_layer_bytes.size());
       ++l) {
    p.cpu_weight_bytes += in.cpu_layer_bytes[static_cast<size_t>(l)];
  }
  if (p.head_on_cpu) p.cpu_weight_bytes += in.cpu_head_bytes;
  p.cpu_kv_bytes = in.kv_bytes_per_layer * static_cast<uint64_t>(p.cpu_layers);
  return p;
}

std::string need_vs_free(const PlacementInput& in, const Attempt& a) {
  std::string msg;
  for (const Segment& s : a.segments) {
    const PlacementDevice& d = in.devices[static_cast<size_t>(s.device)];
    if (!msg.empty()) msg += "; ";
    msg += d.label + " " + d.name + " needs " +
           format_bytes(a.need[static_cast<size_t>(s.device)]) + " (" +
           std::to_string(s.end - s.begin) + (s.end - s.begin == 1 ? " layer" : " layers") +
           (s.head ? " + output" : "") + ": " + format_bytes(s.weight_bytes) + " weights + " +
           format_bytes(s.kv_bytes) + " KV + " + format_bytes(s.scratch_bytes) + " scratch + " +
           format_bytes(in.margin_bytes) + " margin), " + format_bytes(d.free_bytes) + " free";
  }
  return msg;
}

}  // namespace

Result<GpuLayers> parse_gpu_layers(const std::string& s) {
  if (s == "auto") return GpuLayers{GpuLayers::Mode::Auto, 0};
  if (s == "all") return GpuLayers{GpuLayers::Mode::All, 0};
  if (!s.empty() && s.size() <= 9 &&
      std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return GpuLayers{GpuLayers::Mode::Count, std::stoll(s)};
  }
  return make_error("--gpu-layers must be auto, all or a number of layers, not '" + s + "'");
}

Result<std::vector<double>> parse_tensor_split(const std::string& s) {
  std::vector<double> out;
  size_t b = 0;
  bool positive = false;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    const std::string item = s.substr(b, e - b);
    char* end = nullptr;
    const double v = item.empty() ? -1 : std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(v >= 0) || !std::isfinite(v)) {
      return make_error(
          "--tensor-split must be non-negative numbers separated by commas (e.g. "
          "3,1), not '" +
          s + "'");
    }
    positive |= v > 0;
    out.push_back(v);
    b = e + 1;
  }
  if (!positive) return make_error("--tensor-split '" + s + "' gives every device a share of 0");
  return out;
}

Plan cpu_plan(const PlacementInput& in) {
  return finish(in, Plan{});
}

Result<Plan> plan_placement(const PlacementInput& in) {
  const int64_t n_layer = static_cast<int64_t>(in.layer_bytes.size());
  const auto& req = in.request;
  if (in.devices.empty() || (req.mode == GpuLayers::Mode::Count && req.count == 0)) {
    return cpu_plan(in);
  }
  if (in.tensor_split.size() > in.devices.size()) {
    return make_error("--tensor-split has " + std::to_string(in.tensor_split.size()) +
                      " values, but there are only " + std::to_string(in.devices.size()) +
                      " devices");
  }
  std::vector<double> share(in.devices.size(), 0.0);
  for (size_t d = 0; d < share.size(); ++d) {
    share[d] = in.tensor_split.empty()      ? static_cast<double>(in.devices[d].free_bytes)
               : d < in.tensor_split.size() ? in.tensor_split[d]
                                            : 0.0;
  }
  if (std::accumulate(share.begin(), share.end(), 0.0) <= 0)
    std::fill(share.begin(), share.end(), 1.0);

  // The CPU must run every layer up to the last one the plugin cannot compute.
  int64_t first_ok = 0;
  std::string why_cpu;
  for (int64_t l = 0; l < n_layer; ++l) {
    const std::string& t = in.layer_unsupported[static_cast<size_t>(l)];
    if (!t.empty()) {
      first_ok = l + 1;
      why_cpu =
          "layer " + std::to_string(l) + " has " + t + " weights, which the backend cannot compute";
    }
  }
  const bool head_ok = in.head_unsupported.empty();
  const std::string why_head =
      "the output has " + in.head_unsupported + " weights, which the backend cannot compute";
  const bool explicit_req = req.mode != GpuLayers::Mode::Auto;
  const int64_t want = req.mode == GpuLayers::Mode::Count ? std::min(req.count, n_layer) : n_layer;
  const bool want_all = want == n_layer;

  Plan p;
  if (explicit_req) {
    if (n_layer - want < first_ok) {
      return make_error("--gpu-layers " + (want_all ? std::string("all") : std::to_string(want)) +
                        " cannot be honoured: " + why_cpu);
    }
    if (want_all && !head_ok) return make_error("--gpu-layers all cannot be honoured: " + why_head);
    Attempt a = try_place(in, share, want, head_ok);
    if (!a.fits) {
      return make_error("--gpu-layers " + (want_all ? std::string("all") : std::to_string(want)) +
                        " does not fit: " + need_vs_free(in, a));
    }
    p.segments = std::move(a.segments);
    if (!head_ok) p.notes.push_back("output on the CPU: " + why_head);
    return finish(in, std::move(p));
  }

  // auto: the head first (when the plugin computes it), then as many layers as fit.
  if (first_ok > 0)
    p.notes.push_back("layers 0-" + std::to_string(first_ok - 1) + " on the CPU: " + why_cpu);
  if (!head_ok) p.notes.push_back("output on the CPU: " + why_head);
  if (head_ok && !try_place(in, share, 0, true).fits) {
    p.notes.push_back("nothing on the devices: the output alone does not fit (" +
                      need_vs_free(in, try_place(in, share, 0, true)) + ")");
    return finish(in, std::move(p));
  }
  for (int64_t n = n_layer - first_ok; n >= 0; --n) {
    if (n == 0 && !head_ok) break;
    Attempt a = try_place(in, share, n, head_ok);
    if (!a.fits) continue;
    p.segments = std::move(a.segments);
    if (n < n_layer - first_ok) {
      Attempt more = try_place(in, share, n + 1, head_ok);
      p.notes.push_back(std::to_string(n) + " of " + std::to_string(n_layer) +
                        " layers fit on the devices (one more: " + need_vs_free(in, more) + ")");
    }
    break;
  }
  return finish(in, std::move(p));
}

std::string format_bytes(uint64_t b) {
  char buf[32];
  const double mib = static_cast<double>(b) / 1048576.0;
  if (b < (1u << 20))
    std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(b) / 1024.0);
  else if (mib < 10)
    std::snprintf(buf, sizeof buf, "%.1f MiB", mib);
  else
    std::snprintf(buf, sizeof buf, "%.0f MiB", mib);
  return buf;
}

std::string describe_plan(const Plan& p, const std::vector<PlacementDevice>& devices) {
  std::string out;
  const std::string of = "/" + std::to_string(p.n_layer) + " layers";
  for (const Segment& s : p.segments) {
    const PlacementDevice& d = devices[static_cast<size_t>(s.device)];
    out += d.label + " " + d.name + ": " + std::to_string(s.end - s.begin) + of +
           (s.head ? " + output" : "") + ", " + format_bytes(s.weight_bytes) + " weights + " +
           format_bytes(s.kv_bytes) + " KV; ";
  }
  std::vector<std::string> parts;
  if (p.cpu_layers > 0) parts.push_back(std::to_string(p.cpu_layers) + of);
  if (p.head_on_cpu) parts.push_back("output");
  if (!p.segments.empty()) parts.push_back("embeddings");
  out += "cpu: ";
  for (size_t k = 0; k < parts.size(); ++k) out += (k ? " + " : "") + parts[k];
  if (p.cpu_layers > 0 || p.head_on_cpu) {
    out += ", " + format_bytes(p.cpu_weight_bytes) + " weights + " + format_bytes(p.cpu_kv_bytes) +
           " KV";
  }
  return out;
}

}  // namespace shimmy::engine
