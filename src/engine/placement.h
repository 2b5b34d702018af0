// The placement planner (ARCHITECTURE.md §1.4): which transformer layers run where, decided
// once per loaded model from measured sizes. A pure function: no I/O, no plugin calls; the
// caller (engine/offload.h) gathers the sizes and the devices' free memory.
//
// Shape of every plan: the CPU runs layers [0, cpu_layers); device segments run consecutive
// layer ranges, in device order, up to the last layer; the last segment also runs the head
// (final norm + output projection) unless the plugin cannot compute its weight type, in
// which case the CPU runs it after the last segment. Embeddings always stay on the CPU (one
// row gathered per token from the memory map).
//
// Requests (--gpu-layers):
//   auto   the head, then whole layers from the last to the first, as many as fit in
//          (free - margin - scratch) of the devices; never an error.
//   all    every layer and the head; an error with the numbers when it does not fit.
//   N      the last N layers and the head; N >= n_layer means all; 0 means none.
// Several devices share the layers in proportion to their free memory, or to
// --tensor-split (a device with share 0 gets nothing). A layer whose weight type the plugin
// cannot compute stays on the CPU, and so do the layers before it (the CPU runs a prefix).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/result.h"

namespace shimmy::engine {

struct GpuLayers {
  enum class Mode { Auto, All, Count };
  Mode mode = Mode::Auto;
  int64_t count = 0;  // Mode::Count
};

// "auto" | "all" | a non-negative integer.
Result<GpuLayers> parse_gpu_layers(const std::string& s);
// "3,1" -> {3, 1}: non-negative numbers, at least one positive.
Result<std::vector<double>> parse_tensor_split(const std::string& s);

struct PlacementDevice {
  std::string label;  // "cuda:0"
  std::string name;   // "NVIDIA H100 80GB HBM3"
  uint64_t free_bytes = 0;
};

struct PlacementInput {
  // Sizes on a device (the plugin's slice_bytes, or the file's tensor sizes).
  std::vector<uint64_t> layer_bytes;           // [n_layer] weights of each layer
  std::vector<std::string> layer_unsupported;  // [n_layer] "" or a type the plugin can't compute
  uint64_t head_bytes = 0;                     // output_norm + output
  std::string head_unsupported;
  uint64_t kv_bytes_per_layer = 0;  // K and V of one layer for every position and sequence
  uint64_t scratch_bytes = 0;       // per device that runs anything
  uint64_t margin_bytes = 512ull << 20;
  std::vector<PlacementDevice> devices;
  GpuLayers request;
  std::vector<double> tensor_split;  // empty: in proportion to free memory
  // What the CPU keeps, for the report: file bytes.
  std::vector<uint64_t> cpu_layer_bytes;  // [n_layer]
  uint64_t cpu_head_bytes = 0, embd_bytes = 0;
};

struct Segment {
  int device = 0;  // index into PlacementInput::devices
  int64_t begin = 0, end = 0;
  bool head = false;
  uint64_t weight_bytes = 0, kv_bytes = 0, scratch_bytes = 0;
};

struct Plan {
  int64_t n_layer = 0;
  int64_t cpu_layers = 0;  // the CPU runs [0, cpu_layers)
  bool head_on_cpu = true;
  std::vector<Segment> segments;  // ascending and contiguous: cpu_layers .. n_layer
  uint64_t cpu_weight_bytes = 0, cpu_kv_bytes = 0;
  std::vector<std::string> notes;  // why something stayed on the CPU

  bool all_cpu() const { return segments.empty(); }
};

// Errors only for requests that cannot be honoured (all / N that do not fit, a bad
// --tensor-split), with needed vs free bytes per device.
Result<Plan> plan_placement(const PlacementInput& in);

// Everything on the CPU (--gpu-backend cpu, or no device).
Plan cpu_plan(const PlacementInput& in);

// One line: "cuda:0 NVIDIA H100 80GB HBM3: 22/22 layers + output, 612 MiB weights + 88 MiB
// KV; cpu: embeddings".
std::string describe_plan(const Plan& p, const std::vector<PlacementDevice>& devices);

// "612 MiB", "3.4 MiB", "24 KiB".
std::string format_bytes(uint64_t b);

}  // namespace shimmy::engine
