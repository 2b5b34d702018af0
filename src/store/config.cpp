// StoreConfig from the process environment, and the directories it implies.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "store/model_entry.h"

namespace shimmy::store {

namespace fs = std::filesystem;

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string join(const std::string& a, const char* b) {
  return (fs::path(a) / b).string();
}

}  // namespace

const char* source_name(Source s) {
  switch (s) {
    case Source::Path:
      return "path";
    case Source::HuggingFace:
      return "hf";
    case Source::Ollama:
      return "ollama";
    case Source::LmStudio:
      return "lmstudio";
  }
  return "?";
}

StoreConfig StoreConfig::from_environment() {
  StoreConfig c;
  c.home = env_or_empty("HOME");
  std::error_code ec;
  c.cwd = fs::current_path(ec).string();
  c.model_paths = env_or_empty("SHIMMY_MODEL_PATHS");
  c.ollama_models = env_or_empty("OLLAMA_MODELS");
  c.hf_hub_cache = env_or_empty("HF_HUB_CACHE");
  c.hf_home = env_or_empty("HF_HOME");
  c.xdg_cache_home = env_or_empty("XDG_CACHE_HOME");
  c.system_ollama = true;
  return c;
}

SearchRoots search_roots(const StoreConfig& cfg) {
  SearchRoots r;
  r.model_dirs = cfg.extra_dirs;
  // SHIMMY_MODEL_PATHS: colon-separated, empty components ignored.
  size_t start = 0;
  while (start <= cfg.model_paths.size()) {
    size_t end = cfg.model_paths.find(':', start);
    if (end == std::string::npos) end = cfg.model_paths.size();
    if (end > start) r.model_dirs.push_back(cfg.model_paths.substr(start, end - start));
    start = end + 1;
  }
  if (!cfg.cwd.empty()) r.model_dirs.push_back(join(cfg.cwd, "models"));

  // Hugging Face: HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME or ~/.cache.
  if (!cfg.hf_hub_cache.empty()) {
    r.hf_hubs.push_back(cfg.hf_hub_cache);
  } else if (!cfg.hf_home.empty()) {
    r.hf_hubs.push_back(join(cfg.hf_home, "hub"));
  } else if (!cfg.xdg_cache_home.empty()) {
    r.hf_hubs.push_back(join(cfg.xdg_cache_home, "huggingface/hub"));
  } else if (!cfg.home.empty()) {
    r.hf_hubs.push_back(join(cfg.home, ".cache/huggingface/hub"));
  }

  // Ollama: OLLAMA_MODELS replaces the default, as it does for Ollama itself.
  if (!cfg.ollama_models.empty()) {
    r.ollama_roots.push_back(cfg.ollama_models);
  } else {
    if (!cfg.home.empty()) r.ollama_roots.push_back(join(cfg.home, ".ollama/models"));
    if (cfg.system_ollama) r.ollama_roots.push_back("/usr/share/ollama/.ollama/models");
  }

  if (!cfg.home.empty()) {
    r.lmstudio_roots.push_back(join(cfg.home, ".lmstudio/models"));
    r.lmstudio_roots.push_back(join(cfg.home, ".cache/lm-studio/models"));
  }
  return r;
}

std::string format_size(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

std::vector<std::string> SearchRoots::describe() const {
  std::vector<std::string> out;
  for (const auto& d : model_dirs) out.push_back("dir: " + d);
  for (const auto& d : hf_hubs) out.push_back("huggingface: " + d);
  for (const auto& d : ollama_roots) out.push_back("ollama: " + d);
  for (const auto& d : lmstudio_roots) out.push_back("lmstudio: " + d);
  return out;
}

}  // namespace shimmy::store
