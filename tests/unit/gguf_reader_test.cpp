// GGUF reader/writer: every fixture opens and round-trips byte-exactly in meaning;
// the facts `shimmy show` reports match ../shared/README.md; split models open as one.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "gguf/reader.h"
#include "gguf/summary.h"
#include "gguf/writer.h"
#include "support/paths.h"

using namespace shimmy;
using namespace shimmy::gguf;

namespace {

std::vector<std::string> all_fixtures() {
  auto m = test::list_files(test::shared_dir() + "/models", ".gguf");
  auto v = test::list_files(test::shared_dir() + "/vocab", ".gguf");
  m.insert(m.end(), v.begin(), v.end());
  return m;
}

void expect_same(const File& a, const File& b) {
  ASSERT_EQ(a.metadata().size(), b.metadata().size());
  for (size_t k = 0; k < a.metadata().size(); ++k) {
    EXPECT_EQ(a.metadata()[k].key, b.metadata()[k].key);
    EXPECT_TRUE(a.metadata()[k].value == b.metadata()[k].value) << a.metadata()[k].key;
  }
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t k = 0; k < a.tensors().size(); ++k) {
    const auto& x = a.tensors()[k];
    const auto* y = b.find_tensor(x.name);
    ASSERT_NE(y, nullptr) << x.name;
    EXPECT_EQ(x.type, y->type);
    EXPECT_EQ(x.shape, y->shape);
    ASSERT_EQ(x.n_bytes, y->n_bytes);
    EXPECT_EQ(0, std::memcmp(x.data, y->data, x.n_bytes)) << x.name;
  }
}

}  // namespace

TEST(GgufReader, EveryFixtureRoundTrips) {
  auto files = all_fixtures();
  ASSERT_GE(files.size(), 29u);
  for (const auto& p : files) {
    SCOPED_TRACE(p);
    auto f = File::open(p);
    ASSERT_TRUE(f.ok()) << f.error().message;
    Writer w;
    w.copy_from(*f);
    std::vector<uint8_t> bytes = w.to_bytes();
    auto g = File::parse(bytes.data(), bytes.size(), "roundtrip");
    ASSERT_TRUE(g.ok()) << g.error().message;
    expect_same(*f, *g);
    // Writing the re-read file again gives the same bytes.
    Writer w2;
    w2.copy_from(*g);
    EXPECT_EQ(bytes, w2.to_bytes());
  }
}

TEST(GgufReader, FactsMatchTheFixtureNotes) {
  auto sf = File::open(test::model_path("stories260K.gguf"));
  ASSERT_TRUE(sf.ok());
  auto s = summarize(*sf);
  EXPECT_EQ(s.architecture, "llama");
  EXPECT_EQ(s.block_count, 5u);
  EXPECT_EQ(s.embedding_length, 64u);
  EXPECT_EQ(s.vocab_size, 512u);
  EXPECT_EQ(s.tokenizer_model, "llama");
  EXPECT_EQ(s.file_type_name, "F32 (guessed)");

  auto tf = File::open(test::model_path("t-llama-Q4_K_M.gguf"));
  ASSERT_TRUE(tf.ok());
  auto t = summarize(*tf);
  EXPECT_EQ(t.architecture, "llama");
  EXPECT_EQ(t.embedding_length, 256u);
  EXPECT_EQ(t.block_count, 2u);
  EXPECT_EQ(t.head_count, 4u);
  EXPECT_EQ(t.head_count_kv, 2u);
  EXPECT_EQ(t.feed_forward_length, 512u);
  EXPECT_EQ(t.vocab_size, 32000u);
  EXPECT_EQ(t.file_type_name, "Q4_K_M");
  EXPECT_TRUE(t.types.count("Q4_K"));
  EXPECT_TRUE(t.types.count("Q6_K"));

  auto qf = File::open(test::model_path("t-qwen2-Q6_K.gguf"));
  auto q = summarize(*qf);
  EXPECT_EQ(q.architecture, "qwen2");
  EXPECT_DOUBLE_EQ(*q.rope_freq_base, 1e6);
  EXPECT_EQ(q.vocab_size, 50257u);
  EXPECT_EQ(q.tokenizer_model, "gpt2");
  EXPECT_EQ(qf->find_tensor("output.weight"), nullptr);
  EXPECT_NE(qf->find_tensor("blk.0.attn_q.bias"), nullptr);
}

TEST(GgufReader, SplitModelOpensAsOneInAnyOrder) {
  auto src = File::open(test::model_path("stories260K.gguf"));
  ASSERT_TRUE(src.ok());
  std::string dir = test::make_temp_dir("split");
  const int n = 3;
  const auto& ts = src->tensors();
  for (int k = 0; k < n; ++k) {
    Writer w;
    if (k == 0) {
      for (const auto& e : src->metadata()) w.set(e.key, e.value);
    }
    w.set("split.no", Value::integer(ValueType::U16, k));
    w.set("split.count", Value::integer(ValueType::U16, n));
    w.set("split.tensors.count", Value::integer(ValueType::I32, static_cast<int64_t>(ts.size())));
    for (size_t t = k; t < ts.size(); t += n) {
      ASSERT_TRUE(
          w.add_tensor_view(ts[t].name, ts[t].type, ts[t].shape, ts[t].data, ts[t].n_bytes).ok());
    }
    ASSERT_TRUE(w.write(split_path(dir + "/m", k + 1, n)).ok());
  }
  for (const std::string& first : {split_path(dir + "/m", 2, n), split_path(dir + "/m", 1, n)}) {
    auto f = File::open(first);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->shard_count(), 3u);
    EXPECT_EQ(f->tensors().size(), ts.size());
    EXPECT_EQ(f->get_string("general.architecture"), "llama");
    for (const auto& t : ts) {
      const auto* u = f->find_tensor(t.name);
      ASSERT_NE(u, nullptr);
      EXPECT_EQ(0, std::memcmp(t.data, u->data, t.n_bytes));
    }
  }
  auto reordered = File::open_shards(
      {split_path(dir + "/m", 3, n), split_path(dir + "/m", 1, n), split_path(dir + "/m", 2, n)});
  ASSERT_TRUE(reordered.ok()) << reordered.error().message;
  EXPECT_EQ(reordered->path(), split_path(dir + "/m", 1, n));
  // A missing shard is an error that names it.
  std::filesystem::remove(split_path(dir + "/m", 3, n));
  auto missing = File::open(split_path(dir + "/m", 1, n));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("00003-of-00003"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(GgufReader, SplitNames) {
  auto s = parse_split_name("/a/b/Model-Q4-00002-of-00010.gguf");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->prefix, "/a/b/Model-Q4");
  EXPECT_EQ(s->no, 2);
  EXPECT_EQ(s->count, 10);
  EXPECT_FALSE(parse_split_name("model.gguf").has_value());
  EXPECT_FALSE(parse_split_name("m-00003-of-00002.gguf").has_value());
}

TEST(GgufShow, CliPrintsFactsForEveryFixture) {
  for (const auto& p : all_fixtures()) {
    auto r = test::run_process({test::shimmy_bin(), "show", "--json", p});
    ASSERT_EQ(r.exit_code, 0) << p << "\n" << r.err;
    EXPECT_NE(r.out.find("\"vocab_size\""), std::string::npos);
  }
  auto r = test::run_process({test::shimmy_bin(), "show", test::model_path("t-llama-Q8_0.gguf")});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("heads             4 (KV heads 2)"), std::string::npos) << r.out;
}
