#include "gguf/reader.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

namespace shimmy::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
// Anything longer than this is not a metadata string a model needs (a chat template is a
// few KB); it also bounds the work a hostile file can ask of us per string.
constexpr uint64_t kMaxStringBytes = 1ull << 30;
constexpr uint32_t kMaxArrayDepth = 8;

std::string u64s(uint64_t v) {
  return std::to_string(v);
}

// Bounds-checked little-endian cursor over one buffer. Every read checks what is left;
// on failure `err` names the file, the offset and what was expected, and later reads fail.
class Cursor {
 public:
  Cursor(const uint8_t* d, uint64_t n, const std::string& name) : d_(d), n_(n), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return n_ - pos_; }
  bool failed() const { return !err_.empty(); }
  const std::string& error() const { return err_; }

  void fail(uint64_t at, const std::string& what) {
    if (err_.empty()) err_ = name_ + ": at offset " + u64s(at) + ": " + what;
  }

  template <typename T>
  bool read(T& out, const char* what) {
    if (failed()) return false;
    if (left() < sizeof(T)) {
      fail(pos_, std::string("expected ") + what + " (" + u64s(sizeof(T)) +
                     " bytes) but the file ends at " + u64s(n_));
      return false;
    }
    std::memcpy(&out, d_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  bool read_string(std::string& out, const char* what) {
    uint64_t at = pos_;
    uint64_t len = 0;
    if (!read(len, what)) return false;
    if (len > kMaxStringBytes || len > left()) {
      fail(at, std::string(what) + " claims " + u64s(len) + " bytes but only " + u64s(left()) +
                   " remain in the file");
      return false;
    }
    out.assign(reinterpret_cast<const char*>(d_ + pos_), len);
    pos_ += len;
    return true;
  }

  bool skip(uint64_t n) {
    if (n > left()) return false;
    pos_ += n;
    return true;
  }

 private:
  const uint8_t* d_;
  uint64_t n_;
  uint64_t pos_ = 0;
  const std::string& name_;
  std::string err_;
};

bool valid_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(ValueType::F64);
}

bool read_value(Cursor& c, ValueType t, Value& v, uint32_t depth);

bool read_scalar(Cursor& c, ValueType t, int64_t& i, double& f) {
  switch (t) {
    case ValueType::U8: {
      uint8_t x;
      if (!c.read(x, "u8 value")) return false;
      i = x;
      return true;
    }
    case ValueType::I8: {
      int8_t x;
      if (!c.read(x, "i8 value")) return false;
      i = x;
      return true;
    }
    case ValueType::U16: {
      uint16_t x;
      if (!c.read(x, "u16 value")) return false;
      i = x;
      return true;
    }
    case ValueType::I16: {
      int16_t x;
      if (!c.read(x, "i16 value")) return false;
      i = x;
      return true;
    }
    case ValueType::U32: {
      uint32_t x;
      if (!c.read(x, "u32 value")) return false;
      i = x;
      return true;
    }
    case ValueType::I32: {
      int32_t x;
      if (!c.read(x, "i32 value")) return false;
      i = x;
      return true;
    }
    case ValueType::U64: {
      uint64_t x;
      if (!c.read(x, "u64 value")) return false;
      i = static_cast<int64_t>(x);
      return true;
    }
    case ValueType::I64: {
      int64_t x;
      if (!c.read(x, "i64 value")) return false;
      i = x;
      return true;
    }
    case ValueType::F32: {
      float x;
      if (!c.read(x, "f32 value")) return false;
      f = x;
      return true;
    }
    case ValueType::F64: {
      double x;
      if (!c.read(x, "f64 value")) return false;
      f = x;
      return true;
    }
    case ValueType::BOOL: {
      uint8_t x;
      uint64_t at = c.pos();
      if (!c.read(x, "bool value")) return false;
      if (x > 1) {
        c.fail(at, "bool value must be 0 or 1, found " + u64s(x));
        return false;
      }
      i = x;
      return true;
    }
    default:
      return false;
  }
}

