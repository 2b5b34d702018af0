// Which backend a model runs on, from --gpu-backend and the plugin scan.
//   cpu    the built-in CPU backend; no plugin is even looked at.
//   auto   the first usable plugin in the order cuda, vulkan, opencl, then any other in the
//          order found; none usable: the CPU, with the reason.
//   NAME   that plugin; an error (exit status 3) when it is missing, fails to load, or has
//          no usable device.
#pragma once

#include <string>

#include "backend/plugin/loader.h"
#include "util/result.h"

namespace shimmy::engine {

struct BackendChoice {
  const backend::PluginInfo* plugin = nullptr;  // null: the CPU
  std::string why_cpu;                          // auto without a usable plugin: why
  bool warn = false;  // a plugin exists but none is usable (WARN); no plugin at all (INFO)
};

Result<BackendChoice> choose_backend(const std::string& requested, const backend::PluginScan& scan);

}  // namespace shimmy::engine
