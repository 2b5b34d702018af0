#include "store/gguf_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>

#include "util/log.h"

namespace shimmy::store {

namespace fs = std::filesystem;

Status check_gguf_magic(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return make_error(path + ": cannot open: " + std::strerror(errno));
  char magic[4] = {0, 0, 0, 0};
  size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  if (n != 4) return make_error(path + ": expected the 4-byte magic \"GGUF\", file is shorter");
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    return make_error(path + ": expected the magic \"GGUF\" at offset 0, not a GGUF file");
  }
  return {};
}

Result<FileStat> stat_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error(path + ": cannot stat: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return make_error(path + ": expected a regular file");
  return FileStat{static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtime)};
}

std::optional<ShardName> parse_shard_stem(std::string_view stem) {
  // NAME-ddddd-of-ddddd: the suffix is exactly 15 characters.
  constexpr size_t kSuffix = 15;
  if (stem.size() <= kSuffix) return std::nullopt;
  std::string_view s = stem.substr(stem.size() - kSuffix);
  auto digits = [](std::string_view d) {
    return std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (s[0] != '-' || s.substr(6, 4) != "-of-" || !digits(s.substr(1, 5)) ||
      !digits(s.substr(10, 5))) {
    return std::nullopt;
  }
  ShardName out;
  out.base = std::string(stem.substr(0, stem.size() - kSuffix));
  out.index = std::stoi(std::string(s.substr(1, 5)));
  out.count = std::stoi(std::string(s.substr(10, 5)));
  if (out.index < 1 || out.count < 1 || out.index > out.count) return std::nullopt;
  return out;
}

namespace {

bool has_gguf_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".gguf";
}

void walk(const fs::path& dir, int depth_left, std::vector<fs::path>& out) {
  std::error_code ec;
  fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    log::debug("store: skip " + dir.string() + ": " + ec.message());
    return;
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::directory_entry& e = *it;
    std::error_code ec2;
    bool is_link = e.is_symlink(ec2);
    if (!is_link && e.is_directory(ec2)) {
      if (depth_left > 0) walk(e.path(), depth_left - 1, out);
      continue;
    }
    if (!has_gguf_extension(e.path())) continue;
    // is_regular_file follows symlinks; a broken link is simply not a regular file.
    if (e.is_regular_file(ec2)) {
      out.push_back(e.path());
    } else {
      log::debug("store: skip " + e.path().string() + ": not a readable regular file");
    }
  }
  if (ec) log::debug("store: stopped listing " + dir.string() + ": " + ec.message());
}

// Multimodal projectors ship next to models as "mmproj-*.gguf"; they are GGUF files but not
// models one can run alone.
bool is_auxiliary_stem(const std::string& stem) {
  std::string lower = stem.substr(0, 6);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "mmproj";
}

}  // namespace

std::vector<fs::path> list_gguf_files(const fs::path& root, int max_depth) {
  std::vector<fs::path> out;
  walk(root, max_depth, out);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<FileGroup> group_model_files(const std::vector<fs::path>& files) {
  // key: (directory, base, count) -> index -> path
  using Key = std::tuple<std::string, std::string, int>;
  std::map<Key, std::map<int, fs::path>> splits;
  std::vector<FileGroup> out;

  auto finish = [&out](FileGroup g) {
    if (Status s = check_gguf_magic(g.files[0]); !s) {
      log::debug("store: skip " + s.message());
      return;
    }
    for (const auto& f : g.files) {
      auto st = stat_file(f);
      if (!st) {
        log::debug("store: skip " + st.error().message);
        return;
      }
      g.size += st->size;
      g.mtime = std::max(g.mtime, st->mtime);
    }
    out.push_back(std::move(g));
  };

  for (const auto& p : files) {
    std::string stem = p.stem().string();
    if (is_auxiliary_stem(stem)) {
      log::debug("store: skip " + p.string() + ": a vision projector, not a model");
      continue;
    }
    if (auto sh = parse_shard_stem(stem)) {
      splits[Key{p.parent_path().string(), sh->base, sh->count}][sh->index] = p;
      continue;
    }
    finish(FileGroup{stem, {p.string()}, 0, 0});
  }
  for (auto& [key, shards] : splits) {
    const auto& [dir, base, count] = key;
    if (static_cast<int>(shards.size()) != count) {
      log::debug("store: skip split model " + dir + "/" + base + ": found " +
                 std::to_string(shards.size()) + " of " + std::to_string(count) + " shards");
      continue;
    }
    FileGroup g{base, {}, 0, 0};
    for (auto& [idx, path] : shards) g.files.push_back(path.string());
    finish(std::move(g));
  }
  // Stable output order regardless of map iteration: by first file path.
  std::sort(out.begin(), out.end(),
            [](const FileGroup& a, const FileGroup& b) { return a.files[0] < b.files[0]; });
  return out;
}

ModelEntry entry_from_group(FileGroup g, std::string name, Source source) {
  ModelEntry e;
  e.name = std::move(name);
  e.path = g.files[0];
  e.shards = std::move(g.files);
  e.size_bytes = g.size;
  e.source = source;
  e.modified_unix = g.mtime;
  e.stem = std::move(g.stem);
  return e;
}

}  // namespace shimmy::store