bool read_array(Cursor& c, Value& v, uint32_t depth) {
  uint64_t at = c.pos();
  uint32_t et = 0;
  uint64_t n = 0;
  if (!c.read(et, "array element type") || !c.read(n, "array length")) return false;
  if (!valid_value_type(et)) {
    c.fail(at, "unknown array element type " + u64s(et) + " (expected 0..12)");
    return false;
  }
  v.elem = static_cast<ValueType>(et);
  // Every element takes at least one byte (strings: 8 for the length; arrays: 12), so a
  // count larger than what is left is a lie: reject it before reserving anything.
  uint64_t min_size = v.elem == ValueType::STRING  ? 8
                      : v.elem == ValueType::ARRAY ? 12
                                                   : scalar_size(v.elem);
  if (n > c.left() / min_size) {
    c.fail(at, "array of " + u64s(n) + " " + value_type_name(v.elem) + " values needs at least " +
                   u64s(n) + " x " + u64s(min_size) + " bytes but only " + u64s(c.left()) +
                   " remain");
    return false;
  }
  if (v.elem == ValueType::STRING) {
    v.strs.resize(n);
    for (auto& s : v.strs) {
      if (!c.read_string(s, "array string")) return false;
    }
  } else if (v.elem == ValueType::ARRAY) {
    if (depth >= kMaxArrayDepth) {
      c.fail(at, "arrays nested deeper than " + u64s(kMaxArrayDepth));
      return false;
    }
    v.arrays.resize(n);
    for (auto& a : v.arrays) {
      a.type = ValueType::ARRAY;
      if (!read_array(c, a, depth + 1)) return false;
    }
  } else if (is_float(v.elem)) {
    v.floats.resize(n);
    int64_t dummy = 0;
    for (auto& f : v.floats) {
      if (!read_scalar(c, v.elem, dummy, f)) return false;
    }
  } else {
    v.ints.resize(n);
    double dummy = 0;
    for (auto& i : v.ints) {
      if (!read_scalar(c, v.elem, i, dummy)) return false;
    }
  }
  return true;
}

bool read_value(Cursor& c, ValueType t, Value& v, uint32_t depth) {
  v.type = t;
  if (t == ValueType::STRING) return c.read_string(v.s, "string value");
  if (t == ValueType::ARRAY) return read_array(c, v, depth);
  return read_scalar(c, t, v.i, v.f);
}

}  // namespace

// Parses one shard's header into `out` (metadata, tensor infos with shard-relative data).
class Parser {
 public:
  static Status parse_one(const uint8_t* data, uint64_t size, const std::string& name,
                          uint32_t shard, File& out, std::vector<KeyValue>& kv,
                          std::vector<TensorInfo>& tensors, uint64_t& data_offset,
                          uint64_t& alignment, uint32_t& version);
};

