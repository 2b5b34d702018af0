// Ollama store scanner.
//
// Layout:
//   <root>/manifests/<registry>/<namespace>/<name>/<tag>   JSON, see below
//   <root>/blobs/sha256-<hex>                               the bytes
// A manifest: {"schemaVersion":2, "layers":[{"mediaType":"application/vnd.ollama.image.model",
//   "digest":"sha256:<hex>", "size":N}, ...template, params, license layers...]}.
// Blobs have no .gguf extension, so the magic check is what tells a model from junk.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "store/gguf_files.h"
#include "store/scanners.h"
#include "util/log.h"

namespace shimmy::store {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDefaultRegistry = "registry.ollama.ai";
constexpr const char* kModelMediaType = "application/vnd.ollama.image.model";
constexpr std::uintmax_t kMaxManifestBytes = 1 << 20;

std::vector<fs::path> subdirs(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool is_hex(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

// The model layer's digest hex from a manifest, or an error naming what was expected.
Result<std::string> model_digest(const fs::path& manifest) {
  std::error_code ec;
  auto size = fs::file_size(manifest, ec);
  if (ec) return make_error(manifest.string() + ": cannot stat: " + ec.message());
  if (size > kMaxManifestBytes) return make_error(manifest.string() + ": manifest over 1 MiB");
  std::ifstream in(manifest, std::ios::binary);
  if (!in) return make_error(manifest.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  // JSON stays at the edge: parse errors and type errors end here.
  try {
    auto j = nlohmann::json::parse(ss.str());
    if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array()) {
      return make_error(manifest.string() + ": expected an object with a \"layers\" array");
    }
    for (const auto& layer : j["layers"]) {
      if (!layer.is_object() || layer.value("mediaType", "") != kModelMediaType) continue;
      std::string digest = layer.value("digest", "");
      const std::string prefix = "sha256:";
      if (digest.rfind(prefix, 0) != 0 || !is_hex(digest.substr(prefix.size()))) {
        return make_error(manifest.string() + ": expected the model layer's digest as " +
                          "\"sha256:<hex>\", got \"" + digest + "\"");
      }
      return digest.substr(prefix.size());
    }
    return make_error(manifest.string() + ": no layer with mediaType " + kModelMediaType);
  } catch (const nlohmann::json::exception& e) {
    return make_error(manifest.string() + ": malformed manifest JSON: " + e.what());
  }
}

std::string model_name(const std::string& registry, const std::string& ns, const std::string& name,
                       const std::string& tag) {
  if (registry == kDefaultRegistry) {
    if (ns == "library") return name + ":" + tag;
    return ns + "/" + name + ":" + tag;
  }
  return registry + "/" + ns + "/" + name + ":" + tag;
}

}  // namespace

void scan_ollama(const std::string& root, std::vector<ModelEntry>& out) {
  fs::path manifests = fs::path(root) / "manifests";
  std::error_code ec;
  if (!fs::is_directory(manifests, ec)) {
    log::debug("store: no Ollama manifests at " + manifests.string());
    return;
  }
  for (const auto& reg : subdirs(manifests)) {
    for (const auto& ns : subdirs(reg)) {
      for (const auto& model : subdirs(ns)) {
        for (const auto& tag : files_in(model)) {
          std::string name = model_name(reg.filename().string(), ns.filename().string(),
                                        model.filename().string(), tag.filename().string());
          auto hex = model_digest(tag);
          if (!hex) {
            log::debug("store: skip ollama model " + name + ": " + hex.error().message);
            continue;
          }
          std::string blob = (fs::path(root) / "blobs" / ("sha256-" + *hex)).string();
          if (Status s = check_gguf_magic(blob); !s) {
            log::debug("store: skip ollama model " + name + ": " + s.message());
            continue;
          }
          auto blob_st = stat_file(blob);
          auto man_st = stat_file(tag.string());
          if (!blob_st || !man_st) {
            log::debug("store: skip ollama model " + name + ": cannot stat its files");
            continue;
          }
          ModelEntry e;
          e.name = std::move(name);
          e.path = blob;
          e.shards = {blob};
          e.size_bytes = blob_st->size;
          e.source = Source::Ollama;
          e.modified_unix = man_st->mtime;  // `ollama list` reports the manifest's time
          e.digest = *hex;
          out.push_back(std::move(e));
        }
      }
    }
  }
}

}  // namespace shimmy::store
