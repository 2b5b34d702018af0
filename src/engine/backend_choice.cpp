#include "engine/backend_choice.h"

#include <algorithm>

namespace shimmy::engine {

namespace {

std::string dir_list(const backend::PluginScan& scan) {
  std::string s;
  for (const auto& d : scan.searched) s += (s.empty() ? "" : ", ") + d;
  return s.empty() ? "(no directories)" : s;
}

bool skipped(const backend::PluginInfo& p) {
  return p.reason.rfind("skipped:", 0) == 0;
}

}  // namespace

Result<BackendChoice> choose_backend(const std::string& requested,
                                     const backend::PluginScan& scan) {
  BackendChoice c;
  if (requested == "cpu") return c;
  if (requested != "auto") {
    const backend::PluginInfo* p = scan.find(requested);
    if (!p) {
      return make_error("--gpu-backend " + requested + ": no " + requested +
                        " backend plugin found (looked for libshimmy-backend-" + requested +
                        ".so in " + dir_list(scan) + ")");
    }
    if (!p->loaded) {
      return make_error("--gpu-backend " + requested + ": the plugin " + p->path +
                        " cannot be used: " + p->reason);
    }
    if (p->devices.empty()) {
      return make_error("--gpu-backend " + requested + ": no usable device: " + p->reason);
    }
    c.plugin = p;
    return c;
  }
  for (const char* name : {"cuda", "vulkan", "opencl"}) {
    const backend::PluginInfo* p = scan.find(name);
    if (p && p->usable()) {
      c.plugin = p;
      return c;
    }
  }
  for (const auto& p : scan.plugins) {
    if (p.usable() && !skipped(p)) {
      c.plugin = &p;
      return c;
    }
  }
  std::string reasons;
  for (const auto& p : scan.plugins) {
    if (skipped(p)) continue;
    reasons += (reasons.empty() ? "" : "; ") + p.name + ": " + p.reason;
  }
  if (reasons.empty()) {
    c.why_cpu = "no GPU backend plugin found (searched " + dir_list(scan) + ")";
  } else {
    c.why_cpu = "no usable GPU backend (" + reasons + ")";
    c.warn = true;
  }
  return c;
}

}  // namespace shimmy::engine
