// Finding and loading GPU backend plugins (ARCHITECTURE.md §1.2): shared objects named
// libshimmy-backend-<name>.so, searched in order in
//   1. the directory of the running executable (/proc/self/exe),
//   2. <exe dir>/../lib/shimmy/,
//   3. each directory of $SHIMMY_BACKEND_PATH (colon-separated).
// Each is dlopen()ed (RTLD_NOW | RTLD_LOCAL), its `shimmy_backend_api` entry point is
// called with SHIMMY_BACKEND_ABI_VERSION, a table of another ABI version is refused, and
// probe() asks the plugin for its devices. Every step that fails is recorded as a sentence
// (`reason`) so `shimmy doctor` and the fallback WARN can say why, never just "no GPU".
//
// Scanning is lazy: only commands that may run on a device call plugins(), so
// `shimmy --version` and server start never pay for dlopen + driver initialisation.
// Loaded plugins stay loaded for the life of the process (never dlclose()d: driver
// libraries do not like being unloaded, and device contexts may outlive any one owner).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/plugin_abi.h"

namespace shimmy::backend {

struct DeviceInfo {
  std::string name;  // "NVIDIA H100 80GB HBM3"
  int32_t cc_major = 0, cc_minor = 0;
  uint64_t free_bytes = 0, total_bytes = 0;
  double mem_bandwidth_gbs = 0;  // 0: unknown
};

struct PluginInfo {
  std::string name;     // "cuda": from the file name libshimmy-backend-<name>.so
  std::string path;     // as found (dir + file name)
  bool loaded = false;  // dlopen, entry point and ABI version all fine
  std::string reason;   // why not loaded, or (loaded, no device) the probe's reason
  std::string version;  // the plugin's version string
  std::string runtime;  // the probe's runtime description ("CUDA driver 13.0, ...")
  std::vector<DeviceInfo> devices;
  const ShimmyBackendApi* api = nullptr;  // set when loaded

  bool usable() const { return loaded && !devices.empty(); }
};

struct PluginScan {
  std::vector<std::string> searched;  // directories, in search order (missing ones too)
  std::vector<PluginInfo> plugins;    // in the order found; one per name (first wins)

  const PluginInfo* find(const std::string& name) const;
};

// The default search directories, in order (see the top of this file).
std::vector<std::string> default_search_dirs();

// Scans `dirs` now (no caching): every libshimmy-backend-*.so in each directory, files
// sorted by name within a directory.
PluginScan scan_plugins(const std::vector<std::string>& dirs);

// Loads one plugin file (the steps above) and fills a PluginInfo; never throws or aborts.
PluginInfo load_plugin(const std::string& path);

// The process-wide scan of default_search_dirs(), done on first call (thread-safe).
const PluginScan& plugins();

// "libshimmy-backend-cuda.so" -> "cuda"; "" when the name does not match the pattern.
std::string plugin_name_from_file(const std::string& file_name);

}  // namespace shimmy::backend