Status Parser::parse_one(const uint8_t* data, uint64_t size, const std::string& name,
                         uint32_t shard, File& out, std::vector<KeyValue>& kv,
                         std::vector<TensorInfo>& tensors, uint64_t& data_offset,
                         uint64_t& alignment, uint32_t& version) {
  (void)out;
  Cursor c(data, size, name);
  uint32_t magic = 0;
  if (!c.read(magic, "the magic \"GGUF\"")) return make_error(c.error());
  if (magic != kMagic) {
    return make_error(name + ": at offset 0: not a GGUF file (expected magic \"GGUF\")");
  }
  if (!c.read(version, "the format version")) return make_error(c.error());
  if (version == 1) {
    return make_error(name +
                      ": at offset 4: GGUF version 1 is not supported (versions 2 and 3 "
                      "are); convert the file with a current tool");
  }
  if (version != 2 && version != 3) {
    uint32_t swapped = __builtin_bswap32(version);
    if (swapped >= 1 && swapped <= 3) {
      return make_error(name + ": at offset 4: big-endian GGUF files are not supported");
    }
    return make_error(name + ": at offset 4: unsupported GGUF version " + u64s(version) +
                      " (expected 2 or 3)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  uint64_t at_counts = c.pos();
  if (!c.read(n_tensors, "the tensor count") || !c.read(n_kv, "the metadata count")) {
    return make_error(c.error());
  }
  // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at
  // least 8 + 4 + 4 + 8. Counts that cannot fit are rejected before anything is reserved.
  if (n_kv > c.left() / 13) {
    return make_error(name + ": at offset " + u64s(at_counts + 8) + ": metadata count " +
                      u64s(n_kv) + " cannot fit in the " + u64s(size) + "-byte file");
  }
  if (n_tensors > c.left() / 24) {
    return make_error(name + ": at offset " + u64s(at_counts) + ": tensor count " +
                      u64s(n_tensors) + " cannot fit in the " + u64s(size) + "-byte file");
  }

  // No reserve(): counts come from the file, so storage grows only with what parses.
  kv.clear();
  std::map<std::string, size_t> seen;
  alignment = kDefaultAlignment;
  for (uint64_t k = 0; k < n_kv; ++k) {
    KeyValue e;
    uint64_t at = c.pos();
    if (!c.read_string(e.key, "metadata key")) return make_error(c.error());
    uint32_t t = 0;
    uint64_t at_type = c.pos();
    if (!c.read(t, "metadata value type")) return make_error(c.error());
    if (!valid_value_type(t)) {
      return make_error(name + ": at offset " + u64s(at_type) + ": key '" + e.key +
                        "' has unknown value type " + u64s(t) + " (expected 0..12)");
    }
    if (!read_value(c, static_cast<ValueType>(t), e.value, 0)) {
      return make_error(c.error() + " (in the value of key '" + e.key + "')");
    }
    if (seen.count(e.key)) {
      return make_error(name + ": at offset " + u64s(at) + ": duplicate metadata key '" + e.key +
                        "'");
    }
    if (e.key == "general.alignment") {
      auto a = e.value.as_uint();
      if (e.value.type != ValueType::U32 || !a || *a == 0 || (*a & (*a - 1)) != 0 ||
          *a > (1u << 20)) {
        return make_error(name + ": at offset " + u64s(at) +
                          ": general.alignment must be a u32 power of two up to 1 MiB, found " +
                          e.value.to_display());
      }
      alignment = *a;
    }
    seen.emplace(e.key, kv.size());
    kv.push_back(std::move(e));
  }

  tensors.clear();
  std::map<std::string, size_t> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo ti;
    ti.shard = shard;
    uint64_t at = c.pos();
    if (!c.read_string(ti.name, "tensor name")) return make_error(c.error());
    uint32_t n_dims = 0;
    uint64_t at_dims = c.pos();
    if (!c.read(n_dims, "tensor dimension count")) return make_error(c.error());
    if (n_dims == 0 || n_dims > kMaxDims) {
      return make_error(name + ": at offset " + u64s(at_dims) + ": tensor '" + ti.name + "' has " +
                        u64s(n_dims) + " dimensions (expected 1.." + u64s(kMaxDims) + ")");
    }
    ti.shape.resize(n_dims);
    uint64_t n_el = 1;
    for (auto& d : ti.shape) {
      uint64_t at_d = c.pos();
      if (!c.read(d, "tensor dimension")) return make_error(c.error());
      if (d == 0 || d > (1ull << 40) || __builtin_mul_overflow(n_el, d, &n_el) ||
          n_el > (1ull << 50)) {
        return make_error(name + ": at offset " + u64s(at_d) + ": tensor '" + ti.name +
                          "' has an invalid dimension " + u64s(d));
      }
    }
    ti.n_elements = n_el;
    uint32_t type = 0;
    uint64_t at_type = c.pos();
    if (!c.read(type, "tensor type")) return make_error(c.error());
    auto tr = type_traits(type);
    if (!tr) {
      return make_error(name + ": at offset " + u64s(at_type) + ": tensor '" + ti.name +
                        "' has unknown or retired type id " + u64s(type));
    }
    ti.type = static_cast<TensorType>(type);
    if (ti.shape[0] % tr->block_size != 0) {
      return make_error(name + ": at offset " + u64s(at_dims) + ": tensor '" + ti.name +
                        "' row length " + u64s(ti.shape[0]) + " is not a multiple of the " +
                        std::string(tr->name) + " block size " + u64s(tr->block_size));
    }
    auto rb = row_bytes(ti.type, ti.shape[0]);
    if (!rb || __builtin_mul_overflow(*rb, ti.rows(), &ti.n_bytes)) {
      return make_error(name + ": at offset " + u64s(at) + ": tensor '" + ti.name +
                        "' size overflows");
    }
    if (!c.read(ti.offset, "tensor data offset")) return make_error(c.error());
    if (names.count(ti.name)) {
      return make_error(name + ": at offset " + u64s(at) + ": duplicate tensor name '" + ti.name +
                        "'");
    }
    names.emplace(ti.name, tensors.size());
    tensors.push_back(std::move(ti));
  }

  // Data section: after the header, rounded up to the alignment. A file with no tensors
  // may end right after its header.
  uint64_t hdr_end = c.pos();
  data_offset = (hdr_end + alignment - 1) / alignment * alignment;
  if (tensors.empty()) return Status{};
  if (data_offset > size) {
    return make_error(name + ": at offset " + u64s(hdr_end) + ": the data section (at " +
                      u64s(data_offset) + ") starts past the end of the file (" + u64s(size) +
                      " bytes)");
  }
  const uint64_t data_size = size - data_offset;
  for (auto& ti : tensors) {
    uint64_t end = 0;
    if (ti.offset % alignment != 0) {
      return make_error(name + ": tensor '" + ti.name + "' data offset " + u64s(ti.offset) +
                        " is not a multiple of the alignment " + u64s(alignment));
    }
    if (__builtin_add_overflow(ti.offset, ti.n_bytes, &end) || end > data_size) {
      return make_error(name + ": tensor '" + ti.name + "' data at offset " +
                        u64s(data_offset + ti.offset) + " (" + u64s(ti.n_bytes) +
                        " bytes) runs past the end of the file (" + u64s(size) + " bytes)");
    }
    ti.file_offset = data_offset + ti.offset;
    ti.data = data + ti.file_offset;
  }
  std::vector<const TensorInfo*> order;
  order.reserve(tensors.size());
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    if (order[k - 1]->offset + order[k - 1]->n_bytes > order[k]->offset) {
      return make_error(name + ": tensors '" + order[k - 1]->name + "' and '" + order[k]->name +
                        "' overlap in the data section (at " +
                        u64s(data_offset + order[k]->offset) + ")");
    }
  }
  return Status{};
}

