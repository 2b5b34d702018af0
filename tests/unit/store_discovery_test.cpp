// Discovery from each source, simulated in temp dirs, plus the files it must skip.
#include <gtest/gtest.h>

#include <algorithm>

#include "store/gguf_files.h"
#include "store/store.h"
#include "store_test_util.h"

namespace shimmy::store {
namespace {

using shimmy::testing::TempTree;

const ModelEntry* find(const std::vector<ModelEntry>& v, const std::string& name) {
  for (const auto& m : v) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::string names(const std::vector<ModelEntry>& v) {
  std::string s;
  for (const auto& m : v) s += m.name + " ";
  return s;
}

const char* kHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string ollama_manifest(const std::string& hex) {
  return std::string(R"({"schemaVersion":2,"layers":[)") +
         R"({"mediaType":"application/vnd.ollama.image.template","digest":"sha256:00","size":5},)" +
         R"({"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" + hex +
         R"(","size":100}]})";
}

TEST(StoreDiscovery, PlainDirsAndModelPaths) {
  TempTree t;
  t.gguf("cwd/models/tiny.gguf", 100);
  t.gguf("cwd/models/sub/nested.gguf", 50);
  t.gguf("extra/a.gguf", 10);
  t.gguf("envdir/b.gguf", 20);
  auto cfg = t.config();
  cfg.extra_dirs = {(t / "extra").string()};
  cfg.model_paths = (t / "envdir").string() + "::" + (t / "missing").string();
  auto models = discover(cfg);
  ASSERT_EQ(models.size(), 4u) << names(models);
  // priority order: --models-dir, SHIMMY_MODEL_PATHS, ./models
  EXPECT_EQ(models[0].name, "a");
  EXPECT_EQ(models[1].name, "b");
  const auto* tiny = find(models, "tiny");
  ASSERT_TRUE(tiny);
  EXPECT_EQ(tiny->size_bytes, 100u);
  EXPECT_EQ(tiny->source, Source::Path);
  EXPECT_GT(tiny->modified_unix, 0);
  EXPECT_TRUE(find(models, "nested"));
}

TEST(StoreDiscovery, SkipsBrokenLinksNonGgufAndProjectors) {
  TempTree t;
  t.gguf("cwd/models/good.gguf");
  t.file("cwd/models/fake.gguf", "this is not a gguf file");
  t.file("cwd/models/empty.gguf", "");
  t.symlink("/nonexistent/target.gguf", "cwd/models/dangling.gguf");
  t.gguf("cwd/models/mmproj-model-f16.gguf");
  t.gguf("cwd/models/notes.txt");
  // a directory symlink loop must not hang the walk
  t.symlink("..", "cwd/models/loop/up");
  auto models = discover(t.config());
  ASSERT_EQ(models.size(), 1u) << names(models);
  EXPECT_EQ(models[0].name, "good");
}

TEST(StoreDiscovery, SplitModelListedOnceWithAllShards) {
  TempTree t;
  t.gguf("cwd/models/big-00001-of-00003.gguf", 100);
  t.file("cwd/models/big-00002-of-00003.gguf", std::string(200, 'x'));
  t.file("cwd/models/big-00003-of-00003.gguf", std::string(300, 'x'));
  // incomplete split: shard 2 missing
  t.gguf("cwd/models/half-00001-of-00003.gguf");
  t.gguf("cwd/models/half-00003-of-00003.gguf");
  auto models = discover(t.config());
  ASSERT_EQ(models.size(), 1u) << names(models);
  EXPECT_EQ(models[0].name, "big");
  EXPECT_EQ(models[0].size_bytes, 600u);
  ASSERT_EQ(models[0].shards.size(), 3u);
  EXPECT_EQ(models[0].path, models[0].shards[0]);
  EXPECT_NE(models[0].path.find("big-00001-of-00003.gguf"), std::string::npos);
}

