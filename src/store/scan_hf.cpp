// Hugging Face hub cache scanner.
//
// Layout (huggingface_hub >= 0.8):
//   <hub>/models--ORG--NAME/refs/main            text: the commit hash of "main"
//   <hub>/models--ORG--NAME/snapshots/<rev>/...  symlinks into ../../blobs/<hash>
//   <hub>/models--ORG--NAME/blobs/<hash>         the bytes
// Only files named *.gguf in a snapshot count; blobs are never listed directly.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "store/gguf_files.h"
#include "store/scanners.h"
#include "util/log.h"

namespace shimmy::store {

namespace fs = std::filesystem;

namespace {

// "models--ORG--NAME" -> "ORG/NAME"; "models--NAME" -> "NAME"; anything else -> "".
std::string repo_id(const std::string& dirname) {
  const std::string prefix = "models--";
  if (dirname.rfind(prefix, 0) != 0 || dirname.size() == prefix.size()) return "";
  std::string rest = dirname.substr(prefix.size());
  size_t sep = rest.find("--");
  if (sep == std::string::npos) return rest;
  return rest.substr(0, sep) + "/" + rest.substr(sep + 2);
}

std::string read_ref(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  if (in) std::getline(in, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Snapshot directories, the one refs/main names first, then newest first.
std::vector<fs::path> snapshots_in_order(const fs::path& repo) {
  std::string main_rev = read_ref(repo / "refs" / "main");
  std::vector<std::pair<fs::file_time_type, fs::path>> snaps;
  std::error_code ec;
  fs::directory_iterator it(repo / "snapshots", fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_directory(ec2)) continue;
    auto t = it->last_write_time(ec2);
    if (!main_rev.empty() && it->path().filename() == main_rev) t = fs::file_time_type::max();
    snaps.emplace_back(t, it->path());
  }
  std::sort(snaps.begin(), snaps.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<fs::path> out;
  for (auto& s : snaps) out.push_back(std::move(s.second));
  return out;
}

}  // namespace

void scan_hf_hub(const std::string& hub, std::vector<ModelEntry>& out) {
  std::error_code ec;
  fs::directory_iterator it(hub, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    log::debug("store: no Hugging Face cache at " + hub + ": " + ec.message());
    return;
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::string id = repo_id(it->path().filename().string());
    if (id.empty()) continue;
    std::set<std::string> seen;  // one entry per file name across revisions
    for (const auto& snap : snapshots_in_order(it->path())) {
      for (auto& g : group_model_files(list_gguf_files(snap, 3))) {
        std::string name = id + ":" + g.stem;
        if (!seen.insert(name).second) continue;
        out.push_back(entry_from_group(std::move(g), std::move(name), Source::HuggingFace));
      }
    }
  }
}

}  // namespace shimmy::store
