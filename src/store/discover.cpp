// discover(), entry_for_file() and the cached Catalog.
#include <cstdio>
#include <filesystem>
#include <set>

#include "store/gguf_files.h"
#include "store/scanners.h"
#include "store/store.h"
#include "util/log.h"

namespace shimmy::store {

namespace fs = std::filesystem;

std::vector<ModelEntry> discover(const StoreConfig& cfg) {
  SearchRoots roots = search_roots(cfg);
  std::vector<ModelEntry> all;
  for (const auto& d : roots.model_dirs) scan_model_dir(d, all);
  for (const auto& d : roots.hf_hubs) scan_hf_hub(d, all);
  for (const auto& d : roots.ollama_roots) scan_ollama(d, all);
  for (const auto& d : roots.lmstudio_roots) scan_lmstudio(d, all);

  // Keep the first of each name, and each plain file once (SHIMMY_MODEL_PATHS may repeat
  // ./models). Ollama tags may share a blob on purpose (llama3:latest = llama3:8b).
  std::vector<ModelEntry> out;
  std::set<std::string> names, files;
  for (auto& e : all) {
    if (e.source == Source::Path) {
      std::error_code ec;
      std::string canon = fs::weakly_canonical(e.path, ec).string();
      if (ec) canon = e.path;
      if (!files.insert(canon).second) continue;
    }
    if (!names.insert(e.name).second) {
      log::debug("store: " + e.path + " is shadowed by another model named " + e.name);
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

Result<ModelEntry> entry_for_file(const std::string& path) {
  fs::path p(path);
  std::vector<fs::path> files{p};
  if (auto sh = parse_shard_stem(p.stem().string())) {
    if (sh->index != 1) {
      return make_error(path + ": expected the first shard of a split model (" + sh->base +
                        "-00001-of-...)");
    }
    for (int i = 2; i <= sh->count; ++i) {
      char suffix[32];
      std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d", i, sh->count);
      files.push_back(p.parent_path() / (sh->base + suffix + p.extension().string()));
    }
  }
  for (const auto& f : files) {
    if (auto st = stat_file(f.string()); !st) return st.error();
  }
  if (Status s = check_gguf_magic(path); !s) return s.error();
  auto groups = group_model_files(files);
  if (groups.empty()) return make_error(path + ": expected a complete GGUF model");
  return entry_from_group(groups[0], groups[0].stem, Source::Path);
}

Catalog::Catalog(StoreConfig cfg, std::chrono::milliseconds max_age)
    : cfg_(std::move(cfg)), roots_(search_roots(cfg_)), max_age_(max_age) {}

std::vector<ModelEntry> Catalog::models() {
  std::lock_guard<std::mutex> lk(mu_);
  auto now = std::chrono::steady_clock::now();
  if (!scanned_ || now - scanned_at_ > max_age_) {
    cached_ = discover(cfg_);
    scanned_at_ = now;
    scanned_ = true;
  }
  return cached_;
}

Result<ModelEntry> Catalog::resolve(std::string_view query) {
  return store::resolve(query, models(), searched());
}

}  // namespace shimmy::store
