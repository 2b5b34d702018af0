// shimmy-gen-model: the files it writes open with our reader, have the tensor names,
// shapes and types of the real models under llama.cpp's mix rules, carry the vocabulary
// they were given, summarize (shimmy show) to the shape's facts, and hold finite random
// values that depend only on the seed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/quant/kernels.h"
#include "gguf/reader.h"
#include "gguf/summary.h"

namespace fs = std::filesystem;
using shimmy::gguf::File;
using shimmy::gguf::TensorType;

namespace {

#ifdef SHIMMY_GEN_MODEL_BIN
const char* kGen = SHIMMY_GEN_MODEL_BIN;
#else
const char* kGen = nullptr;
#endif

class GenModel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kGen) GTEST_SKIP() << "shimmy-gen-model not built (SHIMMY_BENCH=OFF)";
    dir_ = fs::temp_directory_path() /
           ("shimmy-gen-model-test-" +
            std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Runs the generator; returns the output path ("" on a non-zero exit).
  std::string gen(const std::string& args, const std::string& file) {
    const std::string out = (dir_ / file).string();
    const std::string cmd =
        std::string(kGen) + " " + args + " --out " + out + " > " + out + ".log 2>&1";
    return std::system(cmd.c_str()) == 0 ? out : "";
  }
  fs::path dir_;
};

std::string shared_vocab(const std::string& name) {
  return std::string(SHIMMY_SHARED_DIR) + "/vocab/" + name;
}

// Expected type of a tiny-shape tensor (2 layers) under a mix, from llama.cpp's rules.
TensorType tiny_expected(const std::string& mix, const std::string& name) {
  if (name.find("norm") != std::string::npos) return TensorType::F32;
  if (mix == "F16") return TensorType::F16;
  if (mix == "Q8_0") return TensorType::Q8_0;
  if (name == "output.weight") return TensorType::Q6_K;
  if (mix == "Q4_0") return TensorType::Q4_0;
  // Q4_K_M: use_more_bits(i, 2) holds for layer 1 only.
  if (name == "blk.1.attn_v.weight" || name == "blk.1.ffn_down.weight") return TensorType::Q6_K;
  return TensorType::Q4_K;
}

