#include "backend/plugin/loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace shimmy::backend {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "libshimmy-backend-";
constexpr std::string_view kSuffix = ".so";

// A fixed-size C string from the plugin, which may have forgotten the terminator.
std::string bounded(const char* s, size_t cap) {
  return s ? std::string(s, strnlen(s, cap)) : std::string();
}

std::string exe_dir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  buf[n] = '\0';
  return fs::path(buf).parent_path().string();
}

// The function-table entries the core calls; a plugin missing one is refused at load
// rather than crashing at first use.
std::string missing_entry(const ShimmyBackendApi& a) {
  if (!a.probe) return "probe";
  if (!a.supports_type) return "supports_type";
  if (!a.slice_bytes) return "slice_bytes";
  if (!a.create) return "create";
  if (!a.destroy) return "destroy";
  if (!a.eval) return "eval";
  if (!a.seq_truncate) return "seq_truncate";
  return {};
}

void fill_devices(PluginInfo& p) {
  ShimmyProbe pr;
  std::memset(&pr, 0, sizeof pr);
  p.api->probe(&pr);
  p.runtime = bounded(pr.runtime, sizeof pr.runtime);
  const int32_t n = std::clamp<int32_t>(pr.n_devices, 0, SHIMMY_MAX_DEVICES);
  p.devices.clear();
  for (int32_t d = 0; d < n; ++d) {
    const ShimmyDeviceInfo& s = pr.devices[d];
    p.devices.push_back({bounded(s.name, sizeof s.name), s.cc_major, s.cc_minor, s.free_bytes,
                         s.total_bytes, s.mem_bandwidth_gbs});
  }
  if (n == 0) {
    p.reason = bounded(pr.reason, sizeof pr.reason);
    if (p.reason.empty()) p.reason = "the plugin found no usable device (and gave no reason)";
  }
}

}  // namespace

const PluginInfo* PluginScan::find(const std::string& name) const {
  for (const auto& p : plugins) {
    if (p.name == name && p.reason.rfind("skipped:", 0) != 0) return &p;
  }
  return nullptr;
}

std::string plugin_name_from_file(const std::string& f) {
  if (f.size() <= kPrefix.size() + kSuffix.size()) return {};
  if (f.compare(0, kPrefix.size(), kPrefix) != 0) return {};
  if (f.compare(f.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) return {};
  return f.substr(kPrefix.size(), f.size() - kPrefix.size() - kSuffix.size());
}

std::vector<std::string> default_search_dirs() {
  std::vector<std::string> dirs;
  const std::string exe = exe_dir();
  if (!exe.empty()) {
    dirs.push_back(exe);
    dirs.push_back((fs::path(exe) / ".." / "lib" / "shimmy").lexically_normal().string());
  }
  if (const char* env = std::getenv("SHIMMY_BACKEND_PATH")) {
    std::string s = env;
    size_t b = 0;
    while (b <= s.size()) {
      size_t e = s.find(':', b);
      if (e == std::string::npos) e = s.size();
      if (e > b) dirs.push_back(fs::path(s.substr(b, e - b)).lexically_normal().string());
      b = e + 1;
    }
  }
  // The same directory twice (SHIMMY_BACKEND_PATH naming the exe dir) is searched once.
  std::vector<std::string> out;
  for (auto& d : dirs) {
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(std::move(d));
  }
  return out;
}

PluginInfo load_plugin(const std::string& path) {
  PluginInfo p;
  p.path = path;
  p.name = plugin_name_from_file(fs::path(path).filename().string());
  dlerror();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    p.reason = std::string("cannot load: ") + (e ? e : "dlopen failed");
    return p;
  }
  auto entry = reinterpret_cast<ShimmyBackendEntryFn>(dlsym(h, SHIMMY_BACKEND_ENTRY));
  if (!entry) {
    p.reason = "not a shimmy backend plugin: it exports no '" SHIMMY_BACKEND_ENTRY "' function";
    dlclose(h);
    return p;
  }
  const ShimmyBackendApi* api = entry(SHIMMY_BACKEND_ABI_VERSION);
  if (!api) {
    p.reason = "the plugin declined this shimmy's backend ABI version " +
               std::to_string(SHIMMY_BACKEND_ABI_VERSION) + " (update the plugin or shimmy)";
    dlclose(h);
    return p;
  }
  if (api->abi_version != SHIMMY_BACKEND_ABI_VERSION) {
    p.reason = "plugin ABI version " + std::to_string(api->abi_version) +
               ", but this shimmy needs " + std::to_string(SHIMMY_BACKEND_ABI_VERSION) +
               ": install the plugin built with this shimmy";
    dlclose(h);
    return p;
  }
  if (std::string m = missing_entry(*api); !m.empty()) {
    p.reason = "the plugin's function table lacks '" + m + "'";
    dlclose(h);
    return p;
  }
  p.api = api;
  p.loaded = true;
  p.version = bounded(api->version, 256);
  // The table's own name wins over the file name's when they differ ("libshimmy-backend-
  // cuda12.so" naming itself "cuda" is selected by --gpu-backend cuda).
  if (api->name && *api->name) p.name = bounded(api->name, 64);
  fill_devices(p);
  return p;  // `h` stays open for the life of the process (see loader.h)
}

PluginScan scan_plugins(const std::vector<std::string>& dirs) {
  PluginScan scan;
  scan.searched = dirs;
  std::vector<fs::path> seen;  // canonical paths already loaded
  for (const auto& dir : dirs) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (!plugin_name_from_file(it->path().filename().string()).empty())
        files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      fs::path canon = fs::weakly_canonical(f, ec);
      if (ec) canon = f;
      if (std::find(seen.begin(), seen.end(), canon) != seen.end()) continue;
      seen.push_back(canon);
      const std::string name = plugin_name_from_file(f.filename().string());
      if (const PluginInfo* first = scan.find(name)) {
        PluginInfo p;
        p.name = name;
        p.path = f.string();
        p.reason = "skipped: a plugin named '" + name + "' was found first at " + first->path;
        scan.plugins.push_back(std::move(p));
        continue;
      }
      scan.plugins.push_back(load_plugin(f.string()));
    }
  }
  return scan;
}

const PluginScan& plugins() {
  static std::once_flag once;
  static PluginScan scan;
  std::call_once(once, [] { scan = scan_plugins(default_search_dirs()); });
  return scan;
}

}  // namespace shimmy::backend
