// Tokenizer behaviour beyond the fixture suites: special tokens, BOS/EOS rules and
// overrides, invalid UTF-8, long runs of one character, streaming decode, threads, and the
// tokenize/detokenize CLI.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

using shimmy::tokenizer::DecodeOptions;
using shimmy::tokenizer::EncodeOptions;
using shimmy::tokenizer::StreamDecoder;
using shimmy::tokenizer::Tokenizer;
namespace unicode = shimmy::tokenizer::unicode;

namespace {

std::string vocab(const std::string& name) {
  return std::string(SHIMMY_SHARED_DIR) + "/vocab/ggml-vocab-" + name + ".gguf";
}

std::unique_ptr<Tokenizer> open_vocab(const std::string& name) {
  auto file = shimmy::gguf::File::open(vocab(name));
  if (!file) return nullptr;
  auto tok = Tokenizer::from_gguf(*file);
  return tok ? std::move(tok.value()) : nullptr;
}

// The vocabularies are loaded once for this file.
struct Vocabs {
  std::unique_ptr<Tokenizer> spm = open_vocab("llama-spm");
  std::unique_ptr<Tokenizer> llama3 = open_vocab("llama-bpe");
  std::unique_ptr<Tokenizer> qwen2 = open_vocab("qwen2");
  std::unique_ptr<Tokenizer> bert = open_vocab("bert-bge");
  std::unique_ptr<Tokenizer> mpt = open_vocab("mpt");
};
const Vocabs& vocabs() {
  static Vocabs v;
  return v;
}

TEST(TokenizerSpecial, ParseSpecialTurnsControlTextIntoIds) {
  const Tokenizer& q = *vocabs().qwen2;
  std::string text = "<|im_start|>user\nhi<|im_end|>";
  auto parsed = q.encode(text, false, true);
  ASSERT_GE(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), 151644);
  EXPECT_EQ(parsed.back(), 151645);
  auto plain = q.encode(text, false, false);
  for (int32_t id : plain) EXPECT_FALSE(q.is_control(id)) << id;
  // Either way the text comes back.
  EXPECT_EQ(q.decode(parsed), text);
  EXPECT_EQ(q.decode(plain), text);
}

TEST(TokenizerSpecial, SentencePieceSpacePrefixAfterSpecial) {
  const Tokenizer& t = *vocabs().spm;
  auto ids = t.encode("<s>Hello", false, true);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], *t.find_token("\xE2\x96\x81Hello"));
  EXPECT_EQ(t.decode(ids), "<s>Hello");
  EXPECT_EQ(t.decode(ids, {.skip_special = true}), "Hello");
  // Without parsing, "<s>" is plain text.
  EXPECT_GT(t.encode("<s>Hello", false, false).size(), 2u);
}

TEST(TokenizerSpecial, UserDefinedTokensAlwaysMatch) {
  // MPT lists runs of spaces as user-defined tokens: cut out even without parse_special.
  const Tokenizer& t = *vocabs().mpt;
  std::string spaces(24, ' ');
  auto id = t.find_token(spaces);
  ASSERT_TRUE(id.has_value());
  auto ids = t.encode("a" + spaces + "b", false, false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), *id), ids.end());
}

TEST(TokenizerBosEos, MetadataAndOverrides) {
  const Tokenizer& t = *vocabs().llama3;
  EXPECT_EQ(t.encode("hi", true, false).front(), 128000);
  EXPECT_NE(t.encode("hi", false, false).front(), 128000);
  EncodeOptions no_bos;
  no_bos.add_special = true;
  no_bos.add_bos = false;
  EXPECT_NE(t.encode("hi", no_bos).front(), 128000);
  EncodeOptions eos;
  eos.add_eos = true;
  EXPECT_EQ(t.encode("hi", eos).back(), t.eos());
  EXPECT_TRUE(t.encode("", false, false).empty());
  EXPECT_EQ(t.encode("", true, false), std::vector<int32_t>{128000});
  // WordPiece wraps in CLS ... SEP.
  const Tokenizer& b = *vocabs().bert;
  auto ids = b.encode("hello", true, false);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 101);
  EXPECT_EQ(ids.back(), 102);
}