// Mean and standard deviation of the dequantized first `rows` rows of a tensor.
std::pair<double, double> stats(const shimmy::gguf::TensorInfo& t, uint64_t rows) {
  const uint64_t n = t.shape[0];
  const uint64_t rb = t.n_bytes / t.rows();
  std::vector<float> x(n);
  double s = 0, s2 = 0;
  for (uint64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(
        shimmy::quant::dequantize_row(t.type, t.data + r * rb, x.data(), static_cast<int64_t>(n)));
    for (float v : x) {
      EXPECT_TRUE(std::isfinite(v)) << t.name;
      s += v;
      s2 += double(v) * v;
    }
  }
  const double m = s / double(rows * n);
  return {m, std::sqrt(s2 / double(rows * n) - m * m)};
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_F(GenModel, TinyShapeInEveryMix) {
  auto vocab = File::open(shared_vocab("ggml-vocab-llama-spm.gguf"));
  ASSERT_TRUE(vocab) << vocab.error().message;
  const std::map<std::string, uint64_t> file_type = {
      {"F16", 1}, {"Q8_0", 7}, {"Q4_0", 2}, {"Q4_K_M", 15}};

  for (const auto& [mix, ftype] : file_type) {
    SCOPED_TRACE(mix);
    const std::string path = gen("--shape tiny --type " + mix + " --seed 7", "tiny-" + mix);
    ASSERT_FALSE(path.empty()) << slurp(dir_.string() + "/tiny-" + mix + ".log");
    auto f = File::open(path);
    ASSERT_TRUE(f) << f.error().message;

    // Names, shapes (ne0 first) and types.
    std::map<std::string, std::vector<uint64_t>> want = {{"token_embd.weight", {256, 32000}},
                                                         {"output_norm.weight", {256}},
                                                         {"output.weight", {256, 32000}}};
    for (int l = 0; l < 2; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      want[b + "attn_norm.weight"] = {256};
      want[b + "attn_q.weight"] = {256, 256};
      want[b + "attn_k.weight"] = {256, 128};  // 2 KV heads × 64
      want[b + "attn_v.weight"] = {256, 128};
      want[b + "attn_output.weight"] = {256, 256};
      want[b + "ffn_norm.weight"] = {256};
      want[b + "ffn_gate.weight"] = {256, 768};
      want[b + "ffn_up.weight"] = {256, 768};
      want[b + "ffn_down.weight"] = {768, 256};
    }
    EXPECT_EQ(f->tensors().size(), want.size());
    for (const auto& [name, shape] : want) {
      const auto* t = f->find_tensor(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(t->shape, shape) << name;
      EXPECT_EQ(t->type, tiny_expected(mix, name)) << name;
    }

    // Every tokenizer.* key copied unchanged, and nothing else from the vocab file.
    size_t n_tok_keys = 0;
    for (const auto& kv : vocab->metadata()) {
      if (kv.key.rfind("tokenizer.", 0) != 0) continue;
      ++n_tok_keys;
      const auto* v = f->find(kv.key);
      ASSERT_NE(v, nullptr) << kv.key;
      EXPECT_TRUE(*v == kv.value) << kv.key;
    }
    EXPECT_GE(n_tok_keys, 5u);
    EXPECT_EQ(f->get_string("general.name").value_or(""), "tiny llama (random weights)");
    EXPECT_EQ(f->get_uint("general.quantization_version").has_value(), mix != "F16");

    // The facts `shimmy show` prints.
    const auto s = shimmy::gguf::summarize(*f);
    EXPECT_EQ(s.architecture, "llama");
    EXPECT_EQ(s.file_type, ftype);
    EXPECT_EQ(s.file_type_name, mix);
    EXPECT_EQ(s.block_count, 2u);
    EXPECT_EQ(s.embedding_length, 256u);
    EXPECT_EQ(s.head_count, 4u);
    EXPECT_EQ(s.head_count_kv, 2u);
    EXPECT_EQ(s.feed_forward_length, 768u);
    EXPECT_EQ(s.context_length, 512u);
    EXPECT_EQ(s.rope_dimension_count, 64u);
    EXPECT_NEAR(s.rope_freq_base.value_or(0), 10000.0, 1e-3);
    EXPECT_NEAR(s.rms_epsilon.value_or(0), 1e-5, 1e-9);
    EXPECT_EQ(s.vocab_size, 32000u);
    EXPECT_EQ(s.tokenizer_model, "llama");
    EXPECT_EQ(s.bos_id, 1);

    // Values: embeddings std 1/sqrt(256), matrices 0.02, norms near 1 (quantization noise
    // allowed for).
    auto [em, es] = stats(*f->find_tensor("token_embd.weight"), 64);
    EXPECT_NEAR(em, 0.0, 0.005);
    EXPECT_NEAR(es, 0.0625, 0.0625 * 0.15);
    auto [qm, qs] = stats(*f->find_tensor("blk.0.ffn_down.weight"), 64);
    EXPECT_NEAR(qm, 0.0, 0.002);
    EXPECT_NEAR(qs, 0.02, 0.02 * 0.15);
    auto [nm, ns] = stats(*f->find_tensor("blk.1.attn_norm.weight"), 1);
    EXPECT_NEAR(nm, 1.0, 0.01);
    EXPECT_LT(ns, 0.05);
  }
}

TEST_F(GenModel, SameSeedSameBytesWhateverTheThreads) {
  const auto a = gen("--shape tiny --type Q4_0 --seed 3 --threads 1", "a");
  const auto b = gen("--shape tiny --type Q4_0 --seed 3 --threads 2", "b");
  const auto c = gen("--shape tiny --type Q4_0 --seed 4", "c");
  ASSERT_FALSE(a.empty() || b.empty() || c.empty());
  const std::string ba = slurp(a);
  EXPECT_EQ(ba, slurp(b));
  EXPECT_NE(ba, slurp(c));
}

TEST_F(GenModel, LayersOverrideAndShowJson) {
  const auto path = gen("--shape tiny --type Q4_K_M --layers 3", "three");
  ASSERT_FALSE(path.empty());
  auto f = File::open(path);
  ASSERT_TRUE(f);
  EXPECT_NE(f->find_tensor("blk.2.ffn_down.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.3.ffn_down.weight"), nullptr);

  const std::string json_path = path + ".json";
  const std::string cmd = std::string(SHIMMY_BIN) + " show --json " + path + " > " + json_path;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto j = nlohmann::json::parse(slurp(json_path), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["block_count"], 3);
  EXPECT_EQ(j["head_count"], 4);
  EXPECT_EQ(j["head_count_kv"], 2);
  EXPECT_EQ(j["file_type"], "Q4_K_M");
}

// Qwen2.5-0.5B, cut to one layer: q/k/v biases, tied embeddings, and the 32-block
// fallbacks for rows of 896 (not a multiple of 256).
TEST_F(GenModel, QwenShapeRulesWithOneLayer) {
  const auto path = gen("--shape qwen2.5-0.5b --type Q4_K_M --layers 1", "qwen");
  ASSERT_FALSE(path.empty()) << slurp(dir_.string() + "/qwen.log");
  auto f = File::open(path);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
  auto type_of = [&](const std::string& n) {
    const auto* t = f->find_tensor(n);
    return t ? t->type : TensorType::I64;
  };
  auto shape_of = [&](const std::string& n) {
    const auto* t = f->find_tensor(n);
    return t ? t->shape : std::vector<uint64_t>{};
  };
  EXPECT_EQ(type_of("token_embd.weight"), TensorType::Q8_0);  // tied: the output rule
  EXPECT_EQ(shape_of("token_embd.weight"), (std::vector<uint64_t>{896, 151936}));
  EXPECT_EQ(type_of("blk.0.attn_q.weight"), TensorType::Q5_0);  // Q4_K → Q5_0
  EXPECT_EQ(type_of("blk.0.attn_v.weight"), TensorType::Q8_0);  // Q6_K → Q8_0
  EXPECT_EQ(shape_of("blk.0.attn_k.weight"), (std::vector<uint64_t>{896, 128}));
  EXPECT_EQ(type_of("blk.0.ffn_down.weight"), TensorType::Q6_K);  // 4864 = 19 × 256
  EXPECT_EQ(shape_of("blk.0.ffn_down.weight"), (std::vector<uint64_t>{4864, 896}));
  EXPECT_EQ(type_of("blk.0.attn_q.bias"), TensorType::F32);
  EXPECT_EQ(shape_of("blk.0.attn_k.bias"), (std::vector<uint64_t>{128}));
  EXPECT_EQ(type_of("blk.0.attn_v.bias"), TensorType::F32);

  const auto s = shimmy::gguf::summarize(*f);
  EXPECT_EQ(s.architecture, "qwen2");
  EXPECT_EQ(s.embedding_length, 896u);
  EXPECT_EQ(s.head_count, 14u);
  EXPECT_EQ(s.head_count_kv, 2u);
  EXPECT_EQ(s.feed_forward_length, 4864u);
  EXPECT_EQ(s.context_length, 32768u);
  EXPECT_NEAR(s.rope_freq_base.value_or(0), 1e6, 1.0);
  EXPECT_NEAR(s.rms_epsilon.value_or(0), 1e-6, 1e-10);
  EXPECT_EQ(s.vocab_size, 151936u);
  EXPECT_EQ(s.tokenizer_pre, "qwen2");
}

TEST_F(GenModel, PadsAShortVocabulary) {
  // The tiny vocab file (32000 tokens) given to the Qwen shape: padded to 151,936 rows.
  const auto path = gen("--shape qwen2.5-0.5b --type F16 --layers 1 --vocab-from " +
                            shared_vocab("ggml-vocab-llama-spm.gguf"),
                        "padded");
  ASSERT_FALSE(path.empty());
  auto f = File::open(path);
  ASSERT_TRUE(f);
  const auto* tokens = f->get_strings("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->size(), 151936u);
  EXPECT_EQ((*tokens)[32000], "[PAD32000]");
  const auto* types = f->find("tokenizer.ggml.token_type");
  ASSERT_NE(types, nullptr);
  ASSERT_EQ(types->ints.size(), 151936u);
  EXPECT_EQ(types->ints.back(), 5);  // UNUSED, as llama.cpp's converter pads
  EXPECT_EQ(f->find("tokenizer.ggml.scores")->floats.size(), 151936u);
  EXPECT_EQ(f->find_tensor("token_embd.weight")->shape, (std::vector<uint64_t>{896, 151936}));
}

TEST_F(GenModel, RejectsUnknownShapeAndType) {
  EXPECT_TRUE(gen("--shape gpt5 --type F16", "x").empty());
  EXPECT_TRUE(gen("--shape tiny --type Q9_9", "y").empty());
  EXPECT_FALSE(fs::exists(dir_ / "x"));
}