TEST(StoreDiscovery, ShardNameParsing) {
  auto s = parse_shard_stem("Llama-3-70B-Q4_K_M-00002-of-00005");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->base, "Llama-3-70B-Q4_K_M");
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 5);
  EXPECT_FALSE(parse_shard_stem("model-00006-of-00005"));
  EXPECT_FALSE(parse_shard_stem("model-0001-of-00005"));
  EXPECT_FALSE(parse_shard_stem("-00001-of-00002"));
  EXPECT_FALSE(parse_shard_stem("plain"));
}

TEST(StoreDiscovery, HuggingFaceSnapshotSymlinks) {
  TempTree t;
  std::string repo = "home/.cache/huggingface/hub/models--TheOrg--Tiny-GGUF";
  t.gguf(repo + "/blobs/aaa", 123);
  t.gguf(repo + "/blobs/bbb", 77);
  t.file(repo + "/refs/main", "rev2\n");
  t.symlink("../../blobs/bbb", repo + "/snapshots/rev1/tiny-Q8_0.gguf");
  t.symlink("../../blobs/aaa", repo + "/snapshots/rev2/tiny-Q8_0.gguf");
  t.symlink("../../blobs/missing", repo + "/snapshots/rev2/gone.gguf");
  t.file(repo + "/snapshots/rev2/README.md", "hi");
  t.gguf("home/.cache/huggingface/hub/models--solo/snapshots/r/solo.gguf");
  t.gguf("home/.cache/huggingface/hub/datasets--x--y/snapshots/r/data.gguf");
  auto models = discover(t.config());
  ASSERT_EQ(models.size(), 2u) << names(models);
  const auto* m = find(models, "TheOrg/Tiny-GGUF:tiny-Q8_0");
  ASSERT_TRUE(m) << names(models);
  EXPECT_EQ(m->source, Source::HuggingFace);
  EXPECT_EQ(m->size_bytes, 123u);  // refs/main's revision, through the symlink
  EXPECT_NE(m->path.find("snapshots/rev2"), std::string::npos);
  EXPECT_EQ(m->stem, "tiny-Q8_0");
  EXPECT_TRUE(find(models, "solo:solo"));
}

TEST(StoreDiscovery, HuggingFaceHomeOverrides) {
  TempTree t;
  t.gguf("hfhome/hub/models--o--r/snapshots/x/m.gguf");
  t.gguf("hubcache/models--o--r2/snapshots/x/m.gguf");
  auto cfg = t.config();
  cfg.hf_home = (t / "hfhome").string();
  EXPECT_TRUE(find(discover(cfg), "o/r:m"));
  cfg.hf_hub_cache = (t / "hubcache").string();
  auto models = discover(cfg);
  EXPECT_TRUE(find(models, "o/r2:m"));
  EXPECT_FALSE(find(models, "o/r:m"));
}

TEST(StoreDiscovery, OllamaManifestsAndBlobs) {
  TempTree t;
  std::string root = "home/.ollama/models";
  t.gguf(root + "/blobs/sha256-" + kHex, 321);
  t.file(root + "/manifests/registry.ollama.ai/library/llama3/latest", ollama_manifest(kHex));
  t.file(root + "/manifests/registry.ollama.ai/library/llama3/8b", ollama_manifest(kHex));
  auto models = discover(t.config());
  ASSERT_EQ(models.size(), 2u) << names(models);  // two tags of one blob: both listed
  ASSERT_TRUE(find(models, "llama3:8b"));
  const auto& m = *find(models, "llama3:latest");
  EXPECT_EQ(m.source, Source::Ollama);
  EXPECT_NE(m.path.find(std::string("blobs/sha256-") + kHex), std::string::npos);
  EXPECT_EQ(m.size_bytes, 321u);
  EXPECT_EQ(m.digest, kHex);
}

