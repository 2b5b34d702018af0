// From flags to running layers on devices: choose the backend (engine/backend_choice.h),
// measure the model's slices through the plugin, plan (engine/placement.h), and create the
// plugin contexts that model::Forward then drives.
//
// Semantics (ARCHITECTURE.md §1.6): only `--gpu-backend auto` with `--gpu-layers auto` may
// fall back to the CPU, and then it says why in exactly one WARN line (or, when no plugin
// file exists at all, one INFO line). A named backend or an explicit layer count that cannot
// be honoured is an error; the CLI exits with status 3 and the message.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/plugin/loader.h"
#include "engine/backend_choice.h"
#include "engine/placement.h"
#include "model/forward.h"
#include "model/slice.h"

namespace shimmy::engine {

// The flags (cli/options.h), parsed.
struct BackendOptions {
  std::string backend = "auto";  // auto | cpu | a plugin name
  GpuLayers layers;
  uint64_t margin_bytes = 512ull << 20;
  std::vector<double> tensor_split;
};

class Offload {
 public:
  Offload() = default;
  ~Offload();  // destroys the device contexts
  Offload(const Offload&) = delete;
  Offload& operator=(const Offload&) = delete;

  const Plan& plan() const { return plan_; }
  // "cpu", or the plugin's name.
  const std::string& backend() const { return backend_; }
  // Devices of the chosen plugin, in plugin order (PlacementDevice labels "fake:0").
  const std::vector<PlacementDevice>& devices() const { return devices_; }
  const std::vector<backend::DeviceInfo>& device_info() const { return info_; }
  // The one line every model load logs (engine/placement.h describe_plan).
  std::string summary() const { return describe_plan(plan_, devices_); }
  // Why the CPU runs everything under `auto` (empty otherwise); `fallback_warn` says
  // whether that deserves a WARN (a plugin was there but could not be used) or an INFO.
  const std::string& fallback() const { return fallback_; }
  bool fallback_warn() const { return fallback_warn_; }

  // The plan for model::Forward (stages only when contexts were created).
  model::LayerPlan layer_plan() const;
  // Bytes each decode step reads from device d's memory (its segments' weights).
  uint64_t device_weight_bytes(int d) const;
  // One line a device context: how long its creation (the weights' upload) took.
  std::vector<std::string> upload_lines() const;

 private:
  friend Result<std::unique_ptr<Offload>> place_model(const model::Model&, const BackendOptions&,
                                                      const model::SliceShape&, bool);
  struct Context {
    ShimmyContext* ctx = nullptr;
    Segment seg;
    double create_s = 0;  // wall time of the plugin's create (upload, KV, scratch)
  };
  Plan plan_;
  std::string backend_ = "cpu";
  std::vector<PlacementDevice> devices_;
  std::vector<backend::DeviceInfo> info_;
  const ShimmyBackendApi* api_ = nullptr;
  std::vector<Context> contexts_;
  model::SliceShape shape_;
  std::string fallback_;
  bool fallback_warn_ = false;
};

// Plans the placement of `m` for `shape`; with `create`, also uploads the device slices.
// `create = false` is a dry run (show --placement, doctor). Errors are requests that cannot
// be honoured (exit status 3).
Result<std::unique_ptr<Offload>> place_model(const model::Model& m, const BackendOptions& o,
                                             const model::SliceShape& shape, bool create);

// Logs the fallback line (WARN or INFO) when there is one, the planner's notes (INFO), and
// the summary line (INFO).
void log_placement(const Offload& off);

// The planner's input for `m` on `plugin`'s devices (sizes from the plugin's slice_bytes,
// or from the file when the plugin cannot say).
PlacementInput placement_input(const model::Model& m, const backend::PluginInfo& plugin,
                               const BackendOptions& o, const model::SliceShape& shape);

}  // namespace shimmy::engine
