// GGUF reader: memory-maps a file (or the shards of a split model), validates every
// count, length, offset and dimension against the file size before using it, and
// exposes metadata and tensor views straight into the map.
//
// On-disk layout (little-endian, versions 2 and 3):
//   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count × (string key | u32 value type | value)
//   tensor_count × (string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset)
//   padding to general.alignment (default 32) | tensor data (offsets relative to here)
// A string is u64 length + bytes (no terminator); an array is u32 elem type + u64 count +
// elements. ne[0] is the fastest-varying dimension (a row).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "gguf/value.h"
#include "util/mapped_file.h"
#include "util/result.h"

namespace shimmy::gguf {

inline constexpr uint32_t kMaxDims = 4;
inline constexpr uint64_t kDefaultAlignment = 32;

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> shape;  // ne[0] (row length) first
  TensorType type = TensorType::F32;
  uint64_t offset = 0;  // relative to its shard's data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  uint32_t shard = 0;             // index into File::shards()
  const uint8_t* data = nullptr;  // points into the memory map

  uint64_t rows() const { return shape.empty() ? 0 : n_elements / shape[0]; }
  uint64_t file_offset = 0;  // absolute offset in its shard
};

struct KeyValue {
  std::string key;
  Value value;
};

class File {
 public:
  // Opens a GGUF file. A split-model shard ("NAME-00002-of-00003.gguf") opens the
  // whole model: the sibling shards are found next to it and ordered by split.no.
  static Result<File> open(const std::string& path);
  // Opens the given shards of one split model, in any order.
  static Result<File> open_shards(const std::vector<std::string>& paths);
  // Parses a single in-memory buffer (fuzzing, tests). `name` is used in messages.
  static Result<File> parse(const uint8_t* data, uint64_t size, const std::string& name);

  File() = default;
  File(File&&) noexcept = default;
  File& operator=(File&&) noexcept = default;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }
  uint64_t file_size() const { return total_size_; }  // all shards together
  size_t shard_count() const { return shards_.size(); }
  const MappedFile* shard(size_t i) const { return shards_[i].get(); }
  uint64_t data_offset(size_t shard = 0) const { return data_offsets_[shard]; }

  const std::vector<KeyValue>& metadata() const { return kv_; }
  const Value* find(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<uint64_t> get_uint(const std::string& key) const;
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  const std::vector<std::string>* get_strings(const std::string& key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;

 private:
  friend class Parser;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t total_size_ = 0;
  std::vector<std::unique_ptr<MappedFile>> shards_;
  std::vector<uint64_t> data_offsets_;
  std::vector<KeyValue> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// "NAME-00001-of-00003.gguf" → {prefix "NAME", no 1, count 3}; nullopt if not that shape.
struct SplitName {
  std::string prefix;
  int no = 0;
  int count = 0;
};
std::optional<SplitName> parse_split_name(const std::string& path);
std::string split_path(const std::string& prefix, int no, int count);

}  // namespace shimmy::gguf
