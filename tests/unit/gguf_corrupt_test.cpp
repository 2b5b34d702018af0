// A generated corpus of corrupt GGUF files: truncation at every byte of the header and at
// every section boundary, huge counts and lengths written over every header field, and
// hand-made structural errors. Every case must end in an error message (exit status 1 from
// `shimmy show`), never a crash, a hang or an allocation larger than the file.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/paths.h"

using namespace shimmy;
using namespace shimmy::gguf;

// ---- the largest single allocation while `g_track` is on ---------------------------
namespace {
std::atomic<bool> g_track{false};
std::atomic<size_t> g_peak{0};
void note(size_t n) {
  if (!g_track.load(std::memory_order_relaxed)) return;
  size_t p = g_peak.load();
  while (n > p && !g_peak.compare_exchange_weak(p, n)) {
  }
}
}  // namespace

void* operator new(size_t n) {
  note(n);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  note(n);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// The nothrow forms too: the standard library pairs them with the plain deletes below.
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  note(n);
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  note(n);
  return std::malloc(n ? n : 1);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}

namespace {

// A small valid file with every metadata type, a nested array and three tensors.
std::vector<uint8_t> sample_file() {
  Writer w;
  w.set("general.architecture", Value::string("llama"));
  w.set("general.alignment", Value::u32(32));
  w.set("t.u8", Value::integer(ValueType::U8, 7));
  w.set("t.i8", Value::integer(ValueType::I8, -7));
  w.set("t.u16", Value::integer(ValueType::U16, 700));
  w.set("t.i16", Value::integer(ValueType::I16, -700));
  w.set("t.i32", Value::i32(-70000));
  w.set("t.f32", Value::f32(0.5f));
  w.set("t.bool", Value::boolean(true));
  w.set("t.u64", Value::u64(1ull << 40));
  w.set("t.i64", Value::integer(ValueType::I64, -(1ll << 40)));
  Value f64;
  f64.type = ValueType::F64;
  f64.f = 2.25;
  w.set("t.f64", f64);
  w.set("t.strs", Value::string_array({"a", "bc", ""}));
  w.set("t.ints", Value::int_array(ValueType::I32, {1, -2, 3}));
  w.set("t.floats", Value::float_array({1.0, 2.5}));
  Value nested;
  nested.type = ValueType::ARRAY;
  nested.elem = ValueType::ARRAY;
  nested.arrays = {Value::int_array(ValueType::U8, {1, 2}), Value::string_array({"x"})};
  w.set("t.nested", nested);
  std::vector<uint8_t> f32(8 * 2 * 4, 1), q40(2 * 18, 2), q80(2 * 34, 3);
  EXPECT_TRUE(w.add_tensor("tensor.alpha", TensorType::F32, {8, 2}, f32).ok());
  EXPECT_TRUE(w.add_tensor("tensor.beta", TensorType::Q4_0, {32, 2}, q40).ok());
  EXPECT_TRUE(w.add_tensor("tensor.gamma", TensorType::Q8_0, {64}, q80).ok());
  return w.to_bytes();
}

// Parses with allocation tracking; returns the error message ("" if it parsed).
std::string parse_tracked(const std::vector<uint8_t>& b, size_t* peak = nullptr) {
  g_peak = 0;
  g_track = true;
  std::string msg;
  {
    auto f = File::parse(b.data(), b.size(), "corrupt.gguf");
    if (!f) {
      msg = f.error().message;
    } else {
      for (const auto& t : f->tensors()) {
        EXPECT_GE(t.data, b.data());
        EXPECT_LE(t.data + t.n_bytes, b.data() + b.size());
      }
    }
  }
  g_track = false;
  if (peak) *peak = g_peak;
  return msg;
}

size_t header_end(const std::vector<uint8_t>& b) {
  auto f = File::parse(b.data(), b.size(), "x");
  return f ? f->data_offset() : 0;
}

// Offset of the tensor info of `name`: u64 len, bytes, then u32 n_dims.
size_t tensor_info_at(const std::vector<uint8_t>& b, const std::string& name) {
  std::string needle(8, '\0');
  uint64_t n = name.size();
  std::memcpy(needle.data(), &n, 8);
  needle += name;
  std::string hay(b.begin(), b.end());
  size_t at = hay.find(needle);
  EXPECT_NE(at, std::string::npos);
  return at + needle.size();
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

}  // namespace

TEST(GgufCorrupt, SampleIsValid) {
  auto b = sample_file();
  EXPECT_EQ(parse_tracked(b), "");
}

TEST(GgufCorrupt, EveryTruncationFails) {
  auto b = sample_file();
  const size_t hdr = header_end(b);
  ASSERT_GT(hdr, 100u);
  // The last tensor ends before the file's final alignment padding.
  const size_t data_end = hdr + 2 * 64 + 2 * 34;
  for (size_t n = 0; n < data_end; ++n) {
    // Every byte of the header; then only the section boundaries of the data.
    if (n > hdr && n % 32 != 0 && n != data_end - 1) continue;
    std::vector<uint8_t> t(b.begin(), b.begin() + n);
    size_t peak = 0;
    std::string msg = parse_tracked(t, &peak);
    EXPECT_FALSE(msg.empty()) << "truncated at " << n << " still parsed";
    EXPECT_NE(msg.find("corrupt.gguf"), std::string::npos) << msg;
    EXPECT_LE(peak, 4 * b.size() + 4096) << "truncated at " << n;
  }
}

TEST(GgufCorrupt, HugeValuesOverEveryHeaderField) {
  auto b = sample_file();
  const size_t hdr = header_end(b);
  const uint64_t values[] = {~0ull, 1ull << 62, 1ull << 40, 0x7fffffffull, 0};
  for (size_t at = 4; at + 8 <= hdr; ++at) {
    for (uint64_t v : values) {
      auto c = b;
      poke(c, at, v);
      size_t peak = 0;
      (void)parse_tracked(c, &peak);  // may parse (a string's bytes), must not crash
      EXPECT_LE(peak, 4 * b.size() + 4096) << "u64 " << v << " at " << at;
      auto d = b;
      poke(d, at, static_cast<uint32_t>(v));
      (void)parse_tracked(d, &peak);
      EXPECT_LE(peak, 4 * b.size() + 4096) << "u32 " << v << " at " << at;
    }
  }
}

TEST(GgufCorrupt, StructuralErrorsNameTheProblem) {
  const auto b = sample_file();
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* expect;
  };
  std::vector<Case> cases;
  auto with = [&](const char* what, const char* expect, auto mutate) {
    auto c = b;
    mutate(c);
    cases.push_back({what, c, expect});
  };
  with("wrong magic", "not a GGUF file", [](auto& c) { c[0] = 'X'; });
  with("version 1", "version 1 is not supported", [](auto& c) { poke<uint32_t>(c, 4, 1); });
  with("big endian", "big-endian", [](auto& c) { poke<uint32_t>(c, 4, 0x03000000); });
  with("version 9", "unsupported GGUF version 9", [](auto& c) { poke<uint32_t>(c, 4, 9); });
  with("tensor count", "tensor count", [](auto& c) { poke<uint64_t>(c, 8, 1ull << 60); });
  with("kv count", "metadata count", [](auto& c) { poke<uint64_t>(c, 16, 1ull << 60); });
  const size_t a = tensor_info_at(b, "tensor.alpha");
  with("5 dims", "dimensions", [&](auto& c) { poke<uint32_t>(c, a, 5); });
  with("0 dims", "dimensions", [&](auto& c) { poke<uint32_t>(c, a, 0); });
  // a: n_dims(4) ne0(8) ne1(8) type(4) offset(8)
  with("zero dim", "invalid dimension", [&](auto& c) { poke<uint64_t>(c, a + 4, 0); });
  with("bad type", "unknown or retired type id 4", [&](auto& c) { poke<uint32_t>(c, a + 20, 4); });
  with("misaligned", "not a multiple of the alignment",
       [&](auto& c) { poke<uint64_t>(c, a + 24, 4); });
  with("past end", "runs past the end of the file",
       [&](auto& c) { poke<uint64_t>(c, a + 24, 1ull << 20); });
  const size_t bb = tensor_info_at(b, "tensor.beta");
  with("overlap", "overlap", [&](auto& c) { poke<uint64_t>(c, bb + 24, 0); });
  with("row not multiple of block", "not a multiple of the Q4_0 block size",
       [&](auto& c) { poke<uint64_t>(c, bb + 4, 33); });
  {
    Writer w;
    w.set("k", Value::u32(1));
    std::vector<uint8_t> x = w.to_bytes();
    // Duplicate key: bump the kv count and append the same pair again.
    std::vector<uint8_t> kv(x.begin() + 24, x.end());
    while (!kv.empty() && kv.back() == 0) kv.pop_back();  // drop alignment padding
    kv.resize(8 + 1 + 4 + 4);
    x.resize(24 + kv.size());
    x.insert(x.end(), kv.begin(), kv.end());
    poke<uint64_t>(x, 16, 2);
    cases.push_back({"duplicate key", x, "duplicate metadata key 'k'"});
  }
  {
    Writer w;
    std::vector<uint8_t> d(4, 0);
    ASSERT_TRUE(w.add_tensor("t", TensorType::F32, {1}, d).ok());
    ASSERT_TRUE(w.add_tensor("u", TensorType::F32, {1}, d).ok());
    std::vector<uint8_t> x = w.to_bytes();
    const size_t u = tensor_info_at(x, "u");
    x[u - 1] = 't';
    cases.push_back({"duplicate tensor", x, "duplicate tensor name 't'"});
  }
  {
    Writer w;
    w.set("general.alignment", Value::u32(24));
    cases.push_back({"alignment", w.to_bytes(), "general.alignment must be"});
    Writer v;
    v.set("flag", Value::boolean(true));
    auto y = v.to_bytes();
    y[24 + 8 + 4 + 4] = 2;
    cases.push_back({"bool 2", y, "bool value must be 0 or 1"});
  }

  std::string dir = test::make_temp_dir("corrupt");
  int k = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    size_t peak = 0;
    std::string msg = parse_tracked(c.bytes, &peak);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "got: " << msg;
    // The CLI: exit status 1 and the message on stderr.
    std::string p = dir + "/case" + std::to_string(k++) + ".gguf";
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(c.bytes.data()),
               static_cast<std::streamsize>(c.bytes.size()));
    auto r = test::run_process({test::shimmy_bin(), "show", p});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.signal, 0);
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
  }
  // Truncations through the CLI too, at a few section boundaries.
  for (size_t n : {0ul, 3ul, 7ul, 15ul, 23ul, 40ul, header_end(b) - 1, header_end(b) + 100}) {
    std::string p = dir + "/trunc" + std::to_string(n) + ".gguf";
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(n));
    auto r = test::run_process({test::shimmy_bin(), "show", p});
    EXPECT_EQ(r.exit_code, 1) << n << ": " << r.err;
    EXPECT_NE(r.err.find("error:"), std::string::npos);
  }
  auto r = test::run_process({test::shimmy_bin(), "show", dir + "/does-not-exist.gguf"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot open"), std::string::npos);
  std::filesystem::remove_all(dir);
}