TEST(StoreDiscovery, OllamaNamingSchemes) {
  TempTree t;
  std::string root = "ollama";
  const char* hexes[] = {"aa", "bb", "cc"};
  for (const char* h : hexes) t.gguf(root + "/blobs/sha256-" + h);
  t.file(root + "/manifests/registry.ollama.ai/library/llama3/latest", ollama_manifest("aa"));
  t.file(root + "/manifests/registry.ollama.ai/someone/tiny/1b", ollama_manifest("bb"));
  t.file(root + "/manifests/hf.co/org/repo/Q4_K_M", ollama_manifest("cc"));
  auto cfg = t.config();
  cfg.ollama_models = (t / root).string();
  auto models = discover(cfg);
  EXPECT_TRUE(find(models, "llama3:latest")) << names(models);
  EXPECT_TRUE(find(models, "someone/tiny:1b")) << names(models);
  EXPECT_TRUE(find(models, "hf.co/org/repo:Q4_K_M")) << names(models);
}

TEST(StoreDiscovery, OllamaMalformedManifestsAreSkipped) {
  TempTree t;
  std::string root = "home/.ollama/models";
  std::string m = root + "/manifests/registry.ollama.ai/library/";
  t.gguf(root + "/blobs/sha256-aa");
  t.file(root + "/blobs/sha256-bb", "not gguf");
  t.file(m + "good/latest", ollama_manifest("aa"));
  t.file(m + "notjson/latest", "{\"layers\": [");
  t.file(m + "array/latest", "[1,2,3]");
  t.file(m + "layerswrong/latest", R"({"layers": 5})");
  t.file(m + "typewrong/latest", R"({"layers": [{"mediaType": 7, "digest": 1}]})");
  t.file(m + "digestwrong/latest",
         R"({"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": 1}]})");
  t.file(m + "traversal/latest", ollama_manifest("../../../etc/passwd"));
  t.file(m + "nomodel/latest", R"({"layers": []})");
  t.file(m + "noblob/latest", ollama_manifest("cc"));
  t.file(m + "notgguf/latest", ollama_manifest("bb"));
  auto models = discover(t.config());
  ASSERT_EQ(models.size(), 1u) << names(models);
  EXPECT_EQ(models[0].name, "good:latest");
}

TEST(StoreDiscovery, LmStudioPublisherModelFile) {
  TempTree t;
  t.gguf("home/.lmstudio/models/lmstudio-community/Qwen-GGUF/qwen-Q4_K_M.gguf", 99);
  t.gguf("home/.cache/lm-studio/models/pub/old/old.gguf");
  auto models = discover(t.config());
  ASSERT_EQ(models.size(), 2u) << names(models);
  const auto* m = find(models, "lmstudio-community/Qwen-GGUF:qwen-Q4_K_M");
  ASSERT_TRUE(m) << names(models);
  EXPECT_EQ(m->source, Source::LmStudio);
  EXPECT_EQ(m->size_bytes, 99u);
  EXPECT_TRUE(find(models, "pub/old:old"));
}

TEST(StoreDiscovery, SameNameKeepsHigherPriority) {
  TempTree t;
  t.gguf("extra/dup.gguf", 10);
  t.gguf("cwd/models/dup.gguf", 20);
  auto cfg = t.config();
  cfg.extra_dirs = {(t / "extra").string(), (t / "cwd/models").string()};
  auto models = discover(cfg);
  ASSERT_EQ(models.size(), 1u) << names(models);
  EXPECT_EQ(models[0].size_bytes, 10u);
}

TEST(StoreDiscovery, MissingRootsGiveEmptyList) {
  TempTree t;
  auto cfg = t.config();
  cfg.home = (t / "nope").string();
  cfg.model_paths = "/definitely/not/here";
  EXPECT_TRUE(discover(cfg).empty());
  auto where = search_roots(cfg).describe();
  EXPECT_GE(where.size(), 5u);
}

TEST(StoreDiscovery, FormatSize) {
  EXPECT_EQ(format_size(812), "812 B");
  EXPECT_EQ(format_size(1536), "1.50 KiB");
  EXPECT_EQ(format_size(4370000000ull), "4.07 GiB");
}

}  // namespace
}  // namespace shimmy::store
