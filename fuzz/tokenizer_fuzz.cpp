// libFuzzer target for the tokenizers: random bytes (invalid UTF-8, huge inputs) through
// encode/decode/StreamDecoder of the real fixture vocabularies, and small random
// vocabularies built from the input to stress the metadata → tables path.
//
// Input: byte 0 picks the mode and flags, the rest is the text (or the vocabulary).
// Checks: no crash, every id in range, decode output of BPE/SPM round-trips valid text,
// StreamDecoder output always valid UTF-8.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

using shimmy::tokenizer::StreamDecoder;
using shimmy::tokenizer::Tokenizer;

namespace {

std::vector<std::unique_ptr<Tokenizer>> load_all() {
  std::vector<std::unique_ptr<Tokenizer>> out;
  // Indices 1..3 are the lossless BPE vocabularies (see check()).
  for (const char* name :
       {"llama-spm", "llama-bpe", "qwen2", "deepseek-llm", "bert-bge", "mpt", "phi-3", "falcon"}) {
    auto file = shimmy::gguf::File::open(std::string(SHIMMY_SHARED_DIR) + "/vocab/ggml-vocab-" +
                                         name + ".gguf");
    if (!file) std::abort();
    auto tok = Tokenizer::from_gguf(*file);
    if (!tok) std::abort();
    out.push_back(std::move(tok.value()));
  }
  return out;
}

void check(const Tokenizer& t, std::string_view text, uint8_t flags, bool lossless) {
  bool add = flags & 1, parse = flags & 2;
  std::vector<int32_t> ids = t.encode(text, add, parse);
  for (int32_t id : ids) {
    if (!t.valid(id)) std::abort();
  }
  std::string back = t.decode(ids);
  // Valid text without special-token syntax survives BPE and SentencePiece exactly.
  // Only for BPE vocabularies with all 256 byte tokens (Falcon, MPT and StarCoder lack some
  // control bytes, which are then dropped, as the reference does).
  if (lossless && !add && !parse && shimmy::tokenizer::unicode::is_valid(text) && back != text) {
    std::abort();
  }
  StreamDecoder d(t, flags & 4);
  for (int32_t id : ids) {
    if (!shimmy::tokenizer::unicode::is_valid(d.push(id))) std::abort();
  }
  if (!shimmy::tokenizer::unicode::is_valid(d.flush())) std::abort();
}

// A vocabulary from the input: lines are tokens; "a b" lines also serve as merges.
void random_vocab(const uint8_t* data, size_t size, uint8_t flags) {
  shimmy::tokenizer::VocabSpec s;
  const char* models[] = {"llama", "gpt2", "bert"};
  s.model = models[flags % 3];
  s.pre = (flags & 8) ? "llama-bpe" : "qwen2";
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') {
      s.tokens.push_back(cur);
      if (cur.find(' ') != std::string::npos) s.merges.push_back(cur);
      cur.clear();
    } else {
      cur += char(data[i]);
    }
  }
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    s.scores.push_back(float(i % 7) - 3.0f);
    s.types.push_back(int32_t(i % 8));
  }
  s.bos = int64_t(flags) - 100;
  s.eos = int64_t(flags) * 3;
  auto t = Tokenizer::from_spec(std::move(s));
  if (!t) return;
  std::string text(reinterpret_cast<const char*>(data), size);
  check(**t, text, flags, false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::unique_ptr<Tokenizer>> toks = load_all();
  if (size == 0) return 0;
  uint8_t mode = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode >= 0xF0) {
    random_vocab(data + 1, size - 1, uint8_t(mode & 0x0F));
    return 0;
  }
  size_t which = (mode >> 3) % toks.size();
  check(*toks[which], text, mode & 7, which >= 1 && which <= 3);
  return 0;
}
