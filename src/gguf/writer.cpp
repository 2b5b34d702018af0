#include "gguf/writer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

namespace shimmy::gguf {

namespace {

// Appends little-endian scalars and strings to a byte buffer (x86-64 is little-endian).
struct Out {
  std::vector<uint8_t> b;
  template <typename T>
  void put(T v) {
    size_t n = b.size();
    b.resize(n + sizeof(T));
    std::memcpy(b.data() + n, &v, sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
};

void put_scalar(Out& o, ValueType t, int64_t i, double f) {
  switch (t) {
    case ValueType::U8:
      o.put<uint8_t>(static_cast<uint8_t>(i));
      break;
    case ValueType::I8:
      o.put<int8_t>(static_cast<int8_t>(i));
      break;
    case ValueType::U16:
      o.put<uint16_t>(static_cast<uint16_t>(i));
      break;
    case ValueType::I16:
      o.put<int16_t>(static_cast<int16_t>(i));
      break;
    case ValueType::U32:
      o.put<uint32_t>(static_cast<uint32_t>(i));
      break;
    case ValueType::I32:
      o.put<int32_t>(static_cast<int32_t>(i));
      break;
    case ValueType::U64:
      o.put<uint64_t>(static_cast<uint64_t>(i));
      break;
    case ValueType::I64:
      o.put<int64_t>(i);
      break;
    case ValueType::F32:
      o.put<float>(static_cast<float>(f));
      break;
    case ValueType::F64:
      o.put<double>(f);
      break;
    case ValueType::BOOL:
      o.put<uint8_t>(i ? 1 : 0);
      break;
    default:
      break;
  }
}

void put_array(Out& o, const Value& v) {
  o.put<uint32_t>(static_cast<uint32_t>(v.elem));
  o.put<uint64_t>(v.array_size());
  if (v.elem == ValueType::STRING) {
    for (const auto& s : v.strs) o.str(s);
  } else if (v.elem == ValueType::ARRAY) {
    for (const auto& a : v.arrays) put_array(o, a);
  } else if (is_float(v.elem)) {
    for (double f : v.floats) put_scalar(o, v.elem, 0, f);
  } else {
    for (int64_t i : v.ints) put_scalar(o, v.elem, i, 0);
  }
}

void put_value(Out& o, const Value& v) {
  o.put<uint32_t>(static_cast<uint32_t>(v.type));
  if (v.type == ValueType::STRING)
    o.str(v.s);
  else if (v.type == ValueType::ARRAY)
    put_array(o, v);
  else
    put_scalar(o, v.type, v.i, v.f);
}

uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

}  // namespace

void Writer::set(const std::string& key, Value v) {
  for (auto& e : kv_) {
    if (e.key == key) {
      e.value = std::move(v);
      return;
    }
  }
  kv_.push_back({key, std::move(v)});
}

Status Writer::add_tensor_view(const std::string& name, TensorType type,
                               std::vector<uint64_t> shape, const uint8_t* data, uint64_t n_bytes) {
  if (shape.empty() || shape.size() > kMaxDims) {
    return make_error("tensor '" + name + "': 1 to 4 dimensions expected");
  }
  uint64_t rows = 1;
  for (size_t k = 1; k < shape.size(); ++k) rows *= shape[k];
  auto rb = row_bytes(type, shape[0]);
  if (!rb || *rb * rows != n_bytes) {
    return make_error("tensor '" + name + "': " + std::to_string(n_bytes) +
                      " bytes given, which does not match its type " +
                      type_name(static_cast<uint32_t>(type)) + " and shape");
  }
  for (const auto& t : tensors_) {
    if (t.name == name) return make_error("tensor '" + name + "' added twice");
  }
  Tensor t;
  t.name = name;
  t.type = type;
  t.shape = std::move(shape);
  t.data = data;
  t.n_bytes = n_bytes;
  tensors_.push_back(std::move(t));
  return Status{};
}

Status Writer::add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> shape,
                          std::vector<uint8_t> data) {
  uint64_t n = data.size();
  Status st = add_tensor_view(name, type, std::move(shape), nullptr, n);
  if (!st) return st;
  tensors_.back().owned = std::move(data);
  tensors_.back().data = tensors_.back().owned.data();
  return Status{};
}

void Writer::copy_from(const File& f) {
  for (const auto& e : f.metadata()) set(e.key, e.value);
  for (const auto& t : f.tensors()) {
    (void)add_tensor_view(t.name, t.type, t.shape, t.data, t.n_bytes);
  }
}

uint64_t Writer::alignment() const {
  for (const auto& e : kv_) {
    if (e.key == "general.alignment") {
      auto a = e.value.as_uint();
      if (a && *a && (*a & (*a - 1)) == 0) return *a;
    }
  }
  return kDefaultAlignment;
}

// Header (metadata + tensor infos + padding to the data section) and each tensor's
// offset relative to the data section.
std::vector<uint8_t> Writer::header(std::vector<uint64_t>& offsets, uint64_t& data_bytes) const {
  const uint64_t align = alignment();
  Out o;
  o.put<uint32_t>(0x46554747);
  o.put<uint32_t>(3);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(kv_.size());
  for (const auto& e : kv_) {
    o.str(e.key);
    put_value(o, e.value);
  }
  uint64_t off = 0;
  offsets.clear();
  for (const auto& t : tensors_) {
    o.str(t.name);
    o.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (uint64_t d : t.shape) o.put<uint64_t>(d);
    o.put<uint32_t>(static_cast<uint32_t>(t.type));
    o.put<uint64_t>(off);
    offsets.push_back(off);
    off = align_up(off + t.n_bytes, align);
  }
  o.b.resize(align_up(o.b.size(), align), 0);
  data_bytes = off;
  return std::move(o.b);
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint64_t> offsets;
  uint64_t data_bytes = 0;
  std::vector<uint8_t> b = header(offsets, data_bytes);
  const size_t data_start = b.size();
  b.resize(data_start + data_bytes, 0);
  for (size_t k = 0; k < tensors_.size(); ++k) {
    if (tensors_[k].n_bytes) {
      std::memcpy(b.data() + data_start + offsets[k], tensors_[k].data, tensors_[k].n_bytes);
    }
  }
  return b;
}

// Streams the file: memory use is the header, not the model.
Status Writer::write(const std::string& path) const {
  std::vector<uint64_t> offsets;
  uint64_t data_bytes = 0;
  std::vector<uint8_t> hdr = header(offsets, data_bytes);
  std::unique_ptr<FILE, int (*)(FILE*)> fp(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!fp) return make_error(path + ": cannot open for writing");
  auto put = [&](const void* p, size_t n) { return std::fwrite(p, 1, n, fp.get()) == n; };
  if (!put(hdr.data(), hdr.size())) return make_error(path + ": write failed");
  static const uint8_t zeros[4096] = {};
  uint64_t at = 0;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    while (at < offsets[k]) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof zeros, offsets[k] - at));
      if (!put(zeros, n)) return make_error(path + ": write failed");
      at += n;
    }
    if (!put(tensors_[k].data, tensors_[k].n_bytes)) return make_error(path + ": write failed");
    at += tensors_[k].n_bytes;
  }
  while (at < data_bytes) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof zeros, data_bytes - at));
    if (!put(zeros, n)) return make_error(path + ": write failed");
    at += n;
  }
  if (std::fclose(fp.release()) != 0) return make_error(path + ": write failed on close");
  return Status{};
}

}  // namespace shimmy::gguf