Result<File> File::parse(const uint8_t* data, uint64_t size, const std::string& name) {
  File f;
  f.path_ = name;
  f.total_size_ = size;
  uint64_t doff = 0;
  Status st =
      Parser::parse_one(data, size, name, 0, f, f.kv_, f.tensors_, doff, f.alignment_, f.version_);
  if (!st) return st.error();
  f.data_offsets_.push_back(doff);
  for (size_t k = 0; k < f.kv_.size(); ++k) f.kv_index_.emplace(f.kv_[k].key, k);
  for (size_t k = 0; k < f.tensors_.size(); ++k) f.tensor_index_.emplace(f.tensors_[k].name, k);
  return f;
}

std::optional<SplitName> parse_split_name(const std::string& path) {
  // NAME-00001-of-00003.gguf
  const std::string suffix = ".gguf";
  if (path.size() < suffix.size() + 15) return std::nullopt;
  if (path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) return std::nullopt;
  std::string stem = path.substr(0, path.size() - suffix.size());
  // stem ends with -DDDDD-of-DDDDD
  if (stem.size() < 15) return std::nullopt;
  std::string tail = stem.substr(stem.size() - 15);
  if (tail[0] != '-' || tail.compare(6, 4, "-of-") != 0) return std::nullopt;
  for (int k : {1, 2, 3, 4, 5, 10, 11, 12, 13, 14}) {
    if (tail[k] < '0' || tail[k] > '9') return std::nullopt;
  }
  SplitName s;
  s.prefix = stem.substr(0, stem.size() - 15);
  s.no = std::stoi(tail.substr(1, 5));
  s.count = std::stoi(tail.substr(10, 5));
  if (s.no < 1 || s.count < 1 || s.no > s.count) return std::nullopt;
  return s;
}

std::string split_path(const std::string& prefix, int no, int count) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d.gguf", no, count);
  return prefix + buf;
}

Result<File> File::open(const std::string& path) {
  auto sp = parse_split_name(path);
  if (!sp || sp->count == 1) return open_shards({path});
  std::vector<std::string> paths;
  for (int k = 1; k <= sp->count; ++k) paths.push_back(split_path(sp->prefix, k, sp->count));
  return open_shards(paths);
}