TEST(TokenizerRobustness, InvalidUtf8NeverCrashes) {
  const std::string bad[] = {"\xFF\xFE",           "a\xC3",    "\xE6\x88",
                             "\xED\xA0\x80",       "\xC0\x80", std::string("x\0y", 3),
                             "\xF4\x90\x80\x80 ok"};
  for (const auto* t : {vocabs().spm.get(), vocabs().llama3.get(), vocabs().qwen2.get(),
                        vocabs().bert.get(), vocabs().mpt.get()}) {
    for (const auto& s : bad) {
      auto ids = t->encode(s, true, true);
      for (int32_t id : ids) EXPECT_TRUE(t->valid(id));
    }
  }
  // SentencePiece keeps invalid bytes (byte fallback): lossless even here.
  const Tokenizer& spm = *vocabs().spm;
  for (const auto& s : bad) EXPECT_EQ(spm.decode(spm.encode(s, false, false)), s);
  // BPE replaces them with U+FFFD.
  EXPECT_EQ(vocabs().llama3->decode(vocabs().llama3->encode("a\xFF", false, false)),
            "a\xEF\xBF\xBD");
}

TEST(TokenizerRobustness, LongRunsOfOneCharacter) {
  // Correctness only; speed is measured by bench/tokenizer_bench.cpp.
  const std::string runs[] = {std::string(100000, ' '), std::string(100000, 'a'),
                              std::string(100000, '\n'), std::string(30000, '3')};
  for (const auto* t : {vocabs().spm.get(), vocabs().llama3.get(), vocabs().qwen2.get()}) {
    for (const auto& s : runs) {
      auto ids = t->encode(s, false, false);
      EXPECT_FALSE(ids.empty());
      EXPECT_EQ(t->decode(ids), s);
    }
  }
  auto ids = vocabs().bert->encode(std::string(100000, 'a'), false, false);
  EXPECT_FALSE(ids.empty());  // a chain of pieces (the reference has no word-length cap)
}

TEST(TokenizerDecode, PiecesAndBytes) {
  const Tokenizer& spm = *vocabs().spm;
  EXPECT_EQ(spm.token_to_piece(*spm.find_token("<0x0A>")), "\n");
  EXPECT_EQ(spm.token_to_piece(*spm.find_token("\xE2\x96\x81Hello")), " Hello");
  EXPECT_EQ(spm.token_to_piece(-1), "");
  EXPECT_EQ(spm.token_to_piece(spm.n_vocab()), "");
  const Tokenizer& l3 = *vocabs().llama3;
  EXPECT_EQ(l3.token_to_piece(*l3.find_token("\xC4\xA0world")), " world");
  EXPECT_EQ(l3.token_to_piece(128000), "<|begin_of_text|>");
}

TEST(TokenizerStream, HoldsIncompleteCharacters) {
  const Tokenizer& spm = *vocabs().spm;
  // "é" = C3 A9 through byte tokens, then an emoji's four bytes one at a time.
  StreamDecoder d(spm);
  EXPECT_EQ(d.push(*spm.find_token("<0xC3>")), "");
  EXPECT_EQ(d.held_bytes(), 1u);
  EXPECT_EQ(d.push(*spm.find_token("<0xA9>")), "\xC3\xA9");
  std::string emoji = "\xF0\x9F\x98\x80";
  std::string got;
  for (char c : emoji) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", uint8_t(c));
    got += d.push(*spm.find_token(hex));
    if (got.empty()) EXPECT_GT(d.held_bytes(), 0u);
  }
  EXPECT_EQ(got, emoji);
  // Control tokens are not rendered by default.
  EXPECT_EQ(d.push(spm.eos()), "");
  // A byte that can never start a character comes out as U+FFFD; a truncated one on flush.
  EXPECT_EQ(d.push(*spm.find_token("<0xFF>")), "\xEF\xBF\xBD");
  EXPECT_EQ(d.push(*spm.find_token("<0xE6>")), "");
  EXPECT_EQ(d.push(*spm.find_token("\xE2\x96\x81Hello")), "\xEF\xBF\xBD Hello");
  EXPECT_EQ(d.push(*spm.find_token("<0xE6>")), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(d.held_bytes(), 0u);
}

