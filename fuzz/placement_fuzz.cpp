// libFuzzer target for the GPU placement options and the planner (engine/placement.h):
// --gpu-layers and --tensor-split strings from the user, then plan_placement over a model
// and devices drawn from the input (sizes up to 2^64 - 1, zero-byte devices, shares of 0,
// requests beyond the layer count).
//
// Input: byte 0 picks what is fuzzed; parser modes take the rest as the option string.
// Checks: no crash; errors carry a message; a plan covers [0, n_layer) exactly (the CPU
// prefix, then ascending contiguous segments on valid devices, the head at most once) and
// describe_plan formats it.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/placement.h"

using namespace shimmy::engine;

namespace {

void check_plan(const Plan& p, const PlacementInput& in) {
  const int64_t n = static_cast<int64_t>(in.layer_bytes.size());
  if (p.n_layer != n || p.cpu_layers < 0 || p.cpu_layers > n) std::abort();
  int64_t at = p.cpu_layers;
  int heads = 0;
  for (const Segment& s : p.segments) {
    if (s.device < 0 || s.device >= static_cast<int>(in.devices.size())) std::abort();
    if (s.begin != at || s.end < s.begin || s.end > n) std::abort();
    at = s.end;
    heads += s.head;
  }
  if (at != n) std::abort();  // all-CPU plans too: cpu_layers == n_layer
  if (heads > 1 || (heads == 1) == p.head_on_cpu) std::abort();
  if (describe_plan(p, in.devices).empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 3;
  if (mode < 2) {  // the option parsers on the raw string
    const std::string s(reinterpret_cast<const char*>(data + 1), size - 1);
    if (mode == 0) {
      auto r = parse_gpu_layers(s);
      if (!r.ok() && r.error().message.empty()) std::abort();
      if (r.ok() && r.value().count < 0) std::abort();
    } else {
      auto r = parse_tensor_split(s);
      if (!r.ok() && r.error().message.empty()) std::abort();
      if (r.ok()) {
        bool positive = false;
        for (double v : r.value()) {
          if (!(v >= 0)) std::abort();
          positive |= v > 0;
        }
        if (!positive) std::abort();
      }
    }
    return 0;
  }
  FuzzedDataProvider fdp(data + 1, size - 1);
  PlacementInput in;
  const int n_layer = fdp.ConsumeIntegralInRange<int>(0, 200);
  const bool huge = fdp.ConsumeBool();
  auto bytes = [&] {
    return huge ? fdp.ConsumeIntegral<uint64_t>()
                : fdp.ConsumeIntegralInRange<uint64_t>(0, 1ull << 34);
  };
  for (int l = 0; l < n_layer; ++l) {
    in.layer_bytes.push_back(bytes());
    in.layer_unsupported.push_back(fdp.ConsumeIntegralInRange<int>(0, 15) == 0 ? "IQ2_XXS" : "");
    in.cpu_layer_bytes.push_back(bytes());
  }
  in.head_bytes = bytes();
  if (fdp.ConsumeIntegralInRange<int>(0, 7) == 0) in.head_unsupported = "IQ1_S";
  in.kv_bytes_per_layer = bytes();
  in.scratch_bytes = bytes();
  in.margin_bytes = bytes();
  const int n_dev = fdp.ConsumeIntegralInRange<int>(0, 4);
  for (int d = 0; d < n_dev; ++d)
    in.devices.push_back({"cuda:" + std::to_string(d), "fuzz device", bytes()});
  const std::string gl = fdp.ConsumeRandomLengthString(12);
  auto req = parse_gpu_layers(gl);
  if (req.ok()) in.request = req.value();
  if (fdp.ConsumeBool()) {
    auto ts = parse_tensor_split(fdp.ConsumeRandomLengthString(24));
    if (ts.ok()) in.tensor_split = ts.value();
  }
  check_plan(cpu_plan(in), in);
  auto plan = plan_placement(in);
  if (plan.ok()) {
    check_plan(plan.value(), in);
  } else if (plan.error().message.empty()) {
    std::abort();
  }
  return 0;
}
