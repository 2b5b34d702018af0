#include "gguf/value.h"

#include <cstdio>

namespace shimmy::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8:
      return "u8";
    case ValueType::I8:
      return "i8";
    case ValueType::U16:
      return "u16";
    case ValueType::I16:
      return "i16";
    case ValueType::U32:
      return "u32";
    case ValueType::I32:
      return "i32";
    case ValueType::F32:
      return "f32";
    case ValueType::BOOL:
      return "bool";
    case ValueType::STRING:
      return "string";
    case ValueType::ARRAY:
      return "array";
    case ValueType::U64:
      return "u64";
    case ValueType::I64:
      return "i64";
    case ValueType::F64:
      return "f64";
  }
  return "?";
}

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::U16:
    case ValueType::I16:
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::U64:
    case ValueType::I64:
      return true;
    default:
      return false;
  }
}

bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

bool is_float(ValueType t) {
  return t == ValueType::F32 || t == ValueType::F64;
}

uint32_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
      return 8;
    default:
      return 0;
  }
}

uint64_t Value::array_size() const {
  if (type != ValueType::ARRAY) return 0;
  if (elem == ValueType::STRING) return strs.size();
  if (elem == ValueType::ARRAY) return arrays.size();
  if (is_float(elem)) return floats.size();
  return ints.size();
}

std::optional<uint64_t> Value::as_uint() const {
  if (is_integer(type) || type == ValueType::BOOL) {
    if (is_signed(type) && i < 0) return std::nullopt;
    return static_cast<uint64_t>(i);
  }
  return std::nullopt;
}

std::optional<int64_t> Value::as_int() const {
  if (is_integer(type) || type == ValueType::BOOL) {
    if (type == ValueType::U64 && i < 0) return std::nullopt;
    return i;
  }
  return std::nullopt;
}

std::optional<double> Value::as_float() const {
  if (is_float(type)) return f;
  if (is_integer(type)) {
    return type == ValueType::U64 ? static_cast<double>(static_cast<uint64_t>(i))
                                  : static_cast<double>(i);
  }
  return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
  if (type == ValueType::BOOL || is_integer(type)) return i != 0;
  return std::nullopt;
}

std::string Value::to_display(size_t max_items) const {
  char buf[64];
  switch (type) {
    case ValueType::STRING: {
      std::string out = "\"";
      for (char c : s.substr(0, 120)) {
        if (c == '\n')
          out += "\\n";
        else if (c == '"')
          out += "\\\"";
        else
          out += c;
      }
      if (s.size() > 120) out += "...";
      return out + "\"";
    }
    case ValueType::BOOL:
      return i ? "true" : "false";
    case ValueType::F32:
    case ValueType::F64:
      std::snprintf(buf, sizeof buf, "%g", f);
      return buf;
    case ValueType::U64:
      std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(i));
      return buf;
    case ValueType::ARRAY: {
      uint64_t n = array_size();
      if (n > max_items) {
        return "[" + std::to_string(n) + " " + value_type_name(elem) + " values]";
      }
      std::string out = "[";
      for (uint64_t k = 0; k < n; ++k) {
        if (k) out += ", ";
        Value e;
        e.type = elem;
        if (elem == ValueType::STRING)
          e.s = strs[k];
        else if (elem == ValueType::ARRAY)
          e = arrays[k];
        else if (is_float(elem))
          e.f = floats[k];
        else
          e.i = ints[k];
        out += e.to_display(max_items);
      }
      return out + "]";
    }
    default:
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(i));
      return buf;
  }
}

bool Value::operator==(const Value& o) const {
  if (type != o.type) return false;
  switch (type) {
    case ValueType::STRING:
      return s == o.s;
    case ValueType::F32:
    case ValueType::F64:
      return f == o.f || (f != f && o.f != o.f);
    case ValueType::ARRAY:
      return elem == o.elem && ints == o.ints && strs == o.strs && arrays == o.arrays &&
             floats.size() == o.floats.size() && [&] {
               for (size_t k = 0; k < floats.size(); ++k) {
                 if (!(floats[k] == o.floats[k] ||
                       (floats[k] != floats[k] && o.floats[k] != o.floats[k])))
                   return false;
               }
               return true;
             }();
    default:
      return i == o.i;
  }
}

}  // namespace shimmy::gguf
