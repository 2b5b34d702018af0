// The tokenizers against the fixtures in ../shared:
//  - vocab/NAME.gguf.inp/.out: every case exactly, no BOS/EOS, special tokens not parsed;
//  - reference/*.json: each prompt's "tokens" with BOS/EOS as the metadata says;
//  - decode(encode(x)) == x for the suites' strings (all but WordPiece are lossless).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

using shimmy::tokenizer::Tokenizer;

namespace {

std::string shared_path(const std::string& rel) {
  return std::string(SHIMMY_SHARED_DIR) + "/" + rel;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Loading a vocabulary takes a while (Llama 3 has 280k merges): load each once.
const Tokenizer* load(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(path);
  if (it != cache.end()) return it->second.get();
  auto file = shimmy::gguf::File::open(path);
  if (!file) {
    ADD_FAILURE() << file.error().message;
    return nullptr;
  }
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok) {
    ADD_FAILURE() << tok.error().message;
    return nullptr;
  }
  return (cache[path] = std::move(tok.value())).get();
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
    out.push_back(s.substr(pos, hit - pos));
  }
  out.push_back(s.substr(pos));
  return out;
}

std::vector<int32_t> parse_ids(const std::string& line) {
  std::vector<int32_t> ids;
  std::istringstream in(line);
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

struct Suite {
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> expected;
};

Suite read_suite(const std::string& name) {
  std::string base = shared_path("vocab/ggml-vocab-" + name + ".gguf");
  Suite s;
  s.texts = split(read_file(base + ".inp"), "\n__ggml_vocab_test__\n");
  s.texts.pop_back();  // the file ends with a separator
  auto lines = split(read_file(base + ".out"), "\n");
  lines.pop_back();
  for (const auto& l : lines) s.expected.push_back(parse_ids(l));
  return s;
}

const std::vector<std::string> kSuites = {
    "llama-spm", "phi-3",  "gpt-2", "llama-bpe",    "qwen2",          "falcon",
    "starcoder", "refact", "mpt",   "deepseek-llm", "deepseek-coder", "bert-bge"};

class TokenizerVocabSuite : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVocabSuite, MatchesExpectedIds) {
  const std::string name = GetParam();
  const Tokenizer* tok = load(shared_path("vocab/ggml-vocab-" + name + ".gguf"));
  ASSERT_NE(tok, nullptr);
  Suite s = read_suite(name);
  ASSERT_EQ(s.texts.size(), s.expected.size());
  ASSERT_GE(s.texts.size(), 40u);
  for (size_t i = 0; i < s.texts.size(); ++i) {
    EXPECT_EQ(tok->encode(s.texts[i], false, false), s.expected[i])
        << name << " case " << i << ": '" << s.texts[i] << "'";
  }
}

TEST_P(TokenizerVocabSuite, DecodeRoundTrips) {
  const std::string name = GetParam();
  if (name == "bert-bge") GTEST_SKIP() << "WordPiece lower-cases and strips accents: lossy";
  const Tokenizer* tok = load(shared_path("vocab/ggml-vocab-" + name + ".gguf"));
  ASSERT_NE(tok, nullptr);
  for (const std::string& text : read_suite(name).texts) {
    EXPECT_EQ(tok->decode(tok->encode(text, false, false)), text) << name;
    // With BOS (and EOS) added the text survives too.
    EXPECT_EQ(tok->decode(tok->encode(text, true, false), {.skip_special = true}), text) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, TokenizerVocabSuite, ::testing::ValuesIn(kSuites),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

TEST(TokenizerReference, PromptTokensMatchWithAddSpecial) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(shared_path("reference"))) {
    std::string ref = entry.path().string();
    if (entry.path().extension() != ".json") continue;
    auto j = nlohmann::json::parse(read_file(ref));
    if (!j.is_object() || !j.contains("cases")) continue;  // prompts.json, thresholds.json
    ++files;
    const std::string m = j["model"].get<std::string>();
    const Tokenizer* tok = load(shared_path("models/" + m));
    ASSERT_NE(tok, nullptr) << m;
    ASSERT_EQ(tok->n_vocab(), j["n_vocab"].get<int>()) << m;
    for (const auto& c : j["cases"]) {
      std::string prompt = c["prompt"];
      auto expected = c["tokens"].get<std::vector<int32_t>>();
      auto got = tok->encode(prompt, true, false);
      // Prompts longer than the context were cut: compare the reference's prefix.
      ASSERT_GE(got.size(), expected.size()) << m;
      got.resize(expected.size());
      EXPECT_EQ(got, expected) << m << ": " << prompt.substr(0, 60);
    }
  }
  EXPECT_GE(files, 10);
}

TEST(TokenizerReference, SpecialIdsFromMetadata) {
  const Tokenizer* spm = load(shared_path("vocab/ggml-vocab-llama-spm.gguf"));
  ASSERT_NE(spm, nullptr);
  EXPECT_EQ(spm->bos(), 1);
  EXPECT_EQ(spm->eos(), 2);
  EXPECT_EQ(spm->unk(), 0);
  EXPECT_TRUE(spm->add_bos());
  EXPECT_FALSE(spm->add_eos());
  EXPECT_TRUE(spm->is_eog(2));
  const Tokenizer* l3 = load(shared_path("vocab/ggml-vocab-llama-bpe.gguf"));
  ASSERT_NE(l3, nullptr);
  EXPECT_EQ(l3->pre(), "llama3");
  EXPECT_EQ(l3->bos(), 128000);
  EXPECT_EQ(l3->eot(), 128009);  // <|eot_id|>, found by its text
  EXPECT_TRUE(l3->is_eog(128009));
  EXPECT_TRUE(l3->is_eog(128008));  // <|eom_id|>
  EXPECT_FALSE(l3->is_eog(128006));
  const Tokenizer* qwen = load(shared_path("vocab/ggml-vocab-qwen2.gguf"));
  ASSERT_NE(qwen, nullptr);
  EXPECT_EQ(qwen->eot(), 151645);  // <|im_end|>
  EXPECT_FALSE(qwen->add_bos());
  const Tokenizer* ds = load(shared_path("vocab/ggml-vocab-deepseek-llm.gguf"));
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->eot(), 100001);  // <｜end▁of▁sentence｜>
}

}  // namespace