Result<File> File::open_shards(const std::vector<std::string>& paths) {
  if (paths.empty()) return make_error("no GGUF file given");
  struct Shard {
    std::unique_ptr<MappedFile> map;
    std::vector<KeyValue> kv;
    std::vector<TensorInfo> tensors;
    uint64_t data_offset = 0, alignment = 0;
    uint32_t version = 0;
    uint64_t split_no = 0;
  };
  std::vector<Shard> shards;
  for (const auto& p : paths) {
    auto m = MappedFile::open(p);
    if (!m) return m.error();
    Shard s;
    s.map = std::make_unique<MappedFile>(std::move(m.value()));
    File scratch;
    Status st = Parser::parse_one(s.map->data(), s.map->size(), p, 0, scratch, s.kv, s.tensors,
                                  s.data_offset, s.alignment, s.version);
    if (!st) return st.error();
    if (paths.size() > 1) {
      auto it = std::find_if(s.kv.begin(), s.kv.end(),
                             [](const KeyValue& e) { return e.key == "split.no"; });
      auto cnt = std::find_if(s.kv.begin(), s.kv.end(),
                              [](const KeyValue& e) { return e.key == "split.count"; });
      if (it == s.kv.end() || !it->value.as_uint() || cnt == s.kv.end() ||
          cnt->value.as_uint() != paths.size()) {
        return make_error(p + ": shard of a " + u64s(paths.size()) +
                          "-file split model lacks split.no / a matching split.count");
      }
      s.split_no = *it->value.as_uint();
    }
    shards.push_back(std::move(s));
  }
  std::sort(shards.begin(), shards.end(),
            [](const Shard& a, const Shard& b) { return a.split_no < b.split_no; });
  for (size_t k = 0; k < shards.size(); ++k) {
    if (paths.size() > 1 && shards[k].split_no != k) {
      return make_error(shards[k].map->path() + ": split.no " + u64s(shards[k].split_no) +
                        " is repeated or out of range (expected each of 0.." +
                        u64s(shards.size() - 1) + " once)");
    }
  }
  File f;
  f.path_ = shards[0].map->path();
  f.version_ = shards[0].version;
  f.alignment_ = shards[0].alignment;
  f.kv_ = std::move(shards[0].kv);
  for (size_t k = 0; k < f.kv_.size(); ++k) f.kv_index_.emplace(f.kv_[k].key, k);
  for (size_t k = 0; k < shards.size(); ++k) {
    f.total_size_ += shards[k].map->size();
    f.data_offsets_.push_back(shards[k].data_offset);
    for (auto& t : shards[k].tensors) {
      t.shard = static_cast<uint32_t>(k);
      if (f.tensor_index_.count(t.name)) {
        return make_error(shards[k].map->path() + ": tensor '" + t.name +
                          "' also appears in another shard");
      }
      f.tensor_index_.emplace(t.name, f.tensors_.size());
      f.tensors_.push_back(std::move(t));
    }
    f.shards_.push_back(std::move(shards[k].map));
  }
  if (shards.size() > 1) {
    auto expect = f.get_uint("split.tensors.count");
    if (expect && *expect != f.tensors_.size()) {
      return make_error(f.path_ + ": split.tensors.count says " + u64s(*expect) +
                        " tensors but the shards hold " + u64s(f.tensors_.size()));
    }
  }
  return f;
}

const Value* File::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

std::optional<std::string> File::get_string(const std::string& key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::STRING) return std::nullopt;
  return v->s;
}

std::optional<uint64_t> File::get_uint(const std::string& key) const {
  const Value* v = find(key);
  return v ? v->as_uint() : std::nullopt;
}

std::optional<int64_t> File::get_int(const std::string& key) const {
  const Value* v = find(key);
  return v ? v->as_int() : std::nullopt;
}

std::optional<double> File::get_float(const std::string& key) const {
  const Value* v = find(key);
  return v ? v->as_float() : std::nullopt;
}

std::optional<bool> File::get_bool(const std::string& key) const {
  const Value* v = find(key);
  return v ? v->as_bool() : std::nullopt;
}

const std::vector<std::string>* File::get_strings(const std::string& key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::ARRAY || v->elem != ValueType::STRING) return nullptr;
  return &v->strs;
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace shimmy::gguf
