// Name resolution rules (store/store.h): path, exact, ":latest", stem, unique prefix.
#include <gtest/gtest.h>

#include "store/store.h"
#include "store_test_util.h"

namespace shimmy::store {
namespace {

using shimmy::testing::TempTree;

ModelEntry entry(const std::string& name, const std::string& stem, Source src = Source::Path) {
  ModelEntry e;
  e.name = name;
  e.stem = stem;
  e.path = "/models/" + name;
  e.shards = {e.path};
  e.source = src;
  return e;
}

std::vector<ModelEntry> catalog() {
  return {entry("tiny", "tiny"),
          entry("llama3:latest", "", Source::Ollama),
          entry("llama3:8b", "", Source::Ollama),
          entry("qwen2:0.5b", "", Source::Ollama),
          entry("TheOrg/Tiny-GGUF:tiny-Q8_0", "tiny-Q8_0", Source::HuggingFace),
          entry("TheOrg/Tiny-GGUF:tiny-Q4_0", "tiny-Q4_0", Source::HuggingFace)};
}

TEST(StoreResolve, ExactName) {
  auto r = resolve("llama3:8b", catalog(), {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "llama3:8b");
}

TEST(StoreResolve, LatestAddedAndRemoved) {
  auto r = resolve("llama3", catalog(), {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "llama3:latest");
  auto r2 = resolve("tiny:latest", catalog(), {});
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_EQ(r2->name, "tiny");
}

TEST(StoreResolve, FileStemWithOrWithoutExtension) {
  auto r = resolve("tiny-Q8_0", catalog(), {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "TheOrg/Tiny-GGUF:tiny-Q8_0");
  auto r2 = resolve("tiny-Q4_0.gguf", catalog(), {});
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_EQ(r2->name, "TheOrg/Tiny-GGUF:tiny-Q4_0");
}

TEST(StoreResolve, UniquePrefixCaseInsensitive) {
  auto r = resolve("qwen", catalog(), {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "qwen2:0.5b");
  auto r2 = resolve("theorg/tiny-gguf:tiny-q8", catalog(), {});
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_EQ(r2->name, "TheOrg/Tiny-GGUF:tiny-Q8_0");
}

TEST(StoreResolve, HuggingFaceRepoAndQuantTag) {
  auto models = catalog();
  models.push_back(entry("bart/Llama-3.2-1B-GGUF:Llama-3.2-1B-Instruct-Q4_K_M",
                         "Llama-3.2-1B-Instruct-Q4_K_M", Source::HuggingFace));
  models.push_back(entry("bart/Llama-3.2-1B-GGUF:Llama-3.2-1B-Instruct-Q4_K_S",
                         "Llama-3.2-1B-Instruct-Q4_K_S", Source::HuggingFace));
  for (const char* q : {"bart/Llama-3.2-1B-GGUF:Q4_K_M", "hf.co/bart/Llama-3.2-1B-GGUF:q4_k_m",
                        "hf.co/bart/Llama-3.2-1B-GGUF:Llama-3.2-1B-Instruct-Q4_K_M"}) {
    auto r = resolve(q, models, {});
    ASSERT_TRUE(r) << q << ": " << r.error().message;
    EXPECT_EQ(r->name, "bart/Llama-3.2-1B-GGUF:Llama-3.2-1B-Instruct-Q4_K_M") << q;
  }
  // "Q4_K" is not a whole token of either file; it falls through to prefix matching
  EXPECT_FALSE(resolve("bart/Llama-3.2-1B-GGUF:Q4_K", models, {}));
}

TEST(StoreResolve, AmbiguousListsCandidates) {
  auto r = resolve("TheOrg/Tiny", catalog(), {});
  ASSERT_FALSE(r);
  const auto& msg = r.error().message;
  EXPECT_NE(msg.find("ambiguous"), std::string::npos) << msg;
  EXPECT_NE(msg.find("TheOrg/Tiny-GGUF:tiny-Q8_0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("TheOrg/Tiny-GGUF:tiny-Q4_0"), std::string::npos) << msg;
}

TEST(StoreResolve, NotFoundListsWhereItLooked) {
  auto r = resolve("mistral", catalog(), {"dir: /a/models", "ollama: /b/.ollama/models"});
  ASSERT_FALSE(r);
  const auto& msg = r.error().message;
  EXPECT_NE(msg.find("'mistral' not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/a/models"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/b/.ollama/models"), std::string::npos) << msg;
  EXPECT_FALSE(resolve("", catalog(), {}));
}

TEST(StoreResolve, ExplicitPathIsValidated) {
  TempTree t;
  auto good = t.gguf("x/my-model.gguf", 40);
  auto bad = t.file("x/bad.gguf", "nope");
  auto r = resolve(good.string(), {}, {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "my-model");
  EXPECT_EQ(r->size_bytes, 40u);
  auto rb = resolve(bad.string(), {}, {});
  ASSERT_FALSE(rb);
  EXPECT_NE(rb.error().message.find("GGUF"), std::string::npos) << rb.error().message;
}

TEST(StoreResolve, ExplicitPathOfSplitModel) {
  TempTree t;
  auto first = t.gguf("s/m-00001-of-00002.gguf", 10);
  auto second = t.gguf("s/m-00002-of-00002.gguf", 20);
  auto r = resolve(first.string(), {}, {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "m");
  EXPECT_EQ(r->size_bytes, 30u);
  EXPECT_EQ(r->shards.size(), 2u);
  auto r2 = resolve(second.string(), {}, {});
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("first shard"), std::string::npos) << r2.error().message;
  std::filesystem::remove(second);
  EXPECT_FALSE(resolve(first.string(), {}, {}));
}

TEST(StoreResolve, CatalogCachesAndResolves) {
  TempTree t;
  t.gguf("cwd/models/alpha.gguf");
  Catalog cat(t.config(), std::chrono::milliseconds(60000));
  ASSERT_EQ(cat.models().size(), 1u);
  t.gguf("cwd/models/beta.gguf");
  EXPECT_EQ(cat.models().size(), 1u);  // cached
  auto r = cat.resolve("alpha");
  ASSERT_TRUE(r) << r.error().message;
  Catalog fresh(t.config(), std::chrono::milliseconds(0));
  EXPECT_EQ(fresh.models().size(), 2u);
}

}  // namespace
}  // namespace shimmy::store
