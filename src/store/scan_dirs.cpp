// Scanners whose layout is "directories of .gguf files": plain model dirs and LM Studio.
#include <filesystem>

#include "store/gguf_files.h"
#include "store/scanners.h"

namespace shimmy::store {

namespace fs = std::filesystem;

void scan_model_dir(const std::string& dir, std::vector<ModelEntry>& out) {
  for (auto& g : group_model_files(list_gguf_files(dir, 2))) {
    std::string name = g.stem;
    out.push_back(entry_from_group(std::move(g), std::move(name), Source::Path));
  }
}

void scan_lmstudio(const std::string& root, std::vector<ModelEntry>& out) {
  for (auto& g : group_model_files(list_gguf_files(root, 3))) {
    // publisher/model from the path relative to root; files higher up keep what they have.
    fs::path rel = fs::path(g.files[0]).lexically_relative(root).parent_path();
    std::vector<std::string> parts;
    for (const auto& p : rel) parts.push_back(p.string());
    std::string prefix;
    if (parts.size() >= 2) {
      prefix = parts[0] + "/" + parts[1];
    } else if (parts.size() == 1) {
      prefix = parts[0];
    }
    std::string name = prefix.empty() ? g.stem : prefix + ":" + g.stem;
    out.push_back(entry_from_group(std::move(g), std::move(name), Source::LmStudio));
  }
}

}  // namespace shimmy::store
