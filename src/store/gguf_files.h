// File-level helpers shared by the scanners: find *.gguf files, check their magic, and
// group split models ("NAME-00001-of-00003.gguf" ...) into one model.
//
// Nothing here throws: filesystem errors (permission denied, broken symlinks, loops) are
// logged at debug level and the file or directory is skipped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/model_entry.h"
#include "util/result.h"

namespace shimmy::store {

// Reads the first 4 bytes only. Error names the file and what was found instead.
Status check_gguf_magic(const std::string& path);

// size and mtime of what the path points to (symlinks followed).
struct FileStat {
  uint64_t size = 0;
  int64_t mtime = 0;  // unix seconds
};
Result<FileStat> stat_file(const std::string& path);

// "NAME-00002-of-00003" -> {NAME, 2, 3}; anything else -> nullopt.
struct ShardName {
  std::string base;
  int index = 0;
  int count = 0;
};
std::optional<ShardName> parse_shard_stem(std::string_view stem);

// Regular files (or symlinks to them) named *.gguf under root, at most max_depth levels of
// subdirectories deep, sorted by path. Directory symlinks are not followed.
std::vector<std::filesystem::path> list_gguf_files(const std::filesystem::path& root,
                                                   int max_depth);

// One model made of one file or of all the shards of a split file.
struct FileGroup {
  std::string stem;                // file stem, shard suffix removed
  std::vector<std::string> files;  // shards in order; files[0] is what the loader opens
  uint64_t size = 0;               // sum over files
  int64_t mtime = 0;               // newest file
};

// Groups files into models and validates them (magic of the first file, every shard
// present). Shards group by (directory, base name, shard count). Invalid groups are skipped
// with a debug log line.
std::vector<FileGroup> group_model_files(const std::vector<std::filesystem::path>& files);

// A ModelEntry for a validated group (digest left empty).
ModelEntry entry_from_group(FileGroup g, std::string name, Source source);

}  // namespace shimmy::store