TEST(TokenizerStream, OutputIsAlwaysValidUtf8) {
  const Tokenizer& l3 = *vocabs().llama3;
  std::string text = "naïve café 日本語 😀🚀 done";
  auto ids = l3.encode(text, false, false);
  StreamDecoder d(l3);
  std::string all;
  for (int32_t id : ids) {
    std::string part = d.push(id);
    EXPECT_TRUE(unicode::is_valid(part));
    all += part;
  }
  all += d.flush();
  EXPECT_EQ(all, text);
  // Random ids: whatever comes out is valid UTF-8.
  StreamDecoder r(l3);
  uint32_t x = 12345;
  for (int i = 0; i < 5000; ++i) {
    x = x * 1664525u + 1013904223u;
    EXPECT_TRUE(unicode::is_valid(r.push(int32_t(x % uint32_t(l3.n_vocab())))));
  }
  EXPECT_TRUE(unicode::is_valid(r.flush()));
}

TEST(TokenizerThreads, EncodeFromSeveralThreads) {
  const Tokenizer& l3 = *vocabs().llama3;
  std::string text = "The quick brown fox 123456 jumps, über das Faß! 你好世界\n\t  end";
  auto expected = l3.encode(text, true, true);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      int good = 0;
      for (int i = 0; i < 200; ++i) good += l3.encode(text, true, true) == expected;
      ok[size_t(t)] = good;
    });
  }
  for (auto& th : threads) th.join();
  for (int g : ok) EXPECT_EQ(g, 200);
}

TEST(TokenizerSpec, RejectsBadMetadata) {
  shimmy::tokenizer::VocabSpec s;
  s.model = "llama";
  EXPECT_FALSE(Tokenizer::from_spec(s).ok());  // no tokens
  s.tokens = {"a", "b"};
  s.scores = {1.0f};
  EXPECT_FALSE(Tokenizer::from_spec(s).ok());  // scores of the wrong length
  s.scores.clear();
  s.model = "t5x";
  auto r = Tokenizer::from_spec(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("t5x"), std::string::npos);
  // An unknown pre-tokenizer falls back to gpt-2.
  s.model = "gpt2";
  s.pre = "no-such-model";
  s.merges = {"a b"};
  auto g = Tokenizer::from_spec(s);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->pre(), "gpt-2");
}

// ---- the CLI -----------------------------------------------------------------------------

std::string run(const std::string& cmd, const std::string& input, int* status) {
  std::string tmp = testing::TempDir() + "shimmy_tok_input";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  std::fwrite(input.data(), 1, input.size(), f);
  std::fclose(f);
  FILE* p = popen((cmd + " < " + tmp).c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

TEST(TokenizerCli, TokenizeAndDetokenize) {
  const std::string bin = SHIMMY_BIN;
  int rc = 0;
  std::string text = "Hello world\n";  // the newline is part of the input
  std::string ids = run(bin + " tokenize -m " + vocab("llama-spm"), text, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(ids, "15043 3186 13\n");
  EXPECT_EQ(run(bin + " tokenize --add-special --model " + vocab("llama-spm"), text, &rc),
            "1 15043 3186 13\n");
  EXPECT_EQ(run(bin + " detokenize -m " + vocab("llama-spm"), ids, &rc), text);
  EXPECT_EQ(rc, 0);
  std::string json = run(bin + " tokenize --json -m " + vocab("llama-spm"), "Hi", &rc);
  EXPECT_NE(json.find("\"piece\""), std::string::npos) << json;
  EXPECT_EQ(run(bin + " tokenize --parse-special -m " + vocab("qwen2"), "<|im_end|>", &rc),
            "151645\n");
  // Errors: a usage error is 2, bad input 1.
  run(bin + " tokenize 2>/dev/null", "", &rc);
  EXPECT_EQ(rc, 2);
  run(bin + " tokenize -m /nonexistent.gguf 2>/dev/null", "x", &rc);
  EXPECT_EQ(rc, 1);
  run(bin + " detokenize -m " + vocab("llama-spm") + " 2>/dev/null", "12 abc", &rc);
  EXPECT_EQ(rc, 1);
  run(bin + " detokenize -m " + vocab("llama-spm") + " 2>/dev/null", "99999999", &rc);
  EXPECT_EQ(rc, 1);
}

}  // namespace
