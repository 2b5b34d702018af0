// GGUF metadata values: one typed scalar, string, or (possibly nested) array.
//
// Integer arrays keep their element type and store each element as 64 bits (unsigned
// types bit-cast), float arrays as double (exact for F32), so a read → write round trip
// reproduces the file's bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shimmy::gguf {

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

const char* value_type_name(ValueType t);
bool is_integer(ValueType t);
bool is_signed(ValueType t);
bool is_float(ValueType t);
// Bytes of one scalar on disk (0 for STRING and ARRAY).
uint32_t scalar_size(ValueType t);

struct Value {
  ValueType type = ValueType::U32;
  // Scalars. Integers: `i` holds the value (unsigned ones bit-cast); floats: `f`.
  int64_t i = 0;
  double f = 0;
  std::string s;
  // Arrays: element type and exactly one of the vectors below in use.
  ValueType elem = ValueType::U8;
  std::vector<int64_t> ints;      // integer and bool elements
  std::vector<double> floats;     // F32 / F64 elements
  std::vector<std::string> strs;  // STRING elements
  std::vector<Value> arrays;      // nested ARRAY elements

  static Value u32(uint32_t v) { return integer(ValueType::U32, v); }
  static Value i32(int32_t v) { return integer(ValueType::I32, v); }
  static Value u64(uint64_t v) { return integer(ValueType::U64, static_cast<int64_t>(v)); }
  static Value boolean(bool v) { return integer(ValueType::BOOL, v ? 1 : 0); }
  static Value f32(float v) {
    Value x;
    x.type = ValueType::F32;
    x.f = v;
    return x;
  }
  static Value string(std::string v) {
    Value x;
    x.type = ValueType::STRING;
    x.s = std::move(v);
    return x;
  }
  static Value integer(ValueType t, int64_t v) {
    Value x;
    x.type = t;
    x.i = v;
    return x;
  }
  static Value string_array(std::vector<std::string> v) {
    Value x;
    x.type = ValueType::ARRAY;
    x.elem = ValueType::STRING;
    x.strs = std::move(v);
    return x;
  }
  static Value int_array(ValueType elem, std::vector<int64_t> v) {
    Value x;
    x.type = ValueType::ARRAY;
    x.elem = elem;
    x.ints = std::move(v);
    return x;
  }
  static Value float_array(std::vector<double> v) {
    Value x;
    x.type = ValueType::ARRAY;
    x.elem = ValueType::F32;
    x.floats = std::move(v);
    return x;
  }

  uint64_t array_size() const;

  // Lenient accessors: any integer type converts to an integer, any number to a double.
  std::optional<uint64_t> as_uint() const;
  std::optional<int64_t> as_int() const;
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const { return type == ValueType::STRING ? &s : nullptr; }

  // A short human-readable rendering ("[32000 strings]" for big arrays).
  std::string to_display(size_t max_items = 8) const;

  bool operator==(const Value& o) const;
};

}  // namespace shimmy::gguf
